"""Retention: each kind of data is kept only as long as content/retention.yaml says.

`apply_retention` empties what has outlived its period and deletes rows kept only for operations.
Every step is a conditional UPDATE or DELETE (`… WHERE <past its period> AND <not yet removed>`) or
rewrites only the rows that still hold words, so running it twice, or in several processes at once,
removes each thing once and the others find nothing left. Conditions read ids, states and times,
never the text (the columns that hold it are ciphertext, `storage/crypto.py`).
The report counts rows and structured fields only, so its figures stay the same across a purge.

`NightlyRetention` runs it every night in every process (APScheduler, as the room schedule does).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.guidance.content import Retention
from bot.line.inbox import SessionFactory
from bot.privacy.texts import strip_all
from bot.rooms.sessions import forget_transcripts
from bot.storage.models import (
    OPEN_CONSULTATION,
    AuditEntry,
    ChatEntry,
    ChatEntryKind,
    Consultation,
    ConsultationRecord,
    EmergencyResponse,
    InboxEvent,
    InboxStatus,
    MessageContent,
    OutboxMessage,
    OutboxStatus,
    RiskFlag,
    UserMessage,
    utcnow,
)

log = logging.getLogger(__name__)

# The hour (service clock) the nightly run starts: the quietest hour of the day.
NIGHTLY_HOUR = 4
# What staff wrote in a consultation that is about the person; events ("taken", "ended") stay.
WRITTEN_KINDS = (ChatEntryKind.COUNSELOR, ChatEntryKind.NOTE)
# Flags and emergency records are stripped in Python (their words sit inside encrypted JSON): this many
# rows are loaded at a time, so memory stays flat however many there are.
STRIP_BATCH = 500


def _ended_before(cutoff: datetime) -> object:
    """Ids of consultations that ended (or were closed without an end time) before `cutoff`."""
    return select(Consultation.id).where(
        col(Consultation.status).not_in(OPEN_CONSULTATION),
        func.coalesce(Consultation.ended_at, Consultation.created_at) < cutoff,
    )


async def apply_retention(session: AsyncSession, policy: Retention) -> dict[str, int]:
    """Remove what has outlived its period, as of `utcnow()`; the caller commits (or rolls back for a dry run).

    Returns how many rows each step changed, keyed `table: what` in a fixed order.
    """
    now = utcnow()
    consultations_ended = _ended_before(now - timedelta(days=policy.consultation_text_days))
    outside = now - timedelta(days=policy.outside_consultation_days)
    counts: dict[str, int] = {}

    async def run(name: str, statement: object) -> None:
        counts[name] = (await session.exec(statement)).rowcount

    await run(
        "inboxevent: processed events deleted",
        delete(InboxEvent).where(
            InboxEvent.status != InboxStatus.PENDING,
            InboxEvent.received_at < now - timedelta(days=policy.webhook_event_days),
        ),
    )
    await run(
        "outboxmessage: finished messages deleted",
        delete(OutboxMessage).where(
            OutboxMessage.status != OutboxStatus.PENDING,
            OutboxMessage.created_at < now - timedelta(days=policy.sent_message_days),
        ),
    )
    # A person's message past its period: in a consultation that ended long enough ago, or outside any.
    message_expired = or_(
        col(UserMessage.consultation_id).in_(consultations_ended),
        col(UserMessage.consultation_id).is_(None) & (UserMessage.sent_at < outside),
    )
    await run(
        "usermessage: texts deleted",
        update(UserMessage).where(col(UserMessage.text).is_not(None), message_expired).values(text=None),
    )
    await run(
        "messagecontent: images and files deleted",
        delete(MessageContent).where(col(MessageContent.message_id).in_(select(UserMessage.id).where(message_expired))),
    )
    await run(
        "usermessage: read tokens deleted",
        update(UserMessage).where(col(UserMessage.read_token).is_not(None), message_expired).values(read_token=None),
    )
    await run(
        "chatentry: texts deleted",
        update(ChatEntry)
        .where(
            col(ChatEntry.text).is_not(None),
            col(ChatEntry.kind).in_(WRITTEN_KINDS),
            col(ChatEntry.consultation_id).in_(consultations_ended),
        )
        .values(text=None),
    )
    counts["riskflag: quoted words deleted"] = await _strip_in_batches(
        session,
        RiskFlag,
        or_(
            col(RiskFlag.consultation_id).in_(consultations_ended),
            col(RiskFlag.consultation_id).is_(None) & (RiskFlag.created_at < outside),
        ),
    )
    counts["roommessage: texts deleted"] = await forget_transcripts(session, policy.outside_consultation_days)
    await run(
        "consultationrecord: notes deleted",
        update(ConsultationRecord)
        .where(
            col(ConsultationRecord.note).is_not(None),
            func.coalesce(ConsultationRecord.filed_at, ConsultationRecord.updated_at) < now - timedelta(days=policy.record_note_days),
        )
        .values(note=None),
    )
    counts["emergencyresponse: free text deleted"] = await _strip_in_batches(
        session, EmergencyResponse, EmergencyResponse.closed_at < now - timedelta(days=policy.emergency_note_days)
    )
    await run("auditentry: entries deleted", delete(AuditEntry).where(AuditEntry.at < now - timedelta(days=policy.audit_days)))
    return counts


async def _strip_in_batches(session: AsyncSession, model: type[RiskFlag] | type[EmergencyResponse], condition: object) -> int:
    """Strip the words of every row of `model` matching `condition`, `STRIP_BATCH` rows at a time in id order."""
    changed, last = 0, 0
    while True:
        rows = list(await session.exec(select(model).where(condition, col(model.id) > last).order_by(col(model.id)).limit(STRIP_BATCH)))
        if not rows:
            return changed
        changed += await strip_all(session, rows)  # flushes
        last = rows[-1].id
        for row in rows:
            session.expunge(row)


class NightlyRetention:
    """Applies the retention policy every night at `NIGHTLY_HOUR`, in this process (repeats elsewhere find nothing)."""

    def __init__(self, sessions: SessionFactory, policy: Retention, zone: ZoneInfo) -> None:
        self._sessions, self._policy = sessions, policy
        self._scheduler = AsyncIOScheduler(timezone=zone)
        self._scheduler.add_job(self.run, CronTrigger(hour=NIGHTLY_HOUR, timezone=zone), id="retention", misfire_grace_time=3600)
        self._running: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the schedule (within the running event loop)."""
        self._scheduler.start()

    async def stop(self) -> None:
        """No new run starts; one under way finishes before the database it uses is closed."""
        self._scheduler.pause()
        await asyncio.sleep(0)
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)
        self._scheduler.shutdown(wait=False)

    async def run(self) -> None:
        """One pass; a failure is logged and the next night tries again."""
        self._running = asyncio.current_task()
        try:
            async with self._sessions() as session:
                counts = await apply_retention(session, self._policy)
                await session.commit()
            log.info("retention: %s", ", ".join(f"{name} {count}" for name, count in counts.items() if count) or "nothing past its period")
        except Exception:
            log.exception("retention failed; the next night tries again")
        finally:
            self._running = None
