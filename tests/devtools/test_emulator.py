"""The LINE emulator keeps LINE's rules, checked against LINE's own OpenAPI files and the real SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import yaml
from aiohttp import web
from conftest import SECRET, TOKEN, shared_file
from linebot.v3.messaging import AsyncApiClient, AsyncMessagingApi, Configuration, PushMessageRequest, TextMessage
from linebot.v3.messaging.exceptions import ApiException
from linebot.v3.webhook import WebhookParser
from linebot.v3.webhooks import FollowEvent, MessageEvent, PostbackEvent, UnfollowEvent, UnsendEvent

from bot.devtools.emulator import LineEmulator
from bot.line import limits as line_limits
from bot.runner import running


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(shared_file("line", "messaging-api.yml").read_text(encoding="utf-8"))


def test_limits_match_lines_openapi(spec: dict) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["ReplyMessageRequest"]["properties"]["messages"]["maxItems"] == line_limits.MESSAGES_PER_REQUEST
    assert schemas["PushMessageRequest"]["properties"]["messages"]["maxItems"] == line_limits.MESSAGES_PER_REQUEST
    assert schemas["MulticastRequest"]["properties"]["to"]["maxItems"] == line_limits.MULTICAST_MAX_RECIPIENTS
    assert schemas["QuickReply"]["properties"]["items"]["maxItems"] == line_limits.QUICK_REPLY_MAX_ITEMS
    assert schemas["PostbackAction"]["allOf"][1]["properties"]["data"]["maxLength"] == line_limits.POSTBACK_DATA_MAX


@pytest.fixture
async def emulated() -> AsyncIterator[tuple[LineEmulator, str]]:
    line = LineEmulator(SECRET, TOKEN, reply_token_ttl=0.3)
    async with running(line.app, "127.0.0.1", 0) as url:
        yield line, url


async def call(url: str, path: str, body: object, token: str = TOKEN, **headers: str) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json", **headers}
    async with aiohttp.ClientSession() as client, client.post(url + path, data=json.dumps(body), headers=headers) as response:
        return response.status, await response.json()


def text(value: str, **extra: object) -> dict:
    return {"type": "text", "text": value, **extra}


async def test_push_is_delivered_through_the_real_sdk(emulated) -> None:
    line, url = emulated
    user = line.add_user()
    user.following = True
    async with AsyncApiClient(Configuration(host=url, access_token=TOKEN)) as client:
        api = AsyncMessagingApi(client)
        response = await api.push_message(PushMessageRequest(to=user.user_id, messages=[TextMessage(text="やあ")]))
        assert len(response.sent_messages) == 1
        with pytest.raises(ApiException) as unknown:
            await api.push_message(PushMessageRequest(to="U" + "0" * 32, messages=[TextMessage(text="x")]))
    assert unknown.value.status == 400
    assert [m["message"]["text"] for m in line.messages_for(user.user_id)] == ["やあ"]


def flex(alt_text: str, contents: dict) -> dict:
    return {"type": "flex", "altText": alt_text, "contents": contents}


def carousel(bubbles: int) -> dict:
    bubble = {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "x"}]}}
    return {"type": "carousel", "contents": [bubble] * bubbles}


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([text("a")] * 5, 200),
        ([text("a")] * 6, 400),
        ([], 400),
        ([text("😀" * 2500)], 200),  # 5,000 UTF-16 units
        ([text("😀" * 2500 + "a")], 400),  # 5,001: fine by len(), too long for LINE
        ([text("a", quickReply={"items": [{"type": "action", "action": {"type": "message", "label": "x", "text": "x"}}] * 13})], 200),
        ([text("a", quickReply={"items": [{"type": "action", "action": {"type": "message", "label": "x", "text": "x"}}] * 14})], 400),
        ([text("a", quickReply={"items": [{"type": "action", "action": {"type": "message", "label": "x" * 21, "text": "x"}}]})], 400),
        ([text("a", quickReply={"items": [{"type": "action", "action": {"type": "postback", "label": "x", "data": "d" * 301}}]})], 400),
        ([{"type": "hologram", "text": "?"}], 400),
        ([flex("a", carousel(12))], 200),
        ([flex("a", carousel(13))], 400),
        ([flex("", carousel(1))], 400),
        ([flex("a" * 1501, carousel(1))], 400),
        ([flex("a", {"type": "bubble", "body": {"type": "box", "layout": "vertical"}})], 400),  # a box needs contents
    ],
)
async def test_message_rules(emulated, messages: list, expected: int) -> None:
    line, url = emulated
    user = line.add_user()
    status, body = await call(url, "/v2/bot/message/push", {"to": user.user_id, "messages": messages})
    assert status == expected, body
    if status == 400:
        assert body["message"]


async def test_wrong_token_is_401(emulated) -> None:
    line, url = emulated
    status, body = await call(url, "/v2/bot/message/push", {"to": line.add_user().user_id, "messages": [text("a")]}, token="nope")
    assert status == 401 and "invalid token" in body["message"]


async def test_reply_tokens_are_single_use_and_expire(emulated) -> None:
    line, url = emulated
    user = line.add_user()
    user.following = True
    token = line.event("message", user.user_id)["replyToken"]
    assert (await call(url, "/v2/bot/message/reply", {"replyToken": token, "messages": [text("1")]}))[0] == 200
    assert (await call(url, "/v2/bot/message/reply", {"replyToken": token, "messages": [text("2")]})) == (400, {"message": "Invalid reply token"})
    late = line.event("message", user.user_id)["replyToken"]
    await asyncio.sleep(0.35)
    assert (await call(url, "/v2/bot/message/reply", {"replyToken": late, "messages": [text("3")]}))[0] == 400
    assert "replyToken" not in line.event("unfollow", user.user_id)


async def test_retry_key_is_accepted_once(emulated) -> None:
    line, url = emulated
    user = line.add_user()
    user.following = True
    key = "123e4567-e89b-12d3-a456-426614174000"
    body = {"to": user.user_id, "messages": [text("once")]}
    assert (await call(url, "/v2/bot/message/push", body, **{"X-Line-Retry-Key": key}))[0] == 200
    assert (await call(url, "/v2/bot/message/push", body, **{"X-Line-Retry-Key": key}))[0] == 409
    assert (await call(url, "/v2/bot/message/push", body, **{"X-Line-Retry-Key": "not-a-uuid"}))[0] == 400
    assert len(line.messages_for(user.user_id)) == 1


async def test_faults_fail_exactly_n_times(emulated) -> None:
    line, url = emulated
    user = line.add_user()
    line.fail("push", 503, times=2)
    statuses = [(await call(url, "/v2/bot/message/push", {"to": user.user_id, "messages": [text("x")]}))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]


async def test_loading_animation_rules(emulated) -> None:
    line, url = emulated
    user = line.add_user().user_id
    assert (await call(url, "/v2/bot/chat/loading/start", {"chatId": user, "loadingSeconds": 20}))[0] == 200
    assert (await call(url, "/v2/bot/chat/loading/start", {"chatId": user, "loadingSeconds": 7}))[0] == 400


async def test_webhooks_are_signed_and_shaped_like_lines(emulated) -> None:
    line, _ = emulated
    webhook = yaml.safe_load(shared_file("line", "webhook.yml").read_text(encoding="utf-8"))
    required = set(webhook["components"]["schemas"]["Event"]["required"])
    received: list[tuple[bytes, str]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers["x-line-signature"]))
        return web.Response()

    app = web.Application()
    app.router.add_post("/callback", receive)
    async with running(app, "127.0.0.1", 0) as bot_url:
        line.webhook_url = f"{bot_url}/callback"
        user = line.add_user().user_id
        await line.follow(user)
        await line.send_text(user, "こんにちは")
        await line.send_postback(user, "a=menu")
        await line.unsend(user, "m1")
        await line.unfollow(user)
    parser = WebhookParser(SECRET)
    parsed = [parser.parse(body.decode(), signature)[0] for body, signature in received]
    assert [type(e) for e in parsed] == [FollowEvent, MessageEvent, PostbackEvent, UnsendEvent, UnfollowEvent]
    for body, _ in received:
        event = json.loads(body)["events"][0]
        assert required <= set(event), f"{event['type']} lacks {required - set(event)}"
        assert len(event["webhookEventId"]) == 26
    with pytest.raises(Exception):
        WebhookParser("another-secret").parse(received[0][0].decode(), received[0][1])
