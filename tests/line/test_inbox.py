"""The inbox on SQLite and PostgreSQL: durable, de-duplicated, in order per source, exactly once."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.line.inbox import RETRY_DELAYS, InboxWorker, store_events
from bot.storage.db import create_engine, pending_migrations, session_factory
from bot.storage.models import InboxEvent, InboxStatus, LineUser

_ids = itertools.count()
MAX_ATTEMPTS = 5


def event(user: str, timestamp: int, event_id: str | None = None) -> dict:
    return {
        "type": "message",
        "mode": "active",
        "timestamp": timestamp,
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id or f"01TEST{next(_ids):020d}",
        "deliveryContext": {"isRedelivery": False},
        "message": {"id": str(timestamp), "type": "text", "text": "hi"},
    }


async def store(engine: AsyncEngine, events: list[dict]) -> None:
    async with engine.begin() as connection:
        await store_events(connection, events)


async def statuses(engine: AsyncEngine) -> dict[str, str]:
    async with session_factory(engine)() as session:
        return {e.webhook_event_id: e.status for e in await session.exec(select(InboxEvent))}


async def test_migrated_database_is_at_head(engine: AsyncEngine, tmp_path) -> None:
    assert not await pending_migrations(engine)
    empty = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    assert await pending_migrations(empty)
    await empty.dispose()


async def test_duplicate_event_is_stored_once(engine: AsyncEngine) -> None:
    first = event("U1", 1000, "01DUPLICATE000000000000000")
    redelivered = {**first, "deliveryContext": {"isRedelivery": True}}
    await store(engine, [first, first])
    assert len(await statuses(engine)) == 1
    await store(engine, [redelivered, event("U1", 2000)])
    assert len(await statuses(engine)) == 2


async def test_events_run_in_timestamp_order_per_source_once_each(engine: AsyncEngine) -> None:
    seen: list[tuple[str, int]] = []

    async def record(session, inbox_event: InboxEvent) -> None:
        seen.append((inbox_event.source_id, inbox_event.payload["timestamp"]))

    # Stored out of order (a later event arriving first, as LINE allows).
    await store(engine, [event("U1", 3000), event("U2", 2000), event("U1", 1000), event("U1", 2000)])
    worker = InboxWorker(session_factory(engine), record)
    await worker.drain()
    assert [t for user, t in seen if user == "U1"] == [1000, 2000, 3000]
    assert len(seen) == 4
    await worker.drain()
    assert len(seen) == 4, "an event was processed twice"
    assert set((await statuses(engine)).values()) == {InboxStatus.DONE}


async def test_a_slow_source_does_not_hold_up_others(engine: AsyncEngine) -> None:
    if engine.dialect.name == "sqlite":
        # SQLite has one writer: a handler transaction holds everyone, which is why handlers
        # must never wait on slow work inside their transaction. PostgreSQL runs them side by side.
        pytest.skip("SQLite serialises write transactions by design")
    release = asyncio.Event()
    done: list[str] = []

    async def handle(session, inbox_event: InboxEvent) -> None:
        if inbox_event.source_id == "SLOW":
            await release.wait()
        done.append(inbox_event.source_id)

    await store(engine, [event("SLOW", 1000), event("FAST", 2000)])
    worker = InboxWorker(session_factory(engine), handle)
    await worker.start_due()
    for _ in range(100):
        if "FAST" in done:
            break
        await asyncio.sleep(0.02)
    assert done == ["FAST"]
    release.set()
    await worker.drain()
    assert sorted(done) == ["FAST", "SLOW"]


async def test_failing_handler_writes_nothing_retries_then_gives_up(engine: AsyncEngine) -> None:
    calls: list[int] = []

    async def handle(session, inbox_event: InboxEvent) -> None:
        calls.append(inbox_event.payload["timestamp"])
        session.add(LineUser(user_id=f"written-by-{inbox_event.id}"))
        if inbox_event.payload["timestamp"] == 1000:
            raise RuntimeError("handler bug")

    await store(engine, [event("U1", 1000, "01POISON000000000000000000"), event("U1", 2000)])
    given_up: list[int] = []

    async def give_up(session, inbox_event: InboxEvent) -> None:
        given_up.append(inbox_event.id)

    worker = InboxWorker(session_factory(engine), handle, give_up=give_up, retry_delays=[timedelta(0)] * (MAX_ATTEMPTS - 1))
    for _ in range(MAX_ATTEMPTS + 1):
        await worker.drain()
    assert calls == [1000] * MAX_ATTEMPTS + [2000], "the later event waited for the failing one, in order"
    assert given_up == [1], "the give-up hook ran once, for the failed event"
    async with session_factory(engine)() as session:
        poison = (await session.exec(select(InboxEvent).where(InboxEvent.webhook_event_id == "01POISON000000000000000000"))).one()
        users = list(await session.exec(select(LineUser)))
    assert poison.status == InboxStatus.FAILED and poison.attempts == MAX_ATTEMPTS
    assert poison.failed_at is not None
    assert poison.last_error.startswith("RuntimeError at "), poison.last_error
    assert len(users) == 1, "writes of the failed attempts were rolled back"


async def test_two_workers_on_one_database_process_each_event_once_in_order(database_url: str) -> None:
    # Two engines stand for two bot processes sharing the database.
    engines = [create_engine(database_url), create_engine(database_url)]
    seen: list[tuple[int, int]] = []

    async def handle(session, inbox_event: InboxEvent) -> None:
        await asyncio.sleep(0.001)
        seen.append((inbox_event.payload["timestamp"], id(session.bind)))

    await store(engines[0], [event(f"U{n % 5}", 1000 + n) for n in range(60)])
    workers = [InboxWorker(session_factory(e), handle) for e in engines]
    await asyncio.gather(*(w.drain() for w in workers))
    timestamps = [t for t, _ in seen]
    assert sorted(timestamps) == [1000 + n for n in range(60)], "every event exactly once"
    for user in range(5):
        mine = [t for t in timestamps if (t - 1000) % 5 == user]
        assert mine == sorted(mine), f"U{user}'s events ran out of order"
    for e in engines:
        await e.dispose()


async def test_a_locked_oldest_event_stops_the_source_instead_of_skipping_it(database_url: str) -> None:
    engine = create_engine(database_url)
    handled: list[int] = []

    async def handle(session, inbox_event: InboxEvent) -> None:
        handled.append(inbox_event.payload["timestamp"])

    await store(engine, [event("U1", 1000), event("U1", 2000)])
    if engine.dialect.name == "postgresql":
        # Another process is in the middle of the oldest event.
        async with session_factory(engine)() as other:
            # The payload is ciphertext, so the event is found by its time (the webhook's timestamp, in ms).
            oldest = datetime.fromtimestamp(1, UTC)
            await other.exec(select(InboxEvent).where(InboxEvent.occurred_at == oldest).with_for_update())
            await InboxWorker(session_factory(engine), handle).work("U1")
            assert handled == [], "the later event must not run before the locked earlier one"
    await InboxWorker(session_factory(engine), handle).drain()
    assert handled == [1000, 2000]
    await engine.dispose()


def test_retries_back_off_for_hours_before_giving_up() -> None:
    total = sum(RETRY_DELAYS, timedelta(0))
    assert total >= timedelta(hours=4), total
    assert RETRY_DELAYS[0] >= timedelta(seconds=10), "the first retry must not come seconds later"


async def test_an_event_that_kills_its_process_is_given_up_after_its_attempts(engine: AsyncEngine) -> None:
    """A handler that never returns (its process killed) still uses up an attempt each time."""
    entered = asyncio.Event()
    runs: list[int] = []

    async def dies(session, inbox_event: InboxEvent) -> None:
        runs.append(inbox_event.id)
        entered.set()
        await asyncio.Event().wait()  # until the "process" is killed

    given_up: list[int] = []

    async def give_up(session, inbox_event: InboxEvent) -> None:
        given_up.append(inbox_event.id)

    await store(engine, [event("U1", 1000, "01KILLER000000000000000000"), event("U1", 2000)])
    delays = [timedelta(0)] * 2
    for _ in range(3):
        # A fresh worker each time stands for a restarted process.
        worker = InboxWorker(session_factory(engine), dies, give_up=give_up, retry_delays=delays)
        entered.clear()
        task = asyncio.create_task(worker.work("U1"))
        await asyncio.wait_for(entered.wait(), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(runs) == 3

    handled: list[int] = []

    async def handle(session, inbox_event: InboxEvent) -> None:
        handled.append(inbox_event.payload["timestamp"])

    await InboxWorker(session_factory(engine), handle, give_up=give_up, retry_delays=delays).drain()
    assert handled == [2000], "the killer was not run a fourth time; the later event went on"
    async with session_factory(engine)() as session:
        killer = (await session.exec(select(InboxEvent).where(InboxEvent.webhook_event_id == "01KILLER000000000000000000"))).one()
    assert killer.status == InboxStatus.FAILED and killer.attempts == 3
    assert "never finished" in killer.last_error
    assert given_up == [killer.id]


async def test_a_counted_attempt_holds_the_event_until_its_retry_is_due(engine: AsyncEngine) -> None:
    """The attempt is committed before the handler runs, with the next try scheduled: a crash leaves a lease."""
    await store(engine, [event("U1", 1000)])
    seen_attempts: list[int] = []

    async def look(session, inbox_event: InboxEvent) -> None:
        async with session_factory(engine)() as other:  # what another process sees meanwhile
            stored = (await other.exec(select(InboxEvent))).one()
            seen_attempts.append(stored.attempts)
            assert stored.next_attempt_at >= inbox_event.received_at + RETRY_DELAYS[0] - timedelta(seconds=1)

    if engine.dialect.name == "sqlite":
        pytest.skip("one SQLite connection per process cannot read beside the handler's transaction")
    await InboxWorker(session_factory(engine), look).drain()
    assert seen_attempts == [1]
