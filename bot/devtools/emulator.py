"""A local LINE platform for the demo and the tests, over real HTTP.

It plays both sides LINE plays: the Messaging API the bot calls (reply, push, multicast, loading
animation, profile, mark-as-read, leaving groups, rich menus and their aliases, the webhook endpoint
and its test), checked against LINE's rules and answering with LINE's status codes and error bodies,
with LINE's data host (`data_app`: rich menu images) served apart as LINE serves it; and the webhook,
signing and posting events to the bot as LINE does, redeliveries included. Tests can make it fail
(5xx, 429, slow answers). A phone-like page at `/` lets a person chat as one or more LINE users and
tap the rich menu they are shown.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import random
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jinja2
from aiohttp import web
from linebot.v3.messaging import (
    CreateRichMenuAliasRequest,
    MarkMessagesAsReadByTokenRequest,
    MulticastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    RichMenuRequest,
    SetWebhookEndpointRequest,
    UpdateRichMenuAliasRequest,
)
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError

from bot.line.limits import (
    CAROUSEL_MAX_BUBBLES,
    FLEX_ALT_TEXT_MAX,
    MESSAGES_PER_REQUEST,
    MULTICAST_MAX_RECIPIENTS,
    POSTBACK_DATA_MAX,
    QUICK_REPLY_LABEL_MAX,
    QUICK_REPLY_MAX_ITEMS,
    TEXT_MAX_UTF16,
)
from bot.line.messages import utf16_length
from bot.line.richmenu import IMAGE_MAX_WIDTH, IMAGE_MIN_HEIGHT, IMAGE_MIN_RATIO, IMAGE_MIN_WIDTH
from bot.line.limits import RICH_MENU_AREAS_MAX, RICH_MENU_CHAT_BAR_TEXT_MAX, RICH_MENU_IMAGE_MAX_BYTES

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
)
RETRY_KEY_LIFETIME = 24 * 3600
# Event types after which LINE gives no reply token.
NO_REPLY_TOKEN = {"unfollow", "leave", "memberLeft", "unsend"}


class LineError(Exception):
    """An answer in LINE's error format."""

    def __init__(self, status: int, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details or []

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message}
        if self.details:
            body["details"] = self.details
        return web.json_response(body, status=self.status, headers={"x-line-request-id": str(uuid.uuid4())})


@dataclass
class EmulatedUser:
    """A LINE user of the emulator, with the timeline their phone would show."""

    user_id: str
    display_name: str
    following: bool = False
    timeline: list[dict[str, Any]] = field(default_factory=list)
    # The rich menu linked to this user alone (else they see the default one).
    rich_menu_id: str | None = None


@dataclass
class EmulatedRichMenu:
    """A rich menu LINE holds: its object as created, and its image once uploaded."""

    body: dict[str, Any]
    image: bytes | None = None
    content_type: str | None = None


@dataclass
class Fault:
    """What the next calls to one endpoint do instead of succeeding."""

    status: int | None = None
    delay: float = 0.0
    times: int = 1
    # Until this moment (time.monotonic()) rather than a number of times.
    until: float | None = None
    # Do the work, then answer 200 with a body that cannot be read (a proxy's page, a cut connection).
    garble: bool = False
    # The delay comes after the call took effect, before its answer.
    answer_late: bool = False
    # The share of calls that meet the fault (the others go on to the next fault, or succeed).
    share: float = 1.0


