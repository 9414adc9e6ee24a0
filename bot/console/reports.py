"""The analysis in the console: the same report as `tsunagi report`, for a chosen period, under the live queue health."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

from aiohttp import web

from bot.appkeys import CONTENT, SESSIONS, SETTINGS
from bot.console import render
from bot.console.actions import audited
from bot.console.auth import requires
from bot.console.supervisor import queue_health
from bot.reporting.figures import Period, build_report, known_categories
from bot.reporting.html import labels_from_content, report_section
from bot.storage.models import StaffRole

routes = web.RouteTableDef()

# The period links above the form: (name, days back from today); each ends with today.
SHORTCUTS = (("今日", 1), ("過去7日", 7), ("過去30日", 30))


@routes.get("/console/report")
@requires(StaffRole.SUPERVISOR, StaffRole.ADMIN)
async def report(request: web.Request) -> web.Response:
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD&category=ID` (to not counted); today, on the service's clock, by default."""
    zone = request.app[SETTINGS].timezone
    today = datetime.now(zone).date()
    try:
        first = date.fromisoformat(request.query["from"]) if request.query.get("from") else today
        end = date.fromisoformat(request.query["to"]) if request.query.get("to") else first + timedelta(days=1)
        period = Period(first, end, zone)
    except ValueError:
        raise web.HTTPBadRequest(text="日付は YYYY-MM-DD で、終了日は開始日より後に指定してください。") from None
    category = request.query.get("category") or None
    async with audited(request, "opened_report") as audit:
        health = await queue_health(audit.session)
        figures = await build_report(audit.session, period, category)
        history = await known_categories(audit.session)
        audit.detail = f"{period.start:%Y-%m-%d}..{period.end:%Y-%m-%d} {category or ''}"
    labels = labels_from_content(request.app[CONTENT])
    # Charts take a moment of CPU: drawn off the event loop so the webhook keeps answering.
    section = await asyncio.get_running_loop().run_in_executor(None, report_section, figures, labels)
    # The menu's categories first, then any only the history knows (one since removed still has figures).
    names = labels["categories"]
    categories = [*names.items(), *((key, key) for key in sorted(history - names.keys()))]
    shortcuts = [(name, today - timedelta(days=days - 1), today + timedelta(days=1)) for name, days in SHORTCUTS]
    response = render(request, "report.html", **health, period=period, category=category, categories=categories,
                      shortcuts=shortcuts, report=section)
    # The charts are embedded as data: images.
    response.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    return response


@routes.get("/console/report/health")
@requires(StaffRole.SUPERVISOR, StaffRole.ADMIN)
async def report_health(request: web.Request) -> web.Response:
    """The live queue-health box of the report page."""
    async with request.app[SESSIONS]() as session:
        return render(request, "_queue_health.html", **await queue_health(session))
