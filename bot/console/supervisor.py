"""The supervisor's view: queue health, alerts, every open chat (watched silently), and taking over."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.appkeys import BUDGET, CONTENT, OUTBOX_SENDER, SCREENER, SESSIONS
from bot.console import render
from bot.console.actions import audited, find_or_404
from bot.console.auth import STAFF_KEY, requires
from bot.consultation.queue import QUEUE_TOPIC, alerts, consultation_topic, waiting
from bot.consultation.risk import raised_by
from bot.line.deadletters import dismiss_inbox, dismiss_outbox, failure_counts, failures, retry_inbox, retry_outbox
from bot.storage.after_commit import announce
from bot.storage.models import (
    Availability,
    ChatEntry,
    ChatEntryKind,
    Consultation,
    ConsultationStatus,
    RiskLevel,
    StaffRole,
    StaffUser,
    utcnow,
)

routes = web.RouteTableDef()


async def queue_health(session: AsyncSession) -> dict[str, Any]:
    """The queue at a glance (waiting by level, longest wait, high-risk waiting, counselors available), for any page."""
    queue = await waiting(session)
    counselors = list(await session.exec(select(StaffUser).where(StaffUser.role == StaffRole.COUNSELOR)))
    now = utcnow()
    by_level = Counter(c.risk_level for c in queue)
    return {
        "queue": queue,
        "waiting_by_level": [(level, by_level.get(level, 0)) for level in reversed(RiskLevel)],
        "longest_wait": max(((now - c.queued_at) for c in queue), default=None),
        "high_risk_waiting": sum(1 for c in queue if c.risk_level in (RiskLevel.HIGH, RiskLevel.IMMINENT)),
        "available": sum(1 for s in counselors if s.availability == Availability.AVAILABLE),
        "counselors": {s.id: s for s in counselors},
        "now": now,
    }


async def _health(request: web.Request) -> dict:
    async with request.app[SESSIONS]() as session:
        health = await queue_health(session)
        active = list(await session.exec(select(Consultation).where(Consultation.status == ConsultationStatus.ACTIVE)))
        escalated = await alerts(session)
        raised = await raised_by(session, [*health["queue"], *escalated])
        failed = await failure_counts(session)
        # Texts given up whose keyword screening is urgent stand beside the alerts.
        unhandled = [f for f in await failures(session) if f.floor_level in (RiskLevel.HIGH, RiskLevel.IMMINENT)] if failed.inbox else []
    return {
        **health,
        "active": active,
        "alerts": escalated,
        "raised": raised,
        "labels": {c.id: c.label for c in request.app[CONTENT].menu.categories},
        "model_error": request.app[SCREENER].model_error,
        "failed": failed,
        "sending_paused": request.app[OUTBOX_SENDER].paused,
        "quota_spent": request.app[OUTBOX_SENDER].quota_spent,
        "budget": await request.app[BUDGET].read(),
        "unhandled": unhandled,
        "model_readers": request.app[SCREENER].readers,
    }


@routes.get("/console/supervisor")
@requires(StaffRole.SUPERVISOR, StaffRole.MODERATOR)
async def supervisor_page(request: web.Request) -> web.Response:
    """Queue health, alerts and every open chat, live."""
    return render(request, "supervisor.html", **await _health(request))


@routes.get("/console/supervisor/live")
@requires(StaffRole.SUPERVISOR, StaffRole.MODERATOR)
async def supervisor_live(request: web.Request) -> web.Response:
    """The live part of the supervisor's page."""
    return render(request, "_supervisor.html", **await _health(request))


@routes.get("/console/supervisor/failures")
@requires(StaffRole.SUPERVISOR)
async def failures_page(request: web.Request) -> web.Response:
    """What the service gave up on: events it could not handle, messages it could not send (never their text)."""
    async with request.app[SESSIONS]() as session:
        listed = await failures(session)
    return render(request, "failures.html", failures=listed)


# What a supervisor may do with a dead letter: (kind, what) -> the change.
FAILURE_ACTIONS = {
    ("inbox", "retry"): retry_inbox,
    ("inbox", "dismiss"): dismiss_inbox,
    ("outbox", "retry"): retry_outbox,
    ("outbox", "dismiss"): dismiss_outbox,
}


@routes.post(r"/console/supervisor/failures/{kind}/{id:\d+}/{do}")
@requires(StaffRole.SUPERVISOR)
async def act_on_failure(request: web.Request) -> web.Response:
    """Put a failed event or message back in line, or set it aside once dealt with (audited)."""
    kind, do, item_id = request.match_info["kind"], request.match_info["do"], int(request.match_info["id"])
    change = FAILURE_ACTIONS.get((kind, do))
    if change is None:
        raise web.HTTPNotFound(text="その操作はありません。")
    async with audited(request, f"{kind}_{do}") as audit:
        if await change(audit.session, item_id) == 0:
            raise web.HTTPNotFound(text="これはもう処理できなかったものの一覧にありません。")
        audit.detail = f"{kind} #{item_id}"
    raise web.HTTPSeeOther("/console/supervisor/failures")


@routes.post("/console/c/{id}/takeover")
@requires(StaffRole.SUPERVISOR)
async def take_over(request: web.Request) -> web.Response:
    """A supervisor takes a chat (waiting or with a counselor) to answer it themselves."""
    staff = request[STAFF_KEY]
    async with audited(request, "took_over") as audit:
        session = audit.session
        consultation = await find_or_404(
            session, Consultation, request.match_info["id"], "この相談は引き継げません。", allowed=lambda c: c.status in (ConsultationStatus.REQUESTED, ConsultationStatus.ACTIVE)
        )
        audit.consultation_id = consultation.id
        if consultation.status == ConsultationStatus.REQUESTED:
            consultation.taken_at = utcnow()
        consultation.status, consultation.counselor_id = ConsultationStatus.ACTIVE, staff.id
        session.add(consultation)
        session.add(ChatEntry(consultation_id=consultation.id, staff_id=staff.id, kind=ChatEntryKind.EVENT, text=f"スーパーバイザー {staff.display_name} が引き継ぎました"))
        announce(session, QUEUE_TOPIC, consultation_topic(consultation.id))
    raise web.HTTPSeeOther(f"/console/c/{consultation.id}")
