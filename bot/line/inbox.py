"""The inbox: webhook events are stored here before LINE gets its 200, then processed in order per source.

One transaction per event covers the handler's writes and marking the event done, so a crash at any
point leaves the event either untouched (processed again after restart) or fully processed, never half.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.line.worker import KeyedWorker
from bot.storage.models import InboxEvent, InboxStatus, utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# PostgreSQL's answer to FOR UPDATE NOWAIT on a row another transaction holds.
LOCK_NOT_AVAILABLE = "55P03"

# Processes one event inside the given session; the worker commits it with the event marked done.
EventHandler = Callable[[AsyncSession, InboxEvent], Awaitable[None]]
# What opens a session: an `async_sessionmaker`, or `yielding(...)` around one.
SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


def source_id(event: dict[str, Any]) -> str:
    """The user, group or room an event belongs to; events without a source share one key."""
    source = event.get("source") or {}
    return source.get("userId") or source.get("groupId") or source.get("roomId") or "-"


def _inbox_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "webhook_event_id": event["webhookEventId"],
            "source_id": source_id(event),
            "event_type": str(event.get("type", "unknown"))[:64],
            "mode": str(event.get("mode", "active"))[:16],
            "is_redelivery": bool((event.get("deliveryContext") or {}).get("isRedelivery")),
            "occurred_at": datetime.fromtimestamp(event["timestamp"] / 1000, UTC),
            "payload": event,
            "status": InboxStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "received_at": now,
        }
        for event in events
    ]


def _insert_new(dialect: str) -> Any:
    # One statement per dialect, executed with many parameter sets, so SQLAlchemy compiles it once.
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(InboxEvent).on_conflict_do_nothing(index_elements=["webhook_event_id"])


async def store_events(connection: AsyncConnection, events: list[dict[str, Any]]) -> None:
    """Insert events into the inbox, skipping any whose `webhookEventId` is already stored.

    Within one call a repeated id is stored once too (LINE can put copies in one delivery).
    """
    unique = list({event["webhookEventId"]: event for event in reversed(events)}.values())[::-1]
    if unique:
        await connection.execute(_insert_new(connection.dialect.name), _inbox_rows(unique))


class InboxWriter:
    """Commits webhook events in groups: every request waiting at the moment shares one transaction.

    Each request still gets its answer only after the commit that holds its events, so "durable
    before acknowledged" holds; under load one commit serves many requests instead of one each.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._queue: asyncio.Queue[tuple[list[dict[str, Any]], asyncio.Future[None]]] = asyncio.Queue()
        #: Set while nothing waits to be committed; background work on SQLite waits for it (see `yielding`).
        self.idle = asyncio.Event()
        self.idle.set()

    async def store(self, events: list[dict[str, Any]]) -> None:
        """Return once `events` are committed (duplicates of stored events are skipped)."""
        done = asyncio.get_running_loop().create_future()
        self.idle.clear()
        await self._queue.put((events, done))
        await done

    async def run(self) -> None:
        """Commit whatever is waiting, batch after batch, until cancelled."""
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with self._engine.begin() as connection:
                    await store_events(connection, [event for events, _ in batch for event in events])
            except Exception as exc:
                for _, done in batch:
                    done.set_exception(exc)
            else:
                for _, done in batch:
                    done.set_result(None)
            if self._queue.empty():
                self.idle.set()


def yielding(sessions: async_sessionmaker[AsyncSession], writer: InboxWriter) -> SessionFactory:
    """Sessions for background work on SQLite, one at a time, each letting the webhook's commit go first.

    SQLite has one writer and the process one connection. Without this, a webhook request would
    queue behind every worker transaction already waiting for the connection; with it, it waits for
    at most the one in progress. The backlog this leaves in the inbox is durable and is worked off
    right after.
    """
    one_at_a_time = asyncio.Lock()

    @asynccontextmanager
    async def session() -> AsyncIterator[AsyncSession]:
        async with one_at_a_time:
            await writer.idle.wait()
            async with sessions() as opened:
                yield opened

    return session


class InboxWorker(KeyedWorker):
    """Takes pending inbox events and runs the handler: in order per source, sources concurrently."""

    def __init__(
        self,
        sessions: SessionFactory,
        handle: EventHandler,
        *,
        on_processed: Callable[[], None] = lambda: None,
        base_delay: float = 1.0,
        **loop_options: Any,
    ) -> None:
        """Set up the worker.

        Args:
            sessions: where events are read and the handler's writes committed.
            handle: processes one event inside the worker's transaction.
            on_processed: called after each committed event (wakes the outbox sender).
            base_delay: first retry delay after a handler error; doubles per attempt.
            **loop_options: `poll_interval` and `concurrency`, as `KeyedWorker` takes them.
        """
        super().__init__(**loop_options)
        self._sessions = sessions
        self._handle = handle
        self._on_processed = on_processed
        self._base_delay = base_delay

    async def due_keys(self) -> list[str]:
        """Sources with a pending event that is due."""
        async with self._sessions() as session:
            result = await session.exec(
                select(InboxEvent.source_id)
                .where(InboxEvent.status == InboxStatus.PENDING, InboxEvent.next_attempt_at <= utcnow())
                .group_by(InboxEvent.source_id)
                .order_by(func.min(InboxEvent.id))
                .limit(200)
            )
            return list(result)

    async def work(self, key: str) -> None:
        """Process the source's pending events, oldest first, stopping at one that fails."""
        while not self.stopping and await self._process_next(key):
            pass

    async def _process_next(self, source: str) -> bool:
        """Process the source's oldest pending event. Returns whether another one is waiting."""
        async with self._sessions() as session:
            # On PostgreSQL the row locks keep a second process off these events until we commit; if
            # the oldest is locked, NOWAIT makes us stop rather than skip ahead and break the order.
            try:
                oldest_two = list(
                    await session.exec(
                        select(InboxEvent)
                        .where(InboxEvent.source_id == source, InboxEvent.status == InboxStatus.PENDING)
                        .order_by(InboxEvent.occurred_at, InboxEvent.id)
                        .limit(2)
                        .with_for_update(nowait=True)
                    )
                )
            except DBAPIError as exc:
                if _sqlstate(exc) != LOCK_NOT_AVAILABLE:
                    raise
                return False
            if not oldest_two or oldest_two[0].next_attempt_at > utcnow():
                return False
            event = oldest_two[0]
            event_id, attempts = event.id, event.attempts
            try:
                await self._handle(session, event)
                event.status = InboxStatus.DONE
                event.processed_at = utcnow()
                # What the person wrote is in the handler's tables now; only the id stays, for de-duplication.
                event.payload = {}
                event.attempts = attempts + 1
                session.add(event)
                await session.commit()
                failure = None
            except Exception as exc:
                await session.rollback()
                log.exception("inbox event %s failed (attempt %d)", event_id, attempts + 1)
                failure = exc
        if failure is not None:
            await self._record_failure(event_id, attempts + 1, failure)
            return False
        self._on_processed()
        return len(oldest_two) == 2

    async def _record_failure(self, event_id: int, attempts: int, exc: Exception) -> None:
        async with self._sessions() as session:
            event = await session.get(InboxEvent, event_id)
            event.attempts = attempts
            event.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if attempts >= MAX_ATTEMPTS:
                # Give up so one broken event cannot hold the person's later messages forever.
                event.status = InboxStatus.FAILED
            else:
                event.next_attempt_at = utcnow() + timedelta(seconds=self._base_delay * 2 ** (attempts - 1))
            session.add(event)
            await session.commit()


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
