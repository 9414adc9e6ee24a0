"""Consultations as the person on LINE meets them: asking for a counselor, waiting, talking, the end.

The guidance menu opens one; the queue (`bot/consultation/queue.py`) serves it; this module answers the person.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.consultation.queue import QUEUE_TOPIC, consultation_topic, place_in_line, raise_level, switch_rich_menu, waiting_messages
from bot.consultation.taps import HelpedTap, QueueTap
from bot.conversation.router import Router, Turn
from bot.guidance.content import Category
from bot.line.messages import texts
from bot.storage.after_commit import announce
from bot.storage.models import (
    OPEN_CONSULTATION,
    Consultation,
    ConsultationStatus,
    RiskFlag,
    RiskLevel,
    UserMessage,
)

router = Router()


async def open_consultation(session: AsyncSession, user_id: str) -> Consultation | None:
    """The person's consultation still waiting for or with a counselor, if any."""
    result = await session.exec(
        select(Consultation)
        .where(Consultation.user_id == user_id, col(Consultation.status).in_(OPEN_CONSULTATION))
        .order_by(col(Consultation.id).desc())
    )
    return result.first()


async def request_consultation(
    session: AsyncSession, user_id: str, category: Category, at: datetime, in_hours: bool
) -> Consultation:
    """Record a request in a category, with everything the person wrote before choosing it.

    What they wrote carries its screened level: most people write first and choose after, and the
    queue must see the risk in those first words. The category's `risk_floor` is the least it starts
    at. Out of hours the request is still recorded (the response-rate report counts it as arrived out
    of hours) but not opened, since nobody will take it.
    """
    if not in_hours:
        # What they wrote stays unattached, so it goes with their next request in hours.
        consultation = Consultation(
            user_id=user_id, category=category.id, arrived_in_hours=False, status=ConsultationStatus.UNSERVED, created_at=at
        )
        session.add(consultation)
        return consultation
    consultation = await open_consultation(session, user_id)
    if consultation is None:
        consultation = Consultation(user_id=user_id, category=category.id, arrived_in_hours=True, created_at=at, queued_at=at)
        session.add(consultation)
        await session.flush()
    elif consultation.status == ConsultationStatus.REQUESTED:
        # Choosing again while waiting means they picked the wrong category: move, don't duplicate.
        consultation.category = category.id
        session.add(consultation)
    await session.exec(
        update(UserMessage)
        .where(UserMessage.user_id == user_id, col(UserMessage.consultation_id).is_(None))
        .values(consultation_id=consultation.id)
    )
    await _carry_earlier_flags(session, user_id, consultation)
    raise_level(session, consultation, RiskLevel(category.risk_floor))
    announce(session, QUEUE_TOPIC, consultation_topic(consultation.id))
    return consultation


async def _carry_earlier_flags(session: AsyncSession, user_id: str, consultation: Consultation) -> None:
    """Link the person's unattached flags to the consultation and raise it to their highest level."""
    flags = await _unattached_flags(session, user_id)
    for flag in flags:
        flag.consultation_id = consultation.id
        session.add(flag)
    raise_level(session, consultation, _highest(flags))


async def earlier_level(session: AsyncSession, user_id: str) -> RiskLevel:
    """The highest level of what the person wrote that belongs to no consultation yet (`low` if nothing)."""
    return _highest(await _unattached_flags(session, user_id))


async def _unattached_flags(session: AsyncSession, user_id: str) -> list[RiskFlag]:
    return list(await session.exec(select(RiskFlag).where(RiskFlag.user_id == user_id, col(RiskFlag.consultation_id).is_(None))))


def _highest(flags: list[RiskFlag]) -> RiskLevel:
    """A moderator's review counts: a relabelled flag carries its new level, a dismissed one `low`."""
    return max((RiskLevel(f.reviewed_level or f.level) for f in flags), key=lambda level: level.rank, default=RiskLevel.LOW)


async def crisis_consultation(turn: Turn) -> Consultation:
    """The person's open consultation, or a new one in the crisis category (open 24 hours) when they have none."""
    consultation = await open_consultation(turn.session, turn.source_id)
    if consultation is None:
        menu = turn.all_content.menu
        crisis = menu.category(menu.crisis_category or "")
        consultation = await request_consultation(turn.session, turn.source_id, crisis, turn.record.occurred_at, True)
        await switch_rich_menu(turn.session, turn.all_content, turn.source_id, consulting=True)
    return consultation


def note_person_wrote(session: AsyncSession, consultation: Consultation, message: UserMessage) -> None:
    """A message from the person belongs to their open consultation and shows in the console now."""
    message.consultation_id = consultation.id
    consultation.last_person_message_at = message.sent_at
    session.add(consultation)
    announce(session, consultation_topic(consultation.id))


@router.tap(QueueTap)
async def queue_action(turn: Turn, tap: QueueTap) -> None:
    """The person asked where they stand, or to cancel."""
    words = turn.content.messages
    consultation = await open_consultation(turn.session, turn.source_id)
    if consultation is None:
        turn.reply(texts(words.queue_not_waiting))
        return
    if consultation.status == ConsultationStatus.ACTIVE:
        turn.reply(texts(words.queue_in_chat))
        return
    if tap.do == "cancel":
        consultation.status = ConsultationStatus.CANCELLED
        consultation.ended_at = turn.record.occurred_at
        turn.session.add(consultation)
        announce(turn.session, QUEUE_TOPIC, consultation_topic(consultation.id))
        turn.reply(texts(words.queue_cancelled))
        await switch_rich_menu(turn.session, turn.all_content, turn.source_id, consulting=False)
        return
    turn.reply(waiting_messages(turn.content, await place_in_line(turn.session, consultation)))


@router.tap(HelpedTap)
async def record_helped(turn: Turn, tap: HelpedTap) -> None:
    """The one-tap answer to "did this help?", for the person's own ended consultation only."""
    consultation = await turn.session.get(Consultation, tap.id)
    if consultation is None or consultation.user_id != turn.source_id:
        return
    consultation.helped = tap.v == "yes"
    turn.session.add(consultation)
    turn.reply(texts(turn.content.messages.helped_thanks))
