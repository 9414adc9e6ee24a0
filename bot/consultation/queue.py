"""The consultation queue: who is served next, taking a chat, hand-overs, endings and the idle sweep.

Order: an `imminent` consultation is always first. Everyone else is ranked by an effective priority:
the head start of their risk level plus the minutes they have waited, so a low-risk person who has
waited long enough is served before a medium-risk person who just arrived, and nobody is starved.
Every change a person should hear about goes out through the outbox, in their language.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.consultation.taps import HelpedTap, QueueTap
from bot.guidance.content import Content
from bot.line.messages import Message, postback_item, texts
from bot.line.outbox import enqueue, enqueue_rich_menu
from bot.line.richmenu import alias_id
from bot.storage.after_commit import announce
from bot.storage.models import (
    OPEN_CONSULTATION,
    Availability,
    AvailabilityChange,
    ChatEntry,
    ChatEntryKind,
    Consultation,
    ConsultationStatus,
    LineUser,
    RiskLevel,
    StaffUser,
    utcnow,
)

# Minutes of waiting each level is worth at arrival (imminent is always first, whatever the wait).
HEAD_START_MINUTES = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 20, RiskLevel.HIGH: 60}
# How many recent waits the estimate is drawn from, and how far back.
RECENT_WAITS = 20
RECENT_WINDOW = timedelta(days=7)

log = logging.getLogger(__name__)

QUEUE_TOPIC = "queue"
ALERTS_TOPIC = "alerts"


def consultation_topic(consultation_id: int) -> str:
    """The live topic of one consultation's chat."""
    return f"consultation:{consultation_id}"


def priority(consultation: Consultation, now: datetime) -> tuple[int, float]:
    """Sort key, highest first: imminent before all, then head start plus minutes waited."""
    waited = (now - consultation.queued_at).total_seconds() / 60
    level = RiskLevel(consultation.risk_level)
    if level is RiskLevel.IMMINENT:
        return (1, waited)
    return (0, HEAD_START_MINUTES[level] + waited)


def raise_level(session: AsyncSession, consultation: Consultation, level: RiskLevel) -> None:
    """Raise the consultation's level (never lower it); imminent alerts supervisors at once."""
    if level.rank <= RiskLevel(consultation.risk_level).rank:
        return
    consultation.risk_level = level
    topics = [QUEUE_TOPIC, consultation_topic(consultation.id)]
    if level is RiskLevel.IMMINENT:
        consultation.escalated_at = consultation.escalated_at or utcnow()
        topics.append(ALERTS_TOPIC)
        log.warning("consultation %s screened imminent; supervisors alerted", consultation.id, extra={"consultation_id": consultation.id})
    session.add(consultation)
    announce(session, *topics)


async def waiting(session: AsyncSession, now: datetime | None = None) -> list[Consultation]:
    """Every waiting consultation, the one to serve next first."""
    now = now or utcnow()
    rows = list(await session.exec(select(Consultation).where(Consultation.status == ConsultationStatus.REQUESTED)))
    return sorted(rows, key=lambda c: priority(c, now), reverse=True)


@dataclass(frozen=True)
class Place:
    """Where a waiting person stands: their position and an estimate drawn from recent waits."""

    position: int
    estimate: timedelta | None


async def place_in_line(session: AsyncSession, consultation: Consultation, now: datetime | None = None) -> Place:
    """The person's position among those waiting, and the median recent wait in their category."""
    now = now or utcnow()
    ahead = [c.id for c in await waiting(session, now)]
    position = ahead.index(consultation.id) + 1 if consultation.id in ahead else 1
    recent = list(
        await session.exec(
            select(Consultation.queued_at, Consultation.taken_at)
            .where(
                Consultation.category == consultation.category,
                col(Consultation.taken_at).is_not(None),
                Consultation.taken_at >= now - RECENT_WINDOW,
            )
            .order_by(col(Consultation.taken_at).desc())
            .limit(RECENT_WAITS)
        )
    )
    waits = [(taken - queued).total_seconds() for queued, taken in recent]
    return Place(position, timedelta(seconds=statistics.median(waits)) if waits else None)


def waiting_messages(content: Content, place: Place) -> list[Message]:
    """The person's place in line, with buttons to check again or cancel (shown on request, not pushed)."""
    words = content.messages
    lines = [words.queue_position.format(position=place.position)]
    if place.estimate is not None:
        lines.append(words.queue_estimate.format(minutes=max(1, round(place.estimate.total_seconds() / 60))))
    else:
        lines.append(words.queue_no_estimate)
    return texts("\n".join(lines), quick_reply=waiting_buttons(content))


def waiting_buttons(content: Content) -> list[dict]:
    """Check my place, or cancel."""
    words = content.messages
    return [
        postback_item(words.queue_check_label, QueueTap(do="status").pack()),
        postback_item(words.queue_cancel_label, QueueTap(do="cancel").pack()),
    ]


