"""The inbox: webhook events are stored here before LINE gets its 200, then processed in order per source.

One transaction per event covers the handler's writes and marking the event done, so a crash at any
point leaves the event either untouched (processed again after restart) or fully processed, never half.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
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

from bot.line.deadletters import FAILURES_TOPIC, describe
from bot.line.worker import KeyedWorker
from bot.storage.after_commit import announce
from bot.storage.models import InboxEvent, InboxStatus, utcnow

log = logging.getLogger(__name__)

# Waits before each retry of a failing event: hours in all, so a fault fixed in the meantime (a
# database, a deploy) still gets the message handled; after the last, the event is given up.
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (0.5, 2, 10, 30, 60, 120, 240))
# PostgreSQL's answer to FOR UPDATE NOWAIT on a row another transaction holds.
LOCK_NOT_AVAILABLE = "55P03"

# Processes one event inside the given session; the worker commits it with the event marked done.
EventHandler = Callable[[AsyncSession, InboxEvent], Awaitable[None]]
# What opens a session: an `async_sessionmaker`, or `yielding(...)` around one.
SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


# Which field of an event's source names the chat, by the source's type.
CHAT_ID_FIELD = {"user": "userId", "group": "groupId", "room": "roomId"}
# What is kept of an event from a group or a multi-person chat (a join is answered from it; the rest is
# never handled): never what was said there, nor who said it.
GROUP_EVENT_FIELDS = ("type", "mode", "timestamp", "webhookEventId", "deliveryContext")


def source_id(event: dict[str, Any]) -> str:
    """The user, group or room an event belongs to (in a group, the group, not the member who spoke);
    events without a source share one key."""
    source = event.get("source") or {}
    return source.get(CHAT_ID_FIELD.get(source.get("type"), "userId")) or "-"


def kept_payload(event: dict[str, Any]) -> dict[str, Any]:
    """What the inbox stores of an event: all of a one-to-one event; of a group's or room's event only
    its kind and the chat's id (a join keeps its reply token, for the one message before leaving)."""
    source = event.get("source") or {}
    if source.get("type") not in ("group", "room"):
        return event
    field = CHAT_ID_FIELD[source["type"]]
    kept = {name: event[name] for name in GROUP_EVENT_FIELDS if name in event}
    kept["source"] = {"type": source.get("type"), field: source.get(field)}
    if event.get("type") == "join" and "replyToken" in event:
        kept["replyToken"] = event["replyToken"]
    return kept


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
            "payload": kept_payload(event),
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
    """Takes pending inbox events and runs the handler: in order per source, sources concurrently.

    An attempt is counted, and the next one scheduled, in its own committed transaction before the
    handler runs: a process that dies inside a handler has still used up that attempt, so an event
    that kills its process ends as a dead letter instead of looping. The schedule doubles as a lease
    (no other process takes the event before it is due again).
    """

    def __init__(
        self,
        sessions: SessionFactory,
        handle: EventHandler,
        *,
        give_up: EventHandler | None = None,
        before: Callable[[InboxEvent], Awaitable[None]] | None = None,
        retry_delays: Sequence[timedelta] = RETRY_DELAYS,
        **loop_options: Any,
    ) -> None:
        """Set up the worker.

        Args:
            sessions: where events are read and the handler's writes committed.
            handle: processes one event inside the worker's transaction.
            give_up: called in the transaction that marks an event failed, to raise whatever alarm
                its content calls for (the handler could not).
            before: slow work for an event (risk screening), done once its attempt is counted and
                before its transaction opens: on SQLite a transaction holds every writer, the
                webhook's included, so nothing slow may happen inside one.
            retry_delays: the wait before each retry; the event is given up after one more attempt
                than there are delays.
            **loop_options: `poll_interval` and `concurrency`, as `KeyedWorker` takes them.
        """
        super().__init__(**loop_options)
        self._sessions = sessions
        self._handle = handle
        self._give_up = give_up
        self._before = before
        self._retry_delays = list(retry_delays)
        self.max_attempts = len(self._retry_delays) + 1

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
        claimed = await self._claim(source)
        if claimed is None:
            return False
        claimed_event, attempt, more = claimed
        if attempt is None:
            return more  # given up without running: its last attempt never finished
        event_id = claimed_event.id
        try:
            if self._before is not None:
                await self._before(claimed_event)
        except Exception as exc:
            await self._record_failure(event_id, describe(exc))
            return False
        async with self._sessions() as session:
            # Still ours? A lease that ran out (a very slow handler) may have let another process in.
            event = (
                await session.exec(
                    select(InboxEvent)
                    .where(InboxEvent.id == event_id, InboxEvent.status == InboxStatus.PENDING, InboxEvent.attempts == attempt)
                    .with_for_update()
                )
            ).one_or_none()
            if event is None:
                return False
            try:
                await self._handle(session, event)
                event.status = InboxStatus.DONE
                event.processed_at = utcnow()
                # What the person wrote is in the handler's tables now; only the id stays, for de-duplication.
                event.payload = {}
                session.add(event)
                await session.commit()
                failure = None
            except Exception as exc:
                await session.rollback()
                failure = describe(exc)
                log.error("inbox event %s failed (attempt %d of %d): %s", event_id, attempt, self.max_attempts, failure, extra={"event_id": event_id})
        if failure is not None:
            await self._record_failure(event_id, failure)
            return False
        return more

    async def _claim(self, source: str) -> tuple[InboxEvent, int | None, bool] | None:
        """Count an attempt at the source's oldest event if it is due, and commit that first.

        Returns None when nothing is due, else the event, the attempt now counted (None if the event
        was given up instead) and whether a later event of the source is waiting.
        """
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
                return None
            now = utcnow()
            if not oldest_two or oldest_two[0].next_attempt_at > now:
                return None
            event, more = oldest_two[0], len(oldest_two) == 2
            if event.attempts >= self.max_attempts:
                await self._fail(session, event, "gave up: the last attempt never finished (the process stopped)")
                await session.commit()
                return event, None, more
            event.attempts += 1
            event.next_attempt_at = now + self._retry_delays[min(event.attempts, self.max_attempts - 1) - 1]
            session.add(event)
            await session.commit()
            return event, event.attempts, more

    async def _record_failure(self, event_id: int, failure: str) -> None:
        """Keep why the attempt failed; give the event up after its last attempt (the retry is already scheduled)."""
        async with self._sessions() as session:
            event = await session.get(InboxEvent, event_id)
            event.last_error = failure
            if event.attempts >= self.max_attempts:
                await self._fail(session, event, None)
            session.add(event)
            await session.commit()

    async def _fail(self, session: AsyncSession, event: InboxEvent, reason: str | None) -> None:
        # Give up so one broken event cannot hold the person's later messages; it stays listed for
        # supervisors (`bot.line.deadletters`) until retried or dismissed.
        event.status = InboxStatus.FAILED
        event.failed_at = utcnow()
        if reason is not None:
            event.last_error = reason
        session.add(event)
        announce(session, FAILURES_TOPIC)
        if self._give_up is not None:
            await self._give_up(session, event)
        log.error("inbox event %s (%s) given up after %d attempts", event.id, event.event_type, event.attempts, extra={"event_id": event.id})


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
