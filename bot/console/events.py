"""Server-Sent Events: each console page hears which topics changed and re-fetches those parts."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.appkeys import HUB
from bot.console.auth import requires
from bot.storage.models import StaffRole

routes = web.RouteTableDef()

# A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_SECONDS = 15


@routes.get("/console/events")
@requires(*StaffRole)
async def events(request: web.Request) -> web.StreamResponse:
    """A stream of topic names ("queue", "alerts", "consultation:12"); no content ever goes out here."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    hub = request.app[HUB]
    async with hub.listen() as topics:
        try:
            await response.write(b"retry: 2000\n\n")
            while True:
                try:
                    topic = await asyncio.wait_for(topics.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if hub.is_closing(topic):
                    break
                await response.write(f"data: {topic}\n\n".encode())
        except ConnectionResetError:
            pass  # the page was closed or reloaded
    return response