async def active_count(session: AsyncSession, staff_id: int) -> int:
    """How many chats a counselor has open."""
    result = await session.exec(
        select(func.count()).select_from(Consultation).where(
            Consultation.counselor_id == staff_id, Consultation.status == ConsultationStatus.ACTIVE
        )
    )
    return result.one()


class TakeRefused(Exception):
    """Taking the chat was refused; the message says why, for the counselor."""


async def take(session: AsyncSession, content: Content, consultation_id: int, staff: StaffUser) -> Consultation:
    """Give a waiting consultation to `staff`: exactly one of any number of simultaneous takers wins.

    The conditional UPDATE is the arbiter on both databases: on PostgreSQL the second updater waits
    for the first's row lock and then finds the status changed; SQLite runs writers one at a time.

    The counselor's own row is locked first (on PostgreSQL; SQLite has one writer), so their takes
    in two tabs or two processes are counted one after the other and the chat limit holds.

    Raises:
        TakeRefused: someone else took it, it is no longer waiting, or the counselor is at capacity.
    """
    await session.exec(select(StaffUser.id).where(StaffUser.id == staff.id).with_for_update())
    if await active_count(session, staff.id) >= staff.max_chats:
        raise TakeRefused(f"同時に対応できるのは {staff.max_chats} 件までです。")
    now = utcnow()
    result = await session.exec(
        update(Consultation)
        .where(Consultation.id == consultation_id, Consultation.status == ConsultationStatus.REQUESTED)
        .values(status=ConsultationStatus.ACTIVE, counselor_id=staff.id, taken_at=now)
    )
    if result.rowcount != 1:
        raise TakeRefused("この相談は、ほかの相談員が対応を始めたか、待機中ではなくなりました。")
    consultation = await session.get(Consultation, consultation_id)
    await session.refresh(consultation)
    session.add(ChatEntry(consultation_id=consultation_id, staff_id=staff.id, kind=ChatEntryKind.EVENT, text=f"{staff.display_name} が対応を始めました"))
    words = (await person_content(session, content, consultation.user_id)).messages
    enqueue(session, consultation.user_id, texts(words.counselor_joined.format(name=staff.display_name)), category=consultation.category)
    announce(session, QUEUE_TOPIC, consultation_topic(consultation_id))
    return consultation


async def person_content(session: AsyncSession, content: Content, user_id: str) -> Content:
    """The content in the language the person chose."""
    user = await session.get(LineUser, user_id)
    return content.in_language(user.language if user else None)


async def switch_rich_menu(session: AsyncSession, content: Content, user_id: str, *, consulting: bool) -> None:
    """The person's rich menu follows their consultation: 順番を確認 / 相談を終える while one is open,
    the guidance menu's entrances otherwise, in their language."""
    language = (await person_content(session, content, user_id)).language
    enqueue_rich_menu(session, user_id, alias_id("consultation" if consulting else "main", language))


async def send_to_person(session: AsyncSession, consultation: Consultation, staff: StaffUser, text: str) -> None:
    """A counselor's message: kept in the chat and pushed to the person through the outbox."""
    session.add(ChatEntry(consultation_id=consultation.id, staff_id=staff.id, kind=ChatEntryKind.COUNSELOR, text=text))
    enqueue(session, consultation.user_id, texts(text), category=consultation.category)
    announce(session, consultation_topic(consultation.id))


def add_note(session: AsyncSession, consultation: Consultation, staff: StaffUser, text: str) -> None:
    """A private note, for staff only."""
    session.add(ChatEntry(consultation_id=consultation.id, staff_id=staff.id, kind=ChatEntryKind.NOTE, text=text))
    announce(session, consultation_topic(consultation.id))


async def end(session: AsyncSession, content: Content, consultation: Consultation, staff: StaffUser) -> None:
    """End the chat: a short closing message, and the one-tap "did this help?" question."""
    consultation.status, consultation.ended_at = ConsultationStatus.ENDED, utcnow()
    session.add(consultation)
    session.add(ChatEntry(consultation_id=consultation.id, staff_id=staff.id, kind=ChatEntryKind.EVENT, text=f"{staff.display_name} が相談を終了しました"))
    words = (await person_content(session, content, consultation.user_id)).messages
    helped = [
        postback_item(words.helped_yes_label, HelpedTap(id=consultation.id, v="yes").pack()),
        postback_item(words.helped_no_label, HelpedTap(id=consultation.id, v="no").pack()),
    ]
    messages = texts(words.consultation_ended) + texts(words.helped_question, quick_reply=helped)
    enqueue(session, consultation.user_id, messages, category=consultation.category)
    await switch_rich_menu(session, content, consultation.user_id, consulting=False)
    announce(session, QUEUE_TOPIC, consultation_topic(consultation.id))


