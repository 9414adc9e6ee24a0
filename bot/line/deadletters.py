"""Dead letters: inbox events and outbox rows given up after their attempts, kept until someone acts.

Nothing is dropped silently: a failed event or row is counted in `/healthz` and `/metrics`, listed
for supervisors (what, whose, why, since when; never what the person wrote) and put back by
`tsunagi inbox retry` / `tsunagi outbox retry`, or set aside for good by `... dismiss`.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.after_commit import announce, note_send_queued
from bot.storage.models import InboxEvent, InboxStatus, OutboxMessage, OutboxStatus, utcnow

# The live topic of the failure lists: an event or row failed, or was retried or dismissed.
FAILURES_TOPIC = "failures"
# How many of each kind a page lists (the counts are always whole).
LISTED = 200


@dataclass(frozen=True)
class FailureCounts:
    """How many inbox events and outbox rows are given up and waiting for someone."""

    inbox: int
    outbox: int

    @property
    def any(self) -> bool:
        """Whether anything waits."""
        return bool(self.inbox or self.outbox)


@dataclass(frozen=True)
class Failure:
    """One dead letter as supervisors see it: no message text, only what, whose, why and when."""

    kind: str  # "inbox" or "outbox"
    id: int
    what: str
    whose: str
    why: str
    since: datetime
    attempts: int
    # The keyword floor's level of a failed text event (high and imminent raised the alarm).
    floor_level: str | None = None


def describe(exc: BaseException) -> str:
    """What failed and where, without the exception's message: that can quote what a person wrote
    (the SDK puts a whole message in its ValueError), and this goes to logs and supervisors' pages."""
    frames = traceback.extract_tb(exc.__traceback__)
    # The deepest line of tsunagi's own code says most; a library's innermost frame, little.
    ours = [f for f in frames if f"{os.sep}bot{os.sep}" in f.filename or f"{os.sep}moderation{os.sep}" in f.filename]
    where = (ours or frames or [None])[-1]
    place = f" at {Path(where.filename).name}:{where.lineno} in {where.name}" if where else ""
    return f"{type(exc).__module__}.{type(exc).__qualname__}{place}".removeprefix("builtins.")


async def failure_counts(session: AsyncSession) -> FailureCounts:
    """Failed inbox events and outbox rows, counted."""
    inbox = await session.exec(select(func.count()).select_from(InboxEvent).where(InboxEvent.status == InboxStatus.FAILED))
    outbox = await session.exec(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
    )
    return FailureCounts(inbox.one(), outbox.one())


async def failures(session: AsyncSession) -> list[Failure]:
    """The dead letters, those the keyword floor found urgent first, then the oldest."""
    events = await session.exec(
        select(InboxEvent).where(InboxEvent.status == InboxStatus.FAILED).order_by(InboxEvent.id).limit(LISTED)
    )
    rows = await session.exec(
        select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED).order_by(OutboxMessage.id).limit(LISTED)
    )
    listed = [
        Failure(
            "inbox", e.id, _event_kind(e), e.source_id, e.last_error or "", e.failed_at or e.received_at, e.attempts, e.floor_level
        )
        for e in events
    ] + [
        Failure(
            "outbox",
            r.id,
            f"{r.kind} ({len(r.messages)} message(s))" if r.kind == "messages" else str(r.kind),
            r.to if r.recipients is None else f"{r.to} ({len(r.recipients)} recipients)",
            r.last_error or "",
            r.failed_at or r.created_at,
            r.attempts,
        )
        for r in rows
    ]
    urgent = ("imminent", "high")
    return sorted(listed, key=lambda f: (f.floor_level not in urgent, f.floor_level != "imminent", f.since))


def _event_kind(event: InboxEvent) -> str:
    """The event's type and, for a message, the message's type (never its text)."""
    message = event.payload.get("message") or {}
    return f"{event.event_type}/{message['type']}" if "type" in message else event.event_type


async def retry_inbox(session: AsyncSession, event_id: int | None = None) -> int:
    """Put a failed inbox event (or every one) back in line with fresh attempts; returns how many."""
    query = update(InboxEvent).where(InboxEvent.status == InboxStatus.FAILED)
    if event_id is not None:
        query = query.where(InboxEvent.id == event_id)
    result = await session.exec(
        query.values(status=InboxStatus.PENDING, attempts=0, next_attempt_at=utcnow(), failed_at=None)
    )
    announce(session, FAILURES_TOPIC)
    return result.rowcount


async def retry_outbox(session: AsyncSession, row_id: int | None = None) -> int:
    """Send a failed outbox row (or every one) again with fresh attempts; returns how many.

    The reply token has long expired, so it goes as a push, with the row's retry key: a row LINE
    had in fact accepted is not delivered twice.
    """
    query = update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
    if row_id is not None:
        query = query.where(OutboxMessage.id == row_id)
    result = await session.exec(
        query.values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=utcnow(), failed_at=None, reply_token=None)
    )
    announce(session, FAILURES_TOPIC)
    note_send_queued(session)
    return result.rowcount


async def dismiss_inbox(session: AsyncSession, event_id: int) -> int:
    """Set a failed inbox event aside for good (someone looked at it); returns 1 if it was failed."""
    result = await session.exec(
        update(InboxEvent)
        .where(InboxEvent.id == event_id, InboxEvent.status == InboxStatus.FAILED)
        # Dealt with: what the person wrote goes, as it does from an event handled (only the id stays).
        .values(status=InboxStatus.DISMISSED, payload={})
    )
    announce(session, FAILURES_TOPIC)
    return result.rowcount


async def dismiss_outbox(session: AsyncSession, row_id: int) -> int:
    """Set a failed outbox row aside for good (someone looked at it); returns 1 if it was failed."""
    result = await session.exec(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.status == OutboxStatus.FAILED)
        .values(status=OutboxStatus.CANCELLED, messages=[])
    )
    announce(session, FAILURES_TOPIC)
    return result.rowcount
