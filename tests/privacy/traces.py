"""Helpers for the privacy tests: a simulated period with words in every place words are kept, and a
search of every table for a string."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select as core_select
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.reporting.figures import Period, Report, build_report
from bot.reporting.simulate import simulate
from bot.storage.models import (
    ChatEntry,
    ChatEntryKind,
    Consultation,
    ConsultationRecord,
    ConsultationStatus,
    EmergencyResponse,
    OutboxMessage,
    OutboxStatus,
    RiskFlag,
    RiskLevel,
    RoomMessage,
    RoomParticipant,
    UserMessage,
)

ZONE = ZoneInfo("Asia/Tokyo")
UNTIL = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # Thursday 00:00 in Tokyo
PERIOD = Period(date(2026, 11, 18), date(2026, 11, 26), ZONE)


async def simulated_period_with_words(session: AsyncSession, content) -> None:
    """A simulated week, then words in every table that holds them, for every answered consultation."""
    await simulate(session, content, ZONE, 7, per_day=15, seed=5, until=UNTIL)
    await session.flush()
    answered = list(await session.exec(select(Consultation).where(Consultation.status == ConsultationStatus.ENDED)))
    for n, consultation in enumerate(answered):
        await add_words(session, consultation, n)
    for participant in await session.exec(select(RoomParticipant)):
        message = UserMessage(user_id=participant.user_id, line_message_id=f"room-{participant.id}", kind="text", text=f"居場所での言葉{participant.id}。", sent_at=participant.joined_at)
        session.add(message)
        await session.flush()
        session.add(RoomMessage(session_id=participant.session_id, participant_id=participant.id, user_message_id=message.id, kind="text", text=message.text, created_at=participant.joined_at))
    await session.commit()


async def add_words(session: AsyncSession, consultation: Consultation, n: int) -> None:
    """What a person and their counselor write in one consultation, in every place it is kept."""
    at = consultation.taken_at or consultation.created_at
    message = UserMessage(
        user_id=consultation.user_id, line_message_id=f"m-{consultation.id}", kind="text", text=f"相談者の言葉{consultation.id}。", consultation_id=consultation.id, sent_at=at
    )
    session.add(message)
    await session.flush()
    session.add(ChatEntry(consultation_id=consultation.id, staff_id=consultation.counselor_id, kind=ChatEntryKind.COUNSELOR, text=f"相談員の返事{consultation.id}。", created_at=at))
    session.add(ChatEntry(consultation_id=consultation.id, staff_id=consultation.counselor_id, kind=ChatEntryKind.NOTE, text=f"相談員のメモ{consultation.id}。", created_at=at))
    level = (RiskLevel.MEDIUM, RiskLevel.HIGH)[n % 2]
    session.add(
        RiskFlag(
            message_id=message.id, user_id=consultation.user_id, consultation_id=consultation.id, level=level, source="lexicon",
            tags=[{"name": "suicidal_ideation", "span": [0, 5], "text": f"相談者の言葉{consultation.id}。"}], created_at=at,
        )
    )
    record = await session.get(ConsultationRecord, consultation.id)
    if record is not None:
        record.note = f"記録票の自由記述{consultation.id}。"
        session.add(record)
    if n % 5 == 0:
        session.add(
            EmergencyResponse(
                consultation_id=consultation.id, opened_by=consultation.counselor_id, assessment={"plan": f"計画の答え{consultation.id}。"},
                contacts=[{"who": "119", "at": at.isoformat(), "reached": True, "note": f"連絡のメモ{consultation.id}。"}],
                closing_note=f"終わりのメモ{consultation.id}。", created_at=at, closed_at=at + timedelta(hours=1),
            )
        )
    session.add(OutboxMessage(to=consultation.user_id, messages=[{"type": "text", "text": f"相談員の返事{consultation.id}。"}], status=OutboxStatus.SENT, created_at=at))


async def report(session: AsyncSession) -> Report:
    """The analysis report of the simulated period."""
    return await build_report(session, PERIOD, None)


async def everything(session: AsyncSession) -> str:
    """Every row of every table as text, to search for what must be gone."""
    rows = []
    for table in SQLModel.metadata.sorted_tables:
        rows += [f"{table.name}: {tuple(row)!r}" for row in await session.exec(core_select(table))]
    return "\n".join(rows)
