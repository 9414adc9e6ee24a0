"""The counselor console: pages for counselors, supervisors, coordinators, moderators and admins.

Server-rendered with jinja2 (autoescaped: everything a LINE user wrote is shown as text); live
through Server-Sent Events (`bot/storage/live.py`). Each module adds the routes of one feature.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup, escape
from aiohttp import web

from bot.appkeys import SETTINGS
from bot.console.auth import CSRF_KEY, STAFF_KEY
from bot.console.words import ja

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def visible(text: str) -> str:
    """Control characters (other than line breaks and tabs) shown as escapes, so nothing hides in a message."""
    return "".join(c if c in "\n\t" or not unicodedata.category(c).startswith("C") or unicodedata.category(c) == "Co" else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}" for c in text)


TEMPLATES.filters["visible"] = visible


def marked(text: str, spans: list[tuple[int, int]], drivers: list[tuple[int, int]] = ()) -> Markup:
    """The text shown as `visible` would, with the words at `spans` (the keyword floor's findings) marked,
    and those at `drivers` (the words the model weighed most) marked as such."""
    parts, at = [], 0
    for start, end, kind in sorted([*((*s, "") for s in spans), *((*s, "driver") for s in drivers)]):
        if start < at or end > len(text):
            continue  # overlapping or out of range (the message was edited since): left unmarked
        opening = Markup('<mark class="driver">') if kind else Markup("<mark>")
        parts += [escape(visible(text[at:start])), opening, escape(visible(text[start:end])), Markup("</mark>")]
        at = end
    parts.append(escape(visible(text[at:])))
    return Markup("").join(parts)


TEMPLATES.globals["marked"] = marked
TEMPLATES.filters["ja"] = ja


def _local_time(value: datetime | None, zone: ZoneInfo, form: str = "%m/%d %H:%M") -> str:
    return value.astimezone(zone).strftime(form) if value else ""


# Pages hold personal information: never cached, never framed.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
}


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A console page; every page knows who is logged in, their CSRF token and the local clock."""
    zone = request.app[SETTINGS].timezone
    html = TEMPLATES.get_template(template).render(
        staff=request.get(STAFF_KEY),
        csrf=request.get(CSRF_KEY, ""),
        local=lambda value, form="%m/%d %H:%M": _local_time(value, zone, form),
        **context,
    )
    return web.Response(text=html, content_type="text/html", status=status, headers=PAGE_HEADERS)


def add_console(app: web.Application) -> None:
    """Add every console route to the service."""
    from bot.console import admin, attention, counselor, events, flags, history, login, records, referrals, reports, rooms, supervisor

    for module in (login, counselor, history, attention, supervisor, records, referrals, flags, reports, rooms, admin, events):
        app.router.add_routes(module.routes)
    app.router.add_static("/console/static", Path(__file__).parent / "static")
