"""POST /callback over real HTTP: what is refused stores nothing; what is accepted is stored once."""

from __future__ import annotations

import copy
import json

import aiohttp
from conftest import Service, shared_file
from sqlmodel import select

from bot.appkeys import INBOX_WORKER, OUTBOX_SENDER, SESSIONS
from bot.storage.models import InboxEvent


async def stored(service: Service) -> list[InboxEvent]:
    async with service.app[SESSIONS]() as session:
        return list(await session.exec(select(InboxEvent)))


async def post(service: Service, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as client, client.post(f"{service.url}/callback", data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


def signed(service: Service, body: bytes, **extra: str) -> dict[str, str]:
    return {"content-type": "application/json", "X-Line-Signature": service.line.sign(body), **extra}


async def test_forged_or_missing_signature_is_refused_and_stores_nothing(service: Service) -> None:
    user = service.line.add_user().user_id
    body = json.dumps({"destination": "U0", "events": [service.line.event("follow", user)]}).encode()
    forged = {"content-type": "application/json", "x-line-signature": service.line.sign(body + b" ")}
    assert (await post(service, body, forged))[0] == 400
    assert (await post(service, body, {"content-type": "application/json"}))[0] == 400
    # The same body signed with another channel's secret.
    other = {"content-type": "application/json", "x-line-signature": "A" * 44}
    status, reason = await post(service, body, other)
    assert status == 400 and reason == {"error": "invalid signature"}
    assert await stored(service) == []


async def test_header_name_is_case_insensitive(service: Service) -> None:
    user = service.line.add_user().user_id
    body = json.dumps({"destination": "U0", "events": [service.line.event("follow", user)]}).encode()
    headers = {"content-type": "application/json", "X-LINE-SIGNATURE": service.line.sign(body)}
    assert (await post(service, body, headers))[0] == 200
    assert len(await stored(service)) == 1


async def test_verify_button_body_gets_200(service: Service) -> None:
    body = b'{"destination":"U0","events":[]}'
    assert (await post(service, body, signed(service, body)))[0] == 200
    assert await stored(service) == []


async def test_malformed_bodies_get_4xx_with_a_reason_and_store_nothing(service: Service) -> None:
    cases = [
        (b"{not json", "application/json", 400),
        (b'{"destination":"U0"}', "application/json", 400),  # no events
        (b'{"destination":"U0","events":[{"type":"message"}]}', "application/json", 400),  # no id
        (b'{"destination":"U0","events":"x"}', "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        (b'{"destination":"U0","events":[]}', "text/plain", 415),
        (b'{"events":[]}' + b" " * (1024 * 1024 + 1), "application/json", 413),
    ]
    for body, content_type, expected in cases:
        status, answer = await post(service, body, signed(service, body, **{"content-type": content_type}))
        assert status == expected, body[:40]
        if status != 413:
            assert answer["error"], body[:40]
    assert await stored(service) == []


async def test_duplicated_and_redelivered_event_is_answered_once(service: Service) -> None:
    line = service.line
    user = line.add_user().user_id
    line.add_user(user).following = True
    event = line.event("message", user, message={"id": "m1", "type": "text", "text": "メニュー", "quoteToken": "q"})
    assert await line.send_events([event, copy.deepcopy(event)]) == 200
    assert await line.redeliver(event) == 200
    await line.wait_for_messages(user, 1)
    assert len(await stored(service)) == 1
    # Give the workers every chance to (wrongly) answer a copy before counting.
    await service.app[INBOX_WORKER].drain()
    await service.app[OUTBOX_SENDER].drain()
    assert len(line.messages_for(user)) == 1


async def test_every_sample_event_from_line_is_processed_without_error(service: Service) -> None:
    sample = json.loads(shared_file("line", "webhook-events.sample.json").read_text(encoding="utf-8"))
    # The sample shares one webhookEventId among all events; give each its own, as LINE does.
    for number, event in enumerate(sample["events"]):
        event["webhookEventId"] = f"01SAMPLE{number:018d}"
        event.pop("replyToken", None)
    body = json.dumps(sample).encode()
    assert (await post(service, body, signed(service, body)))[0] == 200
    await service.app[INBOX_WORKER].drain()
    events = await stored(service)
    assert len(events) == 28
    assert {e.status for e in events} == {"done"}, [(e.event_type, e.last_error) for e in events if e.status != "done"]
    assert all(e.attempts == 1 for e in events)
