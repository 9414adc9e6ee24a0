"""Consultations: a person's request for a counselor in one category.

The guidance menu opens one; the consultation queue (a later capability) takes it from `REQUESTED`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Consultation, ConsultationStatus, UserMessage


async def open_consultation(session: AsyncSession, user_id: str) -> Consultation | None:
    """The person's consultation still waiting for or with a counselor, if any."""
    result = await session.exec(
        select(Consultation)
        .where(Consultation.user_id == user_id, Consultation.status == ConsultationStatus.REQUESTED)
        .order_by(Consultation.id.desc())
    )
    return result.first()


async def request_consultation(
    session: AsyncSession, user_id: str, category: str, at: datetime, in_hours: bool
) -> Consultation:
    """Record a request in a category, with everything the person wrote before choosing it.

    Out of hours the request is still recorded (the response-rate report counts it as arrived out
    of hours) but not opened, since nobody will take it.
    """
    if not in_hours:
        # What they wrote stays unattached, so it goes with their next request in hours.
        consultation = Consultation(
            user_id=user_id, category=category, arrived_in_hours=False, status=ConsultationStatus.UNSERVED, created_at=at
        )
        session.add(consultation)
        return consultation
    consultation = await open_consultation(session, user_id)
    if consultation is None:
        consultation = Consultation(user_id=user_id, category=category, arrived_in_hours=True, created_at=at)
        session.add(consultation)
        await session.flush()
    else:
        # Choosing again while waiting means they picked the wrong category: move, don't duplicate.
        consultation.category = category
        session.add(consultation)
    await session.exec(
        update(UserMessage)
        .where(UserMessage.user_id == user_id, UserMessage.consultation_id.is_(None))
        .values(consultation_id=consultation.id)
    )
    return consultation
