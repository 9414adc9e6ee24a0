"""`POST /callback`: verify LINE's signature, store every event durably, then answer 200.

Nothing is processed here; the inbox worker does that after the events are committed, so the
answer stays far inside LINE's 2-second limit and a crash after the 200 loses nothing.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.webhook import WebhookParser

from bot.appkeys import INBOX_WORKER, INBOX_WRITER, SETTINGS
from bot.line.inbox import source_id

MAX_BODY_BYTES = 1024 * 1024


def _bad(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


async def callback(request: web.Request) -> web.Response:
    """Receive one webhook delivery from LINE."""
    if request.content_type != "application/json":
        return _bad(415, "content type must be application/json")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _bad(413, "body larger than 1 MiB")
    signature = request.headers.get("x-line-signature")
    if not signature:
        return _bad(400, "missing x-line-signature")
    raw = await request.read()
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _bad(400, "body is not UTF-8")
    parser = WebhookParser(request.app[SETTINGS].line_channel_secret.get_secret_value())
    try:
        parser.parse(body, signature)
    except InvalidSignatureError:
        return _bad(400, "invalid signature")
    except (ValueError, KeyError, TypeError):
        return _bad(400, "body is not a LINE webhook payload")
    events = _events(json.loads(body))
    if events is None:
        return _bad(400, "every event needs webhookEventId and timestamp")
    if events:
        await request.app[INBOX_WRITER].store(events)
        request.app[INBOX_WORKER].wake(*{source_id(event) for event in events})
    return web.json_response({})


def _events(payload: Any) -> list[dict[str, Any]] | None:
    """The raw events if each has the two fields storage relies on, else None."""
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        return None
    for event in events:
        if not (
            isinstance(event, dict)
            and isinstance(event.get("webhookEventId"), str)
            and 0 < len(event["webhookEventId"]) <= 64
            and isinstance(event.get("timestamp"), int)
        ):
            return None
    return events
