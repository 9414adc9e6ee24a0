"""The analysis in the console: the same report as `tsunagi report`, for today or a chosen period."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

from aiohttp import web

from bot.appkeys import CONTENT, SESSIONS, SETTINGS
from bot.console.auth import STAFF_KEY, requires
from bot.models import AuditEntry, StaffRole
from bot.report import Period, build_report
from bot.report_html import labels_from_content, report_page

routes = web.RouteTableDef()


@routes.get("/console/report")
@requires(StaffRole.SUPERVISOR, StaffRole.ADMIN)
async def report(request: web.Request) -> web.Response:
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD&category=ID` (to not counted); today, on the service's clock, by default."""
    zone = request.app[SETTINGS].timezone
    try:
        first = date.fromisoformat(request.query["from"]) if "from" in request.query else None
        end = date.fromisoformat(request.query["to"]) if "to" in request.query else None
    except ValueError:
        raise web.HTTPBadRequest(text="日付は YYYY-MM-DD で指定してください。") from None
    first = first or datetime.now(zone).date()
    try:
        period = Period(first, end or first + timedelta(days=1), zone)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    category = request.query.get("category") or None
    async with request.app[SESSIONS]() as session:
        figures = await build_report(session, period, category)
        session.add(AuditEntry(staff_id=request[STAFF_KEY].id, action="opened_report", detail=f"{period.start:%Y-%m-%d}..{period.end:%Y-%m-%d} {category or ''}"))
        await session.commit()
    labels = labels_from_content(request.app[CONTENT])
    # Charts take a moment of CPU: drawn off the event loop so the webhook keeps answering.
    html = await asyncio.get_running_loop().run_in_executor(None, report_page, figures, labels)
    response = web.Response(text=html, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    # The charts are embedded as data: images; nothing else is loaded.
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"
    return response