async def transfer(
    session: AsyncSession,
    consultation: Consultation,
    staff: StaffUser,
    note: str,
    *,
    category: str | None = None,
    counselor: StaffUser | None = None,
) -> None:
    """Hand a chat to another counselor, or back to the queue of another category, with a note."""
    if counselor is not None:
        consultation.counselor_id = counselor.id
        what = f"{staff.display_name} が {counselor.display_name} に引き継ぎました"
    else:
        consultation.status, consultation.counselor_id = ConsultationStatus.REQUESTED, None
        consultation.category = category or consultation.category
        what = f"{staff.display_name} が「{consultation.category}」の待機列に戻しました"
    session.add(consultation)
    session.add(ChatEntry(consultation_id=consultation.id, staff_id=staff.id, kind=ChatEntryKind.EVENT, text=what))
    if note.strip():
        session.add(ChatEntry(consultation_id=consultation.id, staff_id=staff.id, kind=ChatEntryKind.NOTE, text=note))
    announce(session, QUEUE_TOPIC, consultation_topic(consultation.id))


async def set_availability(session: AsyncSession, staff: StaffUser, availability: Availability) -> int:
    """Change a counselor's availability; going offline puts their open chats back in line.

    Returns how many chats went back to the queue. They keep their original place (`queued_at`),
    so nobody is stuck with someone absent or sent to the back for it. Each actual change is kept
    as an `AvailabilityChange`, the history the report's staffing by hour is drawn from.
    """
    if staff.availability != availability:
        session.add(AvailabilityChange(staff_id=staff.id, availability=availability))
    staff.availability = availability
    session.add(staff)
    if availability is not Availability.OFFLINE:
        return 0
    open_chats = list(
        await session.exec(
            select(Consultation).where(Consultation.counselor_id == staff.id, Consultation.status == ConsultationStatus.ACTIVE)
        )
    )
    for consultation in open_chats:
        consultation.status, consultation.counselor_id = ConsultationStatus.REQUESTED, None
        session.add(consultation)
        session.add(ChatEntry(consultation_id=consultation.id, staff_id=staff.id, kind=ChatEntryKind.EVENT, text=f"{staff.display_name} がオフラインになり、待機列に戻りました"))
        announce(session, consultation_topic(consultation.id))
    announce(session, QUEUE_TOPIC)
    return len(open_chats)


async def sweep(session: AsyncSession, content: Content, idle_after: timedelta, high_risk_max_wait: timedelta) -> None:
    """Close chats the person left (kindly), and alert supervisors where a high-risk person needs one.

    A high-risk consultation is never closed for silence: it is escalated instead. A high-risk
    person waiting longer than `high_risk_max_wait` is escalated too. Each is escalated once.

    Every change is one conditional UPDATE that re-checks its reason in the database, so with
    several processes sweeping at once each consultation is closed or escalated exactly once, and
    a counselor's own end, a take-over or a raised level committed meanwhile is never overwritten
    (on PostgreSQL an UPDATE that waited for another's row lock re-checks its WHERE afterwards).
    """
    now = utcnow()
    serious = (RiskLevel.HIGH, RiskLevel.IMMINENT)
    silent = and_(
        Consultation.status == ConsultationStatus.ACTIVE,
        Consultation.taken_at < now - idle_after,
        or_(col(Consultation.last_person_message_at).is_(None), Consultation.last_person_message_at < now - idle_after),
    )
    waited_too_long = and_(
        Consultation.status == ConsultationStatus.REQUESTED, Consultation.queued_at < now - high_risk_max_wait
    )
    escalated = await session.exec(
        update(Consultation)
        .where(col(Consultation.risk_level).in_(serious), col(Consultation.escalated_at).is_(None), or_(waited_too_long, silent))
        .values(escalated_at=now)
        .execution_options(synchronize_session=False)
    )
    closed = list(
        await session.exec(
            update(Consultation)
            .where(silent, col(Consultation.risk_level).not_in(serious))
            .values(status=ConsultationStatus.CLOSED_IDLE, ended_at=now)
            .returning(Consultation.id, Consultation.user_id, Consultation.category)
            .execution_options(synchronize_session=False)
        )
    )
    for consultation_id, user_id, category in closed:
        session.add(ChatEntry(consultation_id=consultation_id, kind=ChatEntryKind.EVENT, text="応答がないため終了しました"))
        words = (await person_content(session, content, user_id)).messages
        enqueue(session, user_id, texts(words.consultation_idle_closed), category=category)
        await switch_rich_menu(session, content, user_id, consulting=False)
        announce(session, QUEUE_TOPIC, consultation_topic(consultation_id))
    if escalated.rowcount:
        announce(session, ALERTS_TOPIC, QUEUE_TOPIC)


async def alerts(session: AsyncSession) -> list[Consultation]:
    """Open consultations escalated to supervisors, most urgent first."""
    rows = list(
        await session.exec(
            select(Consultation).where(col(Consultation.status).in_(OPEN_CONSULTATION), col(Consultation.escalated_at).is_not(None))
        )
    )
    return sorted(rows, key=lambda c: (RiskLevel(c.risk_level).rank, -c.escalated_at.timestamp()), reverse=True)