class LineEmulator:
    """The LINE platform, for one channel, on this machine."""

    def __init__(
        self,
        channel_secret: str,
        channel_access_token: str,
        *,
        webhook_url: str | None = None,
        reply_token_ttl: float = 60.0,
        chat_mode: str = "chat",
    ) -> None:
        self.channel_secret = channel_secret
        self.channel_access_token = channel_access_token
        self.webhook_url = webhook_url
        self.reply_token_ttl = reply_token_ttl
        #: The LINE Official Account Manager's Chat setting: "chat" (on), where a message shows 既読 only
        #: once the bot marks it read; "bot" (off), where LINE marks every message read on arrival.
        self.chat_mode = chat_mode
        # markAsReadToken -> (user id, LINE message id)
        self._read_tokens: dict[str, tuple[str, str]] = {}
        self.rich_menus: dict[str, EmulatedRichMenu] = {}
        # LINE message id -> (bytes, content type): what users sent that the content API serves.
        self.contents: dict[str, tuple[bytes, str]] = {}
        #: The month's quota of pushed messages (None: a plan without one) and what is used of it: each
        #: message pushed or multicast counts once per recipient; replies are free.
        self.quota: int | None = None
        self.consumption = 0
        self.rich_menu_aliases: dict[str, str] = {}
        self.default_rich_menu: str | None = None
        self.users: dict[str, EmulatedUser] = {}
        #: Groups and multi-person chats the bot was added to, by id (`following` while the bot is in it).
        self.groups: dict[str, EmulatedUser] = {}
        #: Every Messaging API call: endpoint, status answered, retry key, the user it was for (when the
        #: body names one or holds a reply token), and when it was answered (`time.monotonic()`).
        self.requests: list[dict[str, Any]] = []
        self._reply_tokens: dict[str, tuple[str, float]] = {}
        self._token_users: dict[str, str] = {}  # every reply token ever given, used or not
        self._retry_keys: dict[str, tuple[str, float]] = {}
        self._faults: dict[str, list[Fault]] = {}
        self._random = random.Random(20)  # faults drawn at random repeat from run to run
        self._changed = asyncio.Event()
        self._client: aiohttp.ClientSession | None = None
        self.app = self._make_app()
        #: LINE's data host (api-data.line.me): served on a port of its own.
        self.data_app = self._make_data_app()

    # ----- the Python API the tests and the demo use -------------------------------------------

    def add_user(self, user_id: str | None = None, display_name: str = "LINEユーザー") -> EmulatedUser:
        """A LINE user who can talk to the bot (ids look like LINE's: U + 32 hex digits)."""
        user_id = user_id or "U" + secrets.token_hex(16)
        return self.users.setdefault(user_id, EmulatedUser(user_id, display_name))

    def fail(self, endpoint: str, status: int, times: int = 1, *, seconds: float | None = None, share: float = 1.0) -> None:
        """The next `times` calls to `endpoint` ("reply", "push", ..., or "*" for all) answer `status`.

        With `seconds`, every call answers `status` for that long instead (a revoked token, an outage);
        with `share`, only that share of calls does, drawn at random (a flaky platform).
        """
        until = None if seconds is None else time.monotonic() + seconds
        self._faults.setdefault(endpoint, []).append(Fault(status=status, times=times, until=until, share=share))

    def garble(self, endpoint: str, times: int = 1) -> None:
        """The next `times` calls to `endpoint` take effect but answer 200 with a body that is not JSON."""
        self._faults.setdefault(endpoint, []).append(Fault(times=times, garble=True))

    def delay(self, endpoint: str, seconds: float, times: int = 1, *, after_work: bool = False) -> None:
        """The next `times` calls to `endpoint` answer only after `seconds` (to provoke timeouts).

        With `after_work`, the call takes effect at once and only its answer is late: the sender times
        out on a message LINE has in fact delivered.
        """
        self._faults.setdefault(endpoint, []).append(Fault(delay=seconds, times=times, answer_late=after_work))

    def clear_faults(self) -> None:
        """From now on every call succeeds again."""
        self._faults.clear()

    def messages_for(self, user_id: str) -> list[dict[str, Any]]:
        """What the bot delivered to a user, oldest first: `{"message", "via", "retry_key"}`."""
        return [entry for entry in (self.groups.get(user_id) or self.add_user(user_id)).timeline if entry["from"] == "bot"]

    async def wait_for_messages(self, user_id: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until the bot delivered at least `count` messages to a user; returns them all."""
        async with asyncio.timeout(timeout):
            while len(self.messages_for(user_id)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.messages_for(user_id)

    async def follow(self, user_id: str) -> int:
        """The user adds the bot as a friend (or unblocks it)."""
        self.add_user(user_id).following = True
        return await self.send_events([self.event("follow", user_id, follow={"isUnblocked": False})])

    async def unfollow(self, user_id: str) -> int:
        """The user blocks the bot."""
        self.add_user(user_id).following = False
        return await self.send_events([self.event("unfollow", user_id)])

    async def send_text(self, user_id: str, text: str) -> int:
        """The user sends a text message."""
        return await self._send_message(user_id, {"type": "text", "text": text})

    async def send_sticker(self, user_id: str, package_id: str = "446", sticker_id: str = "1988") -> int:
        """The user sends a sticker."""
        sticker = {"type": "sticker", "packageId": package_id, "stickerId": sticker_id, "stickerResourceType": "STATIC"}
        return await self._send_message(user_id, sticker)

    async def send_image(self, user_id: str, data: bytes | None = None, content_type: str = "image/png") -> int:
        """The user sends a photo (a small made-up one unless `data` is given); the content API serves it."""
        return await self._send_message(user_id, {"type": "image", "contentProvider": {"type": "line"}}, (data or _sample_png(), content_type))

    async def send_file(self, user_id: str, data: bytes, file_name: str) -> int:
        """The user sends a file."""
        message = {"type": "file", "fileName": file_name, "fileSize": len(data)}
        return await self._send_message(user_id, message, (data, "application/octet-stream"))

    async def send_postback(self, user_id: str, data: str, display_text: str | None = None) -> int:
        """The user taps a postback button (`display_text` appears in their chat as LINE shows it)."""
        if display_text:
            self._record(user_id, {"from": "user", "message": {"type": "text", "text": display_text}})
        return await self.send_events([self.event("postback", user_id, postback={"data": data})])

    async def unsend(self, user_id: str, message_id: str) -> int:
        """The user takes back a message they sent."""
        return await self.send_events([self.event("unsend", user_id, unsend={"messageId": message_id})])

    async def add_to_group(self, chat_type: str = "group") -> str:
        """Someone adds the bot to a group (or a multi-person chat, `chat_type` "room"); returns its id."""
        chat_id = ("C" if chat_type == "group" else "R") + secrets.token_hex(16)
        self.groups[chat_id] = EmulatedUser(chat_id, chat_type, following=True)
        await self.send_events([self.event("join", chat_id, source=_chat_source(chat_type, chat_id))])
        return chat_id

    async def send_group_text(self, chat_id: str, user_id: str, text: str) -> int:
        """A member writes in a group or multi-person chat the bot is in."""
        chat = self.groups[chat_id]
        message = {"id": str(time.time_ns())[:18], "quoteToken": secrets.token_urlsafe(16), "type": "text", "text": text}
        self._record(chat_id, {"from": "user", "message": message})
        source = {**_chat_source(chat.display_name, chat_id), "userId": user_id}
        return await self.send_events([self.event("message", chat_id, source=source, message=message)])

    async def redeliver(self, event: dict[str, Any]) -> int:
        """Send an event again as LINE's redelivery does: same webhookEventId, marked as redelivered."""
        again = {**event, "deliveryContext": {"isRedelivery": True}}
        return await self.send_events([again])

    def event(self, event_type: str, user_id: str, **fields: Any) -> dict[str, Any]:
        """A webhook event as LINE builds it, with a reply token where LINE gives one.

        `user_id` is the chat replies go to: a user, or a group's or room's id (then pass its `source`).
        """
        event: dict[str, Any] = {
            "type": event_type,
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user_id},
            "webhookEventId": _ulid(),
            "deliveryContext": {"isRedelivery": False},
            **fields,
        }
        if event_type not in NO_REPLY_TOKEN:
            token = secrets.token_hex(16)
            self._reply_tokens[token] = (user_id, time.monotonic() + self.reply_token_ttl)
            self._token_users[token] = user_id
            event["replyToken"] = token
        return event

    async def send_events(self, events: list[dict[str, Any]]) -> int:
        """Sign and POST one webhook body with these events to the bot; returns the HTTP status."""
        if self.webhook_url is None:
            raise RuntimeError("the emulator has no webhook URL yet")
        body = json.dumps({"destination": "U" + "0" * 32, "events": events}, ensure_ascii=False).encode()
        headers = {"content-type": "application/json; charset=utf-8", "x-line-signature": self.sign(body)}
        if self._client is None:
            self._client = aiohttp.ClientSession()
        async with self._client.post(self.webhook_url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    def sign(self, body: bytes) -> str:
        """LINE's signature: Base64(HMAC-SHA256(channel secret, raw body))."""
        return base64.b64encode(hmac.new(self.channel_secret.encode(), body, hashlib.sha256).digest()).decode()

    def read_by_bot(self, user_id: str) -> list[bool]:
        """For each message the user sent, oldest first: whether their phone shows it 既読."""
        return [bool(entry.get("read")) for entry in self.add_user(user_id).timeline if entry["from"] == "user"]

    async def _send_message(self, user_id: str, message: dict[str, Any], content: tuple[bytes, str] | None = None) -> int:
        read_token = secrets.token_urlsafe(24)
        message = {"id": str(time.time_ns())[:18], "quoteToken": secrets.token_urlsafe(16), "markAsReadToken": read_token, **message}
        if content is not None:
            self.contents[message["id"]] = content
        self._read_tokens[read_token] = (user_id, message["id"])
        self._record(user_id, {"from": "user", "message": message, "read": self.chat_mode == "bot"})
        return await self.send_events([self.event("message", user_id, message=message)])

    def _record(self, chat_id: str, entry: dict[str, Any]) -> None:
        # `at` (time.monotonic()) lets a benchmark time a message from the webhook to the phone.
        chat = self.groups.get(chat_id) or self.add_user(chat_id)
        chat.timeline.append({**entry, "at": time.monotonic()})
        self._changed.set()

    # ----- the Messaging API ------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/bot/message/reply", self._api("reply", self._reply))
        app.router.add_post("/v2/bot/message/push", self._api("push", self._push))
        app.router.add_post("/v2/bot/message/multicast", self._api("multicast", self._multicast))
        app.router.add_post("/v2/bot/chat/loading/start", self._api("loading", self._loading))
        app.router.add_post("/v2/bot/message/markAsRead", self._api("markAsRead", self._mark_as_read))
        app.router.add_post("/v2/bot/chat/markAsRead", self._api("markAsReadByToken", self._mark_as_read_by_token))
        app.router.add_post("/v2/bot/group/{chat_id}/leave", self._api("leave", self._leave))
        app.router.add_post("/v2/bot/room/{chat_id}/leave", self._api("leave", self._leave))
        app.router.add_get("/v2/bot/profile/{user_id}", self._api("profile", self._profile))
        app.router.add_get("/v2/bot/message/quota", self._api("quota", self._quota))
        app.router.add_get("/v2/bot/message/quota/consumption", self._api("quota", self._consumption))
        app.router.add_post("/_emulator/quota", self._set_quota)
        app.router.add_get("/v2/bot/info", self._api("info", self._bot_info))
        app.router.add_post("/v2/bot/richmenu", self._api("richmenu", self._create_rich_menu))
        app.router.add_get("/v2/bot/richmenu/list", self._api("richmenu", self._list_rich_menus))
        app.router.add_get("/v2/bot/richmenu/alias/list", self._api("richmenu", self._list_aliases))
        app.router.add_post("/v2/bot/richmenu/alias", self._api("richmenu", self._create_alias))
        app.router.add_get("/v2/bot/richmenu/alias/{alias}", self._api("richmenu", self._get_alias))
        app.router.add_post("/v2/bot/richmenu/alias/{alias}", self._api("richmenu", self._update_alias))
        app.router.add_get("/v2/bot/richmenu/{menu_id}", self._api("richmenu", self._get_rich_menu))
        app.router.add_delete("/v2/bot/richmenu/{menu_id}", self._api("richmenu", self._delete_rich_menu))
        app.router.add_get("/v2/bot/user/all/richmenu", self._api("richmenu", self._get_default))
        app.router.add_post("/v2/bot/user/all/richmenu/{menu_id}", self._api("richmenu", self._set_default))
        app.router.add_post("/v2/bot/user/{user_id}/richmenu/{menu_id}", self._api("richmenu", self._link))
        app.router.add_delete("/v2/bot/user/{user_id}/richmenu", self._api("richmenu", self._unlink))
        app.router.add_get("/v2/bot/channel/webhook/endpoint", self._api("webhook", self._get_endpoint))
        app.router.add_put("/v2/bot/channel/webhook/endpoint", self._api("webhook", self._set_endpoint))
        app.router.add_post("/v2/bot/channel/webhook/test", self._api("webhook", self._test_endpoint))
        app.router.add_get("/_emulator/richmenus/{menu_id}/image", self._rich_menu_image)
        app.router.add_get("/", self._page)
        app.router.add_get("/_emulator/users/{user_id}", self._timeline)
        app.router.add_post("/_emulator/users/{user_id}/send", self._send_from_page)
        app.router.add_post("/_emulator/faults", self._add_fault)
        app.on_cleanup.append(self._close_client)
        return app

    def _make_data_app(self) -> web.Application:
        app = web.Application(client_max_size=4 * RICH_MENU_IMAGE_MAX_BYTES)
        app.router.add_post("/v2/bot/richmenu/{menu_id}/content", self._api("richmenu-image", self._upload_image, raw=True))
        app.router.add_get("/v2/bot/richmenu/{menu_id}/content", self._api("richmenu-image", self._download_image))
        app.router.add_get("/v2/bot/message/{message_id}/content", self._api("content", self._message_content))
        return app

    async def _close_client(self, _app: web.Application) -> None:
        if self._client is not None:
            await self._client.close()

    def _api(self, endpoint: str, handler: Any, *, raw: bool = False) -> Any:
        async def respond(request: web.Request) -> web.Response:
            retry_key = request.headers.get("X-Line-Retry-Key")
            body = None
            try:
                fault = await self._inject_fault(endpoint)
                self._authorise(request)
                if raw:
                    body = await request.read()
                else:
                    body = None if request.method in ("GET", "DELETE") else await _json_body(request)
                response = await handler(request, body, retry_key)
                if fault is not None and fault.answer_late:
                    await asyncio.sleep(fault.delay)
                if fault is not None and fault.garble and response.status == 200:
                    response = web.Response(text="<html>502 Bad Gateway</html>", content_type="application/json")
            except LineError as error:
                response = error.response()
            self.requests.append(
                {"endpoint": endpoint, "status": response.status, "retry_key": retry_key, "user": self._user_of(body), "at": time.monotonic()}
            )
            return response

        return respond

    def _user_of(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return None
        to = body.get("to") or body.get("chatId") or self._token_users.get(body.get("replyToken"))
        return to if isinstance(to, str) else None

    async def _inject_fault(self, endpoint: str) -> Fault | None:
        """Apply the first fault set for this endpoint (or for all) that this call meets; returns it."""
        faults = self._faults.get(endpoint) or self._faults.get("*")
        if not faults:
            return None
        now = time.monotonic()
        faults[:] = [f for f in faults if f.until is None or now < f.until]
        fault = next((f for f in faults if f.share >= 1.0 or self._random.random() < f.share), None)
        if fault is None:
            return None
        if fault.until is None:
            fault.times -= 1
            if fault.times <= 0:
                faults.remove(fault)
        if fault.delay and not fault.answer_late:
            await asyncio.sleep(fault.delay)
        if fault.status == 429:
            raise LineError(429, "The API rate limit has been exceeded. Try again later.")
        if fault.status in (401, 403):
            raise LineError(fault.status, "Authentication failed due to the following reason: invalid token. (injected)")
        if fault.status is not None:
            raise LineError(fault.status, "An error occurred in the emulated LINE platform (injected).")
        return fault

    def _authorise(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {self.channel_access_token}":
            raise LineError(401, "Authentication failed due to the following reason: invalid token.")

    async def _reply(self, _request: web.Request, body: Any, _retry_key: str | None) -> web.Response:
        _check_structure(ReplyMessageRequest, body)
        token = body.get("replyToken")
        user_id, expires = self._reply_tokens.pop(token, (None, 0.0))
        if user_id is None or time.monotonic() > expires:
            raise LineError(400, "Invalid reply token")
        messages = _check_messages(body["messages"])
        return self._deliver([user_id], messages, "reply", None)

    async def _push(self, _request: web.Request, body: Any, retry_key: str | None) -> web.Response:
        _check_structure(PushMessageRequest, body)
        if body["to"] not in self.users and body["to"] not in self.groups:
            raise LineError(400, "The property, 'to', in the request body is invalid (line: -, column: -)")
        messages = _check_messages(body["messages"])
        self._within_quota(len(messages))
        return self._accept_once(retry_key) or self._deliver([body["to"]], messages, "push", retry_key, charge=len(messages))

    async def _multicast(self, _request: web.Request, body: Any, retry_key: str | None) -> web.Response:
        _check_structure(MulticastRequest, body)
        if not 1 <= len(body["to"]) <= MULTICAST_MAX_RECIPIENTS:
            raise LineError(400, "The request body has 1 error(s)", [{"message": f"Size must be between 1 and {MULTICAST_MAX_RECIPIENTS}", "property": "to"}])
        messages = _check_messages(body["messages"])
        known = [user_id for user_id in body["to"] if user_id in self.users]
        cost = len(messages) * len(body["to"])
        self._within_quota(cost)
        return self._accept_once(retry_key) or self._deliver(known, messages, "multicast", retry_key, sent_messages=False, charge=cost)

    def _within_quota(self, cost: int) -> None:
        """Past the month's quota LINE refuses the whole request (before it accepts its retry key)."""
        if self.quota is not None and self.consumption + cost > self.quota:
            raise LineError(429, "You have reached your monthly limit.")

    async def _quota(self, _request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        return _ok({"type": "none"} if self.quota is None else {"type": "limited", "value": self.quota})

    async def _consumption(self, _request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        return _ok({"totalUsage": self.consumption})

    async def _set_quota(self, request: web.Request) -> web.Response:
        """The phone page's (or a test's) way to change the plan: `{"quota": N | null}`."""
        quota = (await request.json()).get("quota")
        self.quota = None if quota is None else int(quota)
        return web.json_response({"quota": self.quota, "consumption": self.consumption})

    async def _loading(self, _request: web.Request, body: Any, _retry_key: str | None) -> web.Response:
        seconds = body.get("loadingSeconds", 20)
        if body.get("chatId") not in self.users:
            raise LineError(400, "The property, 'chatId', in the request body is invalid")
        if not isinstance(seconds, int) or not 5 <= seconds <= 60 or seconds % 5:
            raise LineError(400, "The request body has 1 error(s)", [{"message": "Must be a multiple of 5 between 5 and 60", "property": "loadingSeconds"}])
        self._record(body["chatId"], {"from": "bot", "message": {"type": "loading", "seconds": seconds}, "via": "loading", "retry_key": None})
        return _ok({})

    async def _mark_as_read(self, _request: web.Request, body: Any, _retry_key: str | None) -> web.Response:
        if not isinstance(body.get("chat"), dict) or body["chat"].get("userId") not in self.users:
            raise LineError(400, "The property, 'chat.userId', in the request body is invalid")
        return _ok({})

    async def _mark_as_read_by_token(self, _request: web.Request, body: Any, _retry_key: str | None) -> web.Response:
        """The message of the token and every earlier one of that user show 既読."""
        _check_structure(MarkMessagesAsReadByTokenRequest, body)
        user_id, message_id = self._read_tokens.get(body["markAsReadToken"], (None, None))
        if user_id is None:
            raise LineError(400, "An invalid markAsReadToken is specified. Tokens must be used by the bot that received them via Webhook.")
        for entry in self.users[user_id].timeline:
            if entry["from"] == "user":
                entry["read"] = True
                if entry["message"].get("id") == message_id:  # a postback's display text has no id
                    break
        self._changed.set()
        return _ok({})

    # ----- rich menus (LINE's rules: https://developers.line.biz/en/reference/messaging-api/#rich-menu) -----

    def _menu(self, menu_id: str) -> EmulatedRichMenu:
        menu = self.rich_menus.get(menu_id)
        if menu is None:
            raise LineError(404, "richmenu not found")
        return menu

    def shown_rich_menu(self, user_id: str) -> str | None:
        """The rich menu a user's phone shows: theirs if one is linked, else the default (with an image)."""
        user = self.users.get(user_id)
        menu_id = (user.rich_menu_id if user else None) or self.default_rich_menu
        menu = self.rich_menus.get(menu_id or "")
        return menu_id if menu is not None and menu.image is not None else None

    async def _create_rich_menu(self, _request: web.Request, body: Any, _retry_key: str | None) -> web.Response:
        _check_structure(RichMenuRequest, body)
        width, height = body["size"]["width"], body["size"]["height"]
        if not (IMAGE_MIN_WIDTH <= width <= IMAGE_MAX_WIDTH and height >= IMAGE_MIN_HEIGHT and width / height >= IMAGE_MIN_RATIO):
            raise LineError(400, "The request body has 1 error(s)", [{"message": "invalid size", "property": "size"}])
        if not 1 <= len(body["areas"]) <= RICH_MENU_AREAS_MAX:
            raise LineError(400, "The request body has 1 error(s)", [{"message": f"Size must be between 1 and {RICH_MENU_AREAS_MAX}", "property": "areas"}])
        if len(body["chatBarText"]) > RICH_MENU_CHAT_BAR_TEXT_MAX or len(body["name"]) > 300:
            raise LineError(400, "The request body has 1 error(s)", [{"message": "too long", "property": "chatBarText" if len(body["name"]) <= 300 else "name"}])
        for index, area in enumerate(body["areas"]):
            b = area["bounds"]
            if b["x"] < 0 or b["y"] < 0 or b["x"] + b["width"] > width or b["y"] + b["height"] > height:
                raise LineError(400, "The request body has 1 error(s)", [{"message": "out of the rich menu", "property": f"areas[{index}].bounds"}])
            if len(area["action"].get("data", "")) > POSTBACK_DATA_MAX:
                raise LineError(400, "The request body has 1 error(s)", [{"message": f"Length must be between 0 and {POSTBACK_DATA_MAX}", "property": f"areas[{index}].action.data"}])
        menu_id = "richmenu-" + secrets.token_hex(16)
        self.rich_menus[menu_id] = EmulatedRichMenu(body)
        return _ok({"richMenuId": menu_id})

    async def _list_rich_menus(self, _request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        return _ok({"richmenus": [{"richMenuId": menu_id, **menu.body} for menu_id, menu in self.rich_menus.items()]})

    async def _get_rich_menu(self, request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        menu_id = request.match_info["menu_id"]
        return _ok({"richMenuId": menu_id, **self._menu(menu_id).body})

    async def _delete_rich_menu(self, request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        menu_id = request.match_info["menu_id"]
        self._menu(menu_id)
        del self.rich_menus[menu_id]
        if self.default_rich_menu == menu_id:
            self.default_rich_menu = None
        for user in self.users.values():
            if user.rich_menu_id == menu_id:
                user.rich_menu_id = None
        return _ok({})

    async def _upload_image(self, request: web.Request, body: bytes, _retry_key: str | None) -> web.Response:
        menu = self._menu(request.match_info["menu_id"])
        if request.content_type not in ("image/png", "image/jpeg"):
            raise LineError(415, "Unsupported Media Type: the image must be JPEG or PNG")
        if len(body) > RICH_MENU_IMAGE_MAX_BYTES:
            raise LineError(413, f"Request Entity Too Large: the image must be at most {RICH_MENU_IMAGE_MAX_BYTES} bytes")
        if menu.image is not None:
            raise LineError(400, "An image has already been uploaded to the richmenu")
        try:
            with Image.open(io.BytesIO(body)) as image:
                size, kind = image.size, image.format
        except UnidentifiedImageError:
            raise LineError(400, "The image could not be read as JPEG or PNG") from None
        if kind not in ("PNG", "JPEG") or size != (menu.body["size"]["width"], menu.body["size"]["height"]):
            raise LineError(400, "The image's format or size does not match the rich menu's size")
        menu.image, menu.content_type = body, request.content_type
        return _ok({})

    async def _download_image(self, request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        menu = self._menu(request.match_info["menu_id"])
        if menu.image is None:
            raise LineError(404, "richmenu image not found")
        return web.Response(body=menu.image, content_type=menu.content_type)

    async def _message_content(self, request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        """What a user sent, as LINE's content API serves it (LINE keeps it only for a while)."""
        content = self.contents.get(request.match_info["message_id"])
        if content is None:
            raise LineError(404, "Not found")
        return web.Response(body=content[0], content_type=content[1])

    async def _rich_menu_image(self, request: web.Request) -> web.Response:
        """The image for the phone page (not part of LINE's API)."""
        menu = self.rich_menus.get(request.match_info["menu_id"])
        if menu is None or menu.image is None:
            raise web.HTTPNotFound()
        return web.Response(body=menu.image, content_type=menu.content_type)

    def _with_image(self, menu_id: str) -> None:
        if self._menu(menu_id).image is None:
            raise LineError(400, "must upload richmenu image before applying it to user")

    async def _get_default(self, _request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        if self.default_rich_menu is None:
            raise LineError(404, "no default richmenu")
        return _ok({"richMenuId": self.default_rich_menu})

    async def _set_default(self, request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        menu_id = request.match_info["menu_id"]
        self._with_image(menu_id)
        self.default_rich_menu = menu_id
        return _ok({})

    async def _link(self, request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        menu_id = request.match_info["menu_id"]
        self._with_image(menu_id)
        user = self.users.get(request.match_info["user_id"])
        if user is None:
            raise LineError(400, "The user ID is invalid")
        user.rich_menu_id = menu_id
        self._changed.set()
        return _ok({})

    async def _unlink(self, request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        user = self.users.get(request.match_info["user_id"])
        if user is not None:
            user.rich_menu_id = None
        return _ok({})

    async def _list_aliases(self, _request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        return _ok({"aliases": [{"richMenuAliasId": alias, "richMenuId": menu_id} for alias, menu_id in self.rich_menu_aliases.items()]})

    async def _get_alias(self, request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        alias = request.match_info["alias"]
        if alias not in self.rich_menu_aliases:
            raise LineError(400, "richmenu alias not found")
        return _ok({"richMenuAliasId": alias, "richMenuId": self.rich_menu_aliases[alias]})

    async def _create_alias(self, _request: web.Request, body: Any, _retry_key: str | None) -> web.Response:
        _check_structure(CreateRichMenuAliasRequest, body)
        alias, menu_id = body["richMenuAliasId"], body["richMenuId"]
        if not (1 <= len(alias) <= 32 and all(c.isascii() and (c.isalnum() or c in "_-") for c in alias)):
            raise LineError(400, "The request body has 1 error(s)", [{"message": "invalid alias id", "property": "richMenuAliasId"}])
        if alias in self.rich_menu_aliases:
            raise LineError(400, "conflict richmenu alias id")
        self._with_image(menu_id)
        self.rich_menu_aliases[alias] = menu_id
        return _ok({})

    async def _update_alias(self, request: web.Request, body: Any, _retry_key: str | None) -> web.Response:
        _check_structure(UpdateRichMenuAliasRequest, body)
        alias = request.match_info["alias"]
        if alias not in self.rich_menu_aliases:
            raise LineError(400, "richmenu alias not found")
        self._with_image(body["richMenuId"])
        self.rich_menu_aliases[alias] = body["richMenuId"]
        return _ok({})

    # ----- the webhook endpoint ----------------------------------------------------------------

    async def _get_endpoint(self, _request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        return _ok({"endpoint": self.webhook_url or "", "active": self.webhook_url is not None})

    async def _set_endpoint(self, _request: web.Request, body: Any, _retry_key: str | None) -> web.Response:
        _check_structure(SetWebhookEndpointRequest, body)
        if not body["endpoint"].startswith(("https://", "http://")) or len(body["endpoint"]) > 500:
            raise LineError(400, "Invalid webhook endpoint URL")
        self.webhook_url = body["endpoint"]
        return _ok({})

    async def _test_endpoint(self, _request: web.Request, body: Any, _retry_key: str | None) -> web.Response:
        """As LINE does: a signed body with no events, posted to the endpoint; its answer reported."""
        endpoint = body.get("endpoint") or self.webhook_url
        if endpoint is None:
            raise LineError(400, "no webhook endpoint")
        payload = json.dumps({"destination": "U" + "0" * 32, "events": []}).encode()
        headers = {"content-type": "application/json; charset=utf-8", "x-line-signature": self.sign(payload)}
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self._client is None:
            self._client = aiohttp.ClientSession()
        try:
            async with self._client.post(endpoint, data=payload, headers=headers, timeout=aiohttp.ClientTimeout(total=2)) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _ok({"success": False, "timestamp": now, "statusCode": 0, "reason": "could not connect", "detail": type(exc).__name__})
        ok = status == 200
        return _ok({"success": ok, "timestamp": now, "statusCode": status, "reason": "OK" if ok else "invalid status", "detail": str(status)})

    async def _leave(self, request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        chat_type = "group" if "/group/" in request.path else "room"
        chat = self.groups.get(request.match_info["chat_id"])
        if chat is None or chat.display_name != chat_type or not chat.following:
            raise LineError(404, "Not found")
        chat.following = False
        self._record(chat.user_id, {"from": "bot", "message": {"type": "leave"}, "via": "leave", "retry_key": None})
        return _ok({})

    async def _profile(self, request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        user = self.users.get(request.match_info["user_id"])
        if user is None or not user.following:
            raise LineError(404, "Not found")
        return _ok({"userId": user.user_id, "displayName": user.display_name, "language": "ja"})

    async def _bot_info(self, _request: web.Request, _body: Any, _retry_key: str | None) -> web.Response:
        read_mode = "manual" if self.chat_mode == "chat" else "auto"
        return _ok({"userId": "U" + "0" * 32, "basicId": "@000tsunagi", "displayName": "つなぎ", "chatMode": self.chat_mode, "markAsReadMode": read_mode})

    def _accept_once(self, retry_key: str | None) -> web.Response | None:
        """LINE's retry-key rule: a key already accepted within 24 h answers 409 and sends nothing."""
        if retry_key is None:
            return None
        try:
            uuid.UUID(retry_key)
        except ValueError:
            raise LineError(400, "The value for the 'X-Line-Retry-Key' header is invalid") from None
        now = time.monotonic()
        accepted = self._retry_keys.get(retry_key)
        if accepted is not None and now - accepted[1] < RETRY_KEY_LIFETIME:
            return web.json_response(
                {"message": "The retry key is already accepted"},
                status=409,
                headers={"x-line-accepted-request-id": accepted[0], "x-line-request-id": str(uuid.uuid4())},
            )
        self._retry_keys[retry_key] = (str(uuid.uuid4()), now)
        return None

    def _deliver(
        self,
        user_ids: list[str],
        messages: list[dict[str, Any]],
        via: str,
        retry_key: str | None,
        sent_messages: bool = True,
        charge: int = 0,
    ) -> web.Response:
        self.consumption += charge
        for user_id in user_ids:
            # A user who blocked the bot (or a group it left) receives nothing, though LINE still answers 200.
            if (self.groups.get(user_id) or self.users[user_id]).following:
                for message in messages:
                    self._record(user_id, {"from": "bot", "message": message, "via": via, "retry_key": retry_key})
        if not sent_messages:
            return _ok({})
        return _ok({"sentMessages": [{"id": str(time.time_ns()), "quoteToken": secrets.token_urlsafe(16)} for _ in messages]})

    # ----- the phone page ---------------------------------------------------------------------

    async def _page(self, _request: web.Request) -> web.Response:
        html = TEMPLATES.get_template("emulator.html").render()
        return web.Response(text=html, content_type="text/html")

    async def _timeline(self, request: web.Request) -> web.Response:
        user = self.users.get(request.match_info["user_id"])
        menu_id = self.shown_rich_menu(request.match_info["user_id"])
        menu = None
        if menu_id is not None:
            body = self.rich_menus[menu_id].body
            menu = {"id": menu_id, "chatBarText": body["chatBarText"], "size": body["size"], "areas": body["areas"]}
        return web.json_response({"following": bool(user and user.following), "timeline": user.timeline if user else [], "richMenu": menu})

    async def _send_from_page(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        body = await request.json()
        self.add_user(user_id, str(body.get("displayName") or "LINEユーザー"))
        kind = body.get("kind")
        if kind == "text" and str(body.get("text", "")).strip():
            status = await self.send_text(user_id, str(body["text"]))
        elif kind == "postback":
            status = await self.send_postback(user_id, str(body.get("data", "")), body.get("displayText"))
        elif kind == "image" and body.get("data"):
            status = await self.send_image(user_id, base64.b64decode(str(body["data"])), str(body.get("contentType") or "image/png"))
        elif kind in ("sticker", "image", "follow", "unfollow"):
            status = await getattr(self, {"sticker": "send_sticker", "image": "send_image"}.get(kind, kind))(user_id)
        else:
            raise web.HTTPBadRequest(text="unknown kind")
        return web.json_response({"webhookStatus": status})

    async def _add_fault(self, request: web.Request) -> web.Response:
        body = await request.json()
        fault = Fault(status=body.get("status"), delay=float(body.get("delay", 0)), times=int(body.get("times", 1)))
        self._faults.setdefault(str(body["endpoint"]), []).append(fault)
        return web.json_response({})


def _ok(body: dict[str, Any]) -> web.Response:
    return web.json_response(body, headers={"x-line-request-id": str(uuid.uuid4())})


async def _json_body(request: web.Request) -> Any:
    if not request.can_read_body and request.method == "POST":
        return {}  # a POST without a body (leave, link a rich menu)
    if request.content_type != "application/json":
        raise LineError(415, "Content-Type must be application/json")
    try:
        body = await request.json()
    except ValueError:
        raise LineError(400, "The request body could not be parsed as JSON") from None
    if not isinstance(body, dict):
        raise LineError(400, "The request body must be a JSON object")
    return body


def _check_structure(model: Any, body: dict[str, Any]) -> None:
    """Structure per LINE's OpenAPI description, through the SDK's models generated from it."""
    try:
        model.from_dict(body)
    except (ValidationError, ValueError, TypeError, KeyError) as exc:
        raise LineError(400, "The request body has 1 error(s)", [{"message": str(exc).splitlines()[0], "property": "messages"}]) from None


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    """LINE's limits on messages that the structure alone does not show."""
    if not isinstance(messages, list) or not 1 <= len(messages) <= MESSAGES_PER_REQUEST:
        raise LineError(400, "The request body has 1 error(s)", [{"message": f"Size must be between 1 and {MESSAGES_PER_REQUEST}", "property": "messages"}])
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if message.get("type") == "text" and utf16_length(message.get("text", "")) > TEXT_MAX_UTF16:
            raise LineError(400, "The request body has 1 error(s)", [{"message": f"Length must be between 0 and {TEXT_MAX_UTF16}", "property": f"{where}.text"}])
        if message.get("type") == "flex":
            _check_flex(message, where)
        items = (message.get("quickReply") or {}).get("items", [])
        if len(items) > QUICK_REPLY_MAX_ITEMS:
            raise LineError(400, "The request body has 1 error(s)", [{"message": f"Size must be between 0 and {QUICK_REPLY_MAX_ITEMS}", "property": f"{where}.quickReply.items"}])
        for number, item in enumerate(items):
            action = item.get("action") or {}
            if len(action.get("label", "")) > QUICK_REPLY_LABEL_MAX:
                raise LineError(400, "The request body has 1 error(s)", [{"message": f"Length must be between 0 and {QUICK_REPLY_LABEL_MAX}", "property": f"{where}.quickReply.items[{number}].action.label"}])
            if len(action.get("data", "")) > POSTBACK_DATA_MAX:
                raise LineError(400, "The request body has 1 error(s)", [{"message": f"Length must be between 0 and {POSTBACK_DATA_MAX}", "property": f"{where}.quickReply.items[{number}].action.data"}])
    return messages


def _check_flex(message: dict[str, Any], where: str) -> None:
    """Flex limits: the alt text shown in notifications, and the bubbles in a carousel."""
    if not 1 <= len(message.get("altText", "")) <= FLEX_ALT_TEXT_MAX:
        raise LineError(400, "The request body has 1 error(s)", [{"message": f"Length must be between 1 and {FLEX_ALT_TEXT_MAX}", "property": f"{where}.altText"}])
    contents = message.get("contents") or {}
    if contents.get("type") == "carousel" and not 1 <= len(contents.get("contents", [])) <= CAROUSEL_MAX_BUBBLES:
        raise LineError(400, "The request body has 1 error(s)", [{"message": f"Size must be between 1 and {CAROUSEL_MAX_BUBBLES}", "property": f"{where}.contents.contents"}])


def _sample_png() -> bytes:
    """A small picture standing in for a photo."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "#d9534f").save(out, "PNG")
    return out.getvalue()


def _chat_source(chat_type: str, chat_id: str) -> dict[str, str]:
    """A webhook event's source for a group (`groupId`) or a multi-person chat (`roomId`)."""
    return {"type": chat_type, ("groupId" if chat_type == "group" else "roomId"): chat_id}


def _ulid() -> str:
    """A 26-character id shaped like LINE's webhookEventId (a ULID: time, then randomness)."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    return "".join(alphabet[(value >> shift) & 31] for shift in range(125, -1, -5))
