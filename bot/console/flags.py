"""Moderator review of risk flags, counselors' reports of missed risk, and emergency response records."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.appkeys import CONTENT, SCREENER, SETTINGS
from bot.console import render
from bot.console.actions import audited, find_or_404
from bot.console.auth import STAFF_KEY, requires
from bot.console.counselor import can_open
from bot.consultation.queue import consultation_topic, raise_level
from bot.consultation.risk import FLAGS_TOPIC, defused, lower_in_context
from bot.storage.after_commit import announce
from bot.storage.models import (
    Consultation,
    EmergencyResponse,
    FlagState,
    RiskFlag,
    RiskLevel,
    StaffRole,
    UserMessage,
    utcnow,
)

routes = web.RouteTableDef()

REVIEWERS = (StaffRole.MODERATOR, StaffRole.SUPERVISOR)
# Messages shown on each side of a flagged one (folded), so it is judged in its context.
CONTEXT = 2
PAGE_SIZE = 100
EMERGENCY_CONTACTS = ("110", "119", "児童相談所", "家族", "その他")
ASSESSMENT = {"thoughts": "死にたい気持ち", "plan": "計画", "means": "手段", "timeframe": "時期"}
UNOPENABLE_MESSAGE = "このメッセージは開けません。"


def _filters(request: web.Request) -> dict[str, str]:
    query = request.query
    return {key: query.get(key, "") for key in ("level", "tag", "state", "day")}


async def _flags(session: AsyncSession, filters: dict[str, str], zone: Any) -> list[RiskFlag]:
    statement = select(RiskFlag).order_by(col(RiskFlag.created_at).desc()).limit(PAGE_SIZE)
    if filters["level"] in list(RiskLevel):
        statement = statement.where(RiskFlag.level == filters["level"])
    if filters["state"] in list(FlagState):
        statement = statement.where(RiskFlag.state == filters["state"])
    if filters["day"]:
        try:
            day = date.fromisoformat(filters["day"])
        except ValueError:
            raise web.HTTPBadRequest(text="日付は YYYY-MM-DD で指定してください。") from None
        start = datetime.combine(day, time(), zone)
        statement = statement.where(RiskFlag.created_at >= start, RiskFlag.created_at < start + timedelta(days=1))
    flags = list(await session.exec(statement))
    if filters["tag"]:
        flags = [f for f in flags if any(t["name"] == filters["tag"] for t in f.tags)]
    return flags


async def _in_context(session: AsyncSession, flag: RiskFlag) -> tuple[list[UserMessage], UserMessage, list[UserMessage]]:
    """The person's messages just before the flagged one, the flagged one, and those just after it."""
    message = await session.get(UserMessage, flag.message_id)
    mine = UserMessage.user_id == message.user_id
    before = list(await session.exec(select(UserMessage).where(mine, UserMessage.sent_at < message.sent_at).order_by(col(UserMessage.sent_at).desc()).limit(CONTEXT)))
    after = list(await session.exec(select(UserMessage).where(mine, UserMessage.sent_at > message.sent_at).order_by(UserMessage.sent_at).limit(CONTEXT)))
    return list(reversed(before)), message, after


@routes.get("/console/flags")
@requires(*REVIEWERS)
async def flags_page(request: web.Request) -> web.Response:
    """Flags, newest first, filtered by level, tag, state and day; each message in its context."""
    filters = _filters(request)
    async with audited(request, "opened_flags") as audit:
        flags = await _flags(audit.session, filters, request.app[SETTINGS].timezone)
        shown = [(flag, await _in_context(audit.session, flag)) for flag in flags]
        audit.detail = str(filters)
    return render(request, "flags.html", shown=shown, filters=filters, levels=list(RiskLevel), states=list(FlagState),
                  model_error=request.app[SCREENER].model_error, defused=defused)


@routes.post("/console/flags/{id}/review")
@requires(*REVIEWERS)
async def review(request: web.Request) -> web.Response:
    """Confirm, relabel (with a level) or dismiss (with a reason) a flag; the decision is audited."""
    form = await request.post()
    decision, reason = str(form.get("decision", "")), str(form.get("reason", "")).strip()
    async with audited(request, "flag_reviewed") as audit:
        flag = await find_or_404(audit.session, RiskFlag, request.match_info["id"], "このフラグは見つかりません。")
        if decision == "confirm":
            flag.state, flag.reviewed_level = FlagState.CONFIRMED, flag.level
        elif decision == "relabel" and str(form.get("level")) in list(RiskLevel):
            flag.state, flag.reviewed_level = FlagState.RELABELLED, RiskLevel(str(form.get("level")))
        elif decision == "dismiss" and reason:
            flag.state, flag.reviewed_level = FlagState.DISMISSED, RiskLevel.LOW
        else:
            raise web.HTTPBadRequest(text="判断を選んでください（見送りには理由が必要です）。")
        flag.reviewed_by, flag.reviewed_at, flag.review_reason = request[STAFF_KEY].id, utcnow(), reason or None
        audit.session.add(flag)
        audit.action, audit.consultation_id = f"flag_{flag.state}", flag.consultation_id
        audit.detail = f"flag {flag.id}: {flag.level} → {flag.reviewed_level}; {reason}"
        announce(audit.session, FLAGS_TOPIC)
    raise web.HTTPSeeOther("/console/flags")


