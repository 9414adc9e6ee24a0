"""Server-Sent Events: each console page hears which topics changed and re-fetches those parts."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.appkeys import HUB, SESSIONS
from bot.console.auth import SESSION_COOKIE, STAFF_KEY, requires
from bot.consultation.staff import session_for, staff_topic
from bot.storage.models import StaffRole

routes = web.RouteTableDef()

# A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_SECONDS = 15


@routes.get("/console/events")
@requires(*StaffRole)
async def events(request: web.Request) -> web.StreamResponse:
    """A stream of topic names ("queue", "alerts", "consultation:12"); no content ever goes out here.

    The stream ends as soon as its session does (logged out elsewhere, ended or disabled by an admin):
    a disabled counselor's open page hears nothing more.
    """
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    hub = request.app[HUB]
    mine = staff_topic(request[STAFF_KEY].id)
    async with hub.listen() as topics:
        try:
            await response.write(b"retry: 2000\n\n")
            while True:
                try:
                    topic = await asyncio.wait_for(topics.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    topic = mine  # look again now and then: a session also ends by expiring
                    await response.write(b": keepalive\n\n")
                if hub.is_closing(topic) or (topic == mine and not await _still_logged_in(request)):
                    break
                if not topic.startswith("staff:"):
                    await response.write(f"data: {topic}\n\n".encode())
        except ConnectionResetError:
            pass  # the page was closed or reloaded
    return response


async def _still_logged_in(request: web.Request) -> bool:
    async with request.app[SESSIONS]() as session:
        return await session_for(session, request.cookies.get(SESSION_COOKIE)) is not None
