"""What each staff member must notice, and how the console tells them: a sound, a desktop notification, the tab title.

Counselors are told of a new person waiting at or above a level they choose and of a message in a chat
they hold; supervisors of alerts and of people waiting long at high risk. The page asks
`/console/attention` whenever a topic changes and announces what it has not announced before.
Notifications show on lock screens, where others can read them: they carry the level, the category and
the wait, never a word the person wrote.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.appkeys import CONTENT, SESSIONS, SETTINGS
from bot.console import render
from bot.console.actions import audited
from bot.console.auth import STAFF_KEY, requires
from bot.console.counselor import CHAT_ROLES
from bot.console.words import CONSULTATION_STATUSES, LEVELS
from bot.consultation.queue import alerts, waiting
from bot.storage.models import (
    ChatEntry,
    ChatEntryKind,
    Consultation,
    ConsultationStatus,
    RiskLevel,
    StaffRole,
    StaffUser,
    UserMessage,
    utcnow,
)

routes = web.RouteTableDef()


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


async def unanswered(session: AsyncSession, staff_id: int) -> dict[int, tuple[int, int]]:
    """For each chat this staff member holds: (the person's messages since the last reply, the newest one's id)."""
    held = list(await session.exec(select(Consultation.id).where(Consultation.counselor_id == staff_id, Consultation.status == ConsultationStatus.ACTIVE)))
    result = {}
    for consultation_id in held:
        replied = (
            await session.exec(
                select(func.max(ChatEntry.created_at)).where(ChatEntry.consultation_id == consultation_id, ChatEntry.kind == ChatEntryKind.COUNSELOR)
            )
        ).one()
        since = select(func.count(), func.max(UserMessage.id)).where(UserMessage.consultation_id == consultation_id)
        if replied is not None:
            since = since.where(UserMessage.sent_at > replied)
        count, newest = (await session.exec(since)).one()
        result[consultation_id] = (count, newest or 0)
    return result


async def items_for(request: web.Request, session: AsyncSession, staff: StaffUser) -> list[dict]:
    """What needs this staff member now; each item has a key that changes when there is something new to tell."""
    labels = {c.id: c.label for c in request.app[CONTENT].menu.categories}
    now = utcnow()
    items = []
    if staff.role in CHAT_ROLES:
        chosen = RiskLevel(staff.attention_from_level).rank
        for c in await waiting(session):
            if RiskLevel(c.risk_level).rank >= chosen:
                items.append(
                    {
                        "key": f"waiting:{c.id}:{c.risk_level}",
                        "title": f"待機中の相談者（リスク{LEVELS[c.risk_level]}）",
                        "body": f"{labels.get(c.category, c.category)}・待ち {_minutes(now - c.queued_at)}分",
                        "link": "/console/queue",
                    }
                )
        counts = await unanswered(session, staff.id)
        held = {c.id: c for c in await session.exec(select(Consultation).where(col(Consultation.id).in_(counts)))}
        for consultation_id, (count, newest) in counts.items():
            if count:
                c = held[consultation_id]
                items.append(
                    {
                        "key": f"message:{consultation_id}:{newest}",
                        "title": f"相談 #{consultation_id} に新しいメッセージ",
                        "body": f"{labels.get(c.category, c.category)}・リスク{LEVELS[c.risk_level]}・未返信 {count}件",
                        "link": f"/console/c/{consultation_id}",
                        "consultation": consultation_id,
                        "unanswered": count,
                    }
                )
    if staff.role in (StaffRole.SUPERVISOR, StaffRole.MODERATOR):
        alerted = await alerts(session)
        for c in alerted:
            items.append(
                {
                    "key": f"alert:{c.id}:{c.escalated_at.timestamp():.0f}",
                    "title": f"アラート（リスク{LEVELS[c.risk_level]}）",
                    "body": f"{labels.get(c.category, c.category)}・{CONSULTATION_STATUSES[c.status]}・{_minutes(now - c.escalated_at)}分前から",
                    "link": "/console/supervisor",
                }
            )
        too_long = timedelta(seconds=request.app[SETTINGS].high_risk_max_wait_seconds)
        shown = {c.id for c in alerted}
        for c in await waiting(session, now):
            if c.id not in shown and RiskLevel(c.risk_level).rank >= RiskLevel.HIGH.rank and now - c.queued_at >= too_long:
                items.append(
                    {
                        "key": f"long-wait:{c.id}",
                        "title": f"高リスクの相談者が長く待っています（リスク{LEVELS[c.risk_level]}）",
                        "body": f"{labels.get(c.category, c.category)}・待ち {_minutes(now - c.queued_at)}分",
                        "link": "/console/supervisor",
                    }
                )
    return items


@routes.get("/console/attention")
@requires(*StaffRole)
async def attention(request: web.Request) -> web.Response:
    """What needs this staff member now, and how they want to be told (JSON for the page's script)."""
    async with request.app[SESSIONS]() as session:
        staff = await session.get(StaffUser, request[STAFF_KEY].id)
        items = await items_for(request, session, staff)
    return web.json_response(
        {"sound": staff.attention_sound, "desktop": staff.attention_desktop, "title": staff.attention_title, "items": items},
        headers={"Cache-Control": "no-store"},
    )


@routes.get("/console/attention/settings")
@requires(*StaffRole)
async def settings_page(request: web.Request) -> web.Response:
    """How this staff member wants to be told (kept on the server, so it follows them to any computer)."""
    return render(request, "attention.html", levels=list(RiskLevel), saved=request.query.get("saved") == "1")


@routes.post("/console/attention/settings")
@requires(*StaffRole)
async def save_settings(request: web.Request) -> web.Response:
    """Switch the sound, the desktop notification and the title count, and choose the level to be told of."""
    form = await request.post()
    level = str(form.get("from_level", RiskLevel.HIGH))
    if level not in list(RiskLevel):
        raise web.HTTPBadRequest(text="段階を選んでください。")
    async with audited(request, "attention_changed") as audit:
        staff = await audit.session.get(StaffUser, request[STAFF_KEY].id)
        staff.attention_sound = form.get("sound") == "yes"
        staff.attention_desktop = form.get("desktop") == "yes"
        staff.attention_title = form.get("title") == "yes"
        staff.attention_from_level = RiskLevel(level)
        audit.session.add(staff)
        audit.detail = f"音 {'入' if staff.attention_sound else '切'}・通知 {'入' if staff.attention_desktop else '切'}・題名 {'入' if staff.attention_title else '切'}・{LEVELS[staff.attention_from_level]}以上"
    raise web.HTTPSeeOther("/console/attention/settings?saved=1")