@routes.post("/console/flags/{id}/lower")
@requires(*REVIEWERS)
async def lower(request: web.Request) -> web.Response:
    """Lower a flag (and its consultation, as far as nothing else holds it up) to the conversation
    reader's verdict in context: one click, audited. The level never drops without it."""
    async with audited(request, "flag_lowered_in_context") as audit:
        flag = await find_or_404(audit.session, RiskFlag, request.match_info["id"], "このフラグは見つかりません。")
        context = defused(flag)
        if context is None or flag.state != FlagState.OPEN:
            raise web.HTTPConflict(text="このフラグは文脈による引き下げの対象ではありません。")
        before = flag.level
        category = None
        if flag.consultation_id:
            consultation = await audit.session.get(Consultation, flag.consultation_id)
            category = request.app[CONTENT].menu.category(consultation.category)
        consultation = await lower_in_context(audit.session, flag, request[STAFF_KEY].id, RiskLevel(category.risk_floor if category else "low"))
        flag.review_reason = "会話の流れで読むとリスクは低い（文脈による引き下げ）"
        audit.consultation_id = consultation.id if consultation else None
        audit.detail = f"flag {flag.id}: {before} → {context} in context" + (f"; consultation now {consultation.risk_level}" if consultation else "")
    raise web.HTTPSeeOther(f"/console/flags#flag-{flag.id}")


@routes.post("/console/messages/{id}/report")
@requires(StaffRole.COUNSELOR, StaffRole.SUPERVISOR)
async def report_missed(request: web.Request) -> web.Response:
    """A counselor reports a risk the screening missed on a message of a chat they may open."""
    form = await request.post()
    level, reason = str(form.get("level", "")), str(form.get("reason", "")).strip()
    if level not in list(RiskLevel):
        raise web.HTTPBadRequest(text="リスクの段階を選んでください。")
    staff = request[STAFF_KEY]
    async with audited(request, "reported_missed_risk") as audit:
        session = audit.session
        message = await find_or_404(session, UserMessage, request.match_info["id"], UNOPENABLE_MESSAGE)
        consultation = await session.get(Consultation, message.consultation_id) if message.consultation_id else None
        if consultation is None or not can_open(staff, consultation):
            raise web.HTTPNotFound(text=UNOPENABLE_MESSAGE)
        session.add(RiskFlag(message_id=message.id, user_id=message.user_id, consultation_id=consultation.id, level=RiskLevel(level), source="counselor report", reported_by=staff.id, review_reason=reason or None))
        raise_level(session, consultation, RiskLevel(level))
        audit.consultation_id, audit.detail = consultation.id, f"message {message.id}: {level}; {reason}"
        announce(session, FLAGS_TOPIC, consultation_topic(consultation.id))
    raise web.HTTPSeeOther(f"/console/c/{consultation.id}")


@routes.get("/console/c/{id}/emergency")
@requires(StaffRole.SUPERVISOR)
async def emergency_page(request: web.Request) -> web.Response:
    """The emergency response record of a consultation (opened on first save)."""
    async with audited(request, "opened_emergency_record") as audit:
        consultation = await _consultation(request, audit.session)
        record = (await audit.session.exec(select(EmergencyResponse).where(EmergencyResponse.consultation_id == consultation.id))).first()
        audit.consultation_id = consultation.id
    return render(request, "emergency.html", consultation=consultation, record=record, questions=ASSESSMENT, contacts=EMERGENCY_CONTACTS)


@routes.post("/console/c/{id}/emergency")
@requires(StaffRole.SUPERVISOR)
async def emergency_save(request: web.Request) -> web.Response:
    """Save what was asked, add a contact made, or close the record with a note; every save is audited."""
    form = await request.post()
    async with audited(request, "saved_emergency_record") as audit:
        consultation = await _consultation(request, audit.session)
        record = (await audit.session.exec(select(EmergencyResponse).where(EmergencyResponse.consultation_id == consultation.id))).first()
        if record is None:
            record = EmergencyResponse(consultation_id=consultation.id, opened_by=request[STAFF_KEY].id)
        record.assessment = {key: str(form.get(key, "")).strip() for key in ASSESSMENT}
        who = str(form.get("contact_who", ""))
        if who:
            if who not in EMERGENCY_CONTACTS:
                raise web.HTTPBadRequest(text="連絡先を選んでください。")
            record.contacts = [*record.contacts, {"who": who, "at": utcnow().isoformat(), "reached": form.get("contact_reached") == "yes", "note": str(form.get("contact_note", "")).strip()}]
        closing = str(form.get("closing_note", "")).strip()
        if closing:
            record.closing_note, record.closed_at = closing, utcnow()
        audit.session.add(record)
        audit.consultation_id, audit.detail = consultation.id, who or ("closed" if closing else "assessment")
    raise web.HTTPSeeOther(f"/console/c/{consultation.id}/emergency")


async def _consultation(request: web.Request, session: AsyncSession) -> Consultation:
    return await find_or_404(session, Consultation, request.match_info["id"], "この相談は見つかりません。")
