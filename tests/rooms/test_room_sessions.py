"""Room sessions in the database: planned from the crontab on Asia/Tokyo's clock, each transition once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.rooms.scheduler import RoomScheduler
from bot.rooms.sessions import SCHEDULE_TOPIC, close_session, forget_transcripts, open_session, plan_sessions, session_measures
from bot.storage.after_commit import announce
from bot.storage.db import create_engine, session_factory
from bot.storage.live import Hub, postgres_listener
from bot.storage.models import (
    LineUser,
    OutboxMessage,
    ParticipantState,
    RoomMessage,
    RoomParticipant,
    RoomSession,
    RoomSessionStatus,
    StaffRole,
    StaffUser,
    clock_at,
)

TOKYO = ZoneInfo("Asia/Tokyo")


async def test_sessions_are_planned_on_tokyo_time_once_however_often_planning_runs(engine: AsyncEngine, content) -> None:
    sessions = session_factory(engine, Hub())
    # Tuesday 2026-12-01 23:00 JST is 14:00 UTC; the teen room meets mon/wed/fri at 20:00 JST.
    now = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    for _ in range(2):
        async with sessions() as session:
            await plan_sessions(session, content.rooms, TOKYO, now)
            await session.commit()
    async with sessions() as session:
        teen = list(await session.exec(select(RoomSession).where(RoomSession.room_id == "teen_evening").order_by(RoomSession.starts_at)))
    assert [s.starts_at.astimezone(TOKYO).strftime("%a %d %H:%M") for s in teen] == ["Wed 02 20:00", "Fri 04 20:00", "Mon 07 20:00"]
    assert all(s.ends_at - s.starts_at == timedelta(minutes=60) and s.status == RoomSessionStatus.SCHEDULED for s in teen)


async def test_one_transition_wins_when_many_processes_run_the_same_job(database_url: str, content) -> None:
    """Four engines stand for four processes; each opens and then closes the same session at once."""
    engines = [create_engine(database_url) for _ in range(4)]
    factories = [session_factory(engine, Hub()) for engine in engines]
    try:
        now = datetime.now(UTC)
        async with factories[0]() as session:
            session.add(LineUser(user_id="U1"))
            row = RoomSession(room_id="young_adult_night", starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1), facilitator_id=None)
            session.add(row)
            await session.commit()
            session_id = row.id
            session.add(RoomParticipant(session_id=session_id, user_id="U1", nickname="あおいネコ1"))
            await session.commit()

        async def run(factory, transition) -> bool:
            async with factory() as session:
                done = await transition(session, content, session_id)
                await session.commit()
                return done

        # The content's rooms need a facilitator: without one nobody opens it; with one, exactly one process does.
        assert not any(await asyncio.gather(*(run(f, open_session) for f in factories)))
        async with factories[0]() as session:
            keeper = StaffUser(login="keeper", display_name="見守り", role=StaffRole.FACILITATOR, password_hash="-")
            session.add(keeper)
            await session.flush()
            (await session.get(RoomSession, session_id)).facilitator_id = keeper.id
            await session.commit()
        opened = await asyncio.gather(*(run(f, open_session) for f in factories))
        assert sorted(opened) == [False, False, False, True]
        closed = await asyncio.gather(*(run(f, close_session) for f in factories))
        assert sorted(closed) == [False, False, False, True]
        async with factories[0]() as session:
            assert (await session.get(RoomSession, session_id)).status == RoomSessionStatus.CLOSED
            closings = list(await session.exec(select(OutboxMessage).where(OutboxMessage.to == f"room:{session_id}")))
            [person] = list(await session.exec(select(RoomParticipant)))
        assert len(closings) == 1 and closings[0].recipients == ["U1"]  # one closing message, not four
        assert person.state == ParticipantState.LEFT
    finally:
        for engine in engines:
            await engine.dispose()


async def test_transcripts_are_forgotten_after_retention_and_the_counts_stay(engine: AsyncEngine) -> None:
    sessions = session_factory(engine, Hub())
    start = datetime(2026, 10, 1, 12, tzinfo=UTC)
    async with sessions() as session:
        row = RoomSession(room_id="young_adult_night", starts_at=start, ends_at=start + timedelta(hours=1), status=RoomSessionStatus.CLOSED, closed_at=start + timedelta(hours=1))
        session.add(row)
        await session.flush()
        people = [RoomParticipant(session_id=row.id, user_id=f"U{i}", nickname=f"n{i}") for i in range(3)]
        session.add_all(people)
        await session.flush()
        people[0].checkin, people[1].checkin = "better", "better"
        people[2].state, people[2].left_at = ParticipantState.LEFT, start + timedelta(minutes=10)
        with clock_at(start + timedelta(minutes=5)):
            session.add_all([
                RoomMessage(session_id=row.id, participant_id=people[0].id, kind="text", text="こんばんは"),
                RoomMessage(session_id=row.id, participant_id=people[1].id, kind="text", text="090-1234-5678", held="contact", reports=1),
            ])
        with clock_at(datetime.now(UTC)):
            session.add(RoomMessage(session_id=row.id, participant_id=people[0].id, kind="text", text="今日の分"))
        await session.commit()
        session_id = row.id
    async with sessions() as session:
        assert await forget_transcripts(session, days=30) == 2
        await session.commit()
        texts = sorted((m.text or "") for m in await session.exec(select(RoomMessage)))
        [measures] = (await session_measures(session, [session_id])).values()
    assert texts == ["", "", "今日の分"]
    assert (measures.participants, measures.messages, measures.held, measures.leaves, measures.reports) == (3, 3, {"contact": 1}, 1, 1)
    assert measures.checkins == {"better": 2}


async def test_a_job_planned_before_a_session_was_lengthened_does_not_close_it_early(engine: AsyncEngine, content) -> None:
    sessions = session_factory(engine, Hub())
    scheduler = RoomScheduler(sessions, content, TOKYO, on_change=lambda: None)
    now = datetime.now(UTC)
    async with sessions() as session:
        row = RoomSession(room_id="young_adult_night", starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1),
                          status=RoomSessionStatus.OPEN, opened_at=now - timedelta(minutes=5))
        session.add(row)
        await session.commit()
    await scheduler.start()
    try:
        # Another process planned the closing for the old end, before an admin lengthened the session.
        scheduler.schedule(row.model_copy(update={"ends_at": datetime.now(UTC) + timedelta(seconds=0.2)}))
        await asyncio.sleep(0.6)
        async with sessions() as session:
            assert (await session.get(RoomSession, row.id)).status == RoomSessionStatus.OPEN, "not closed before its end"
        job = scheduler._scheduler.get_job(f"close:{row.id}")
        assert job is not None and abs(job.next_run_time - row.ends_at) < timedelta(seconds=1), "planned again for the new end"
    finally:
        await scheduler.stop()


@pytest.mark.postgres
async def test_a_schedule_change_in_one_process_is_planned_at_once_in_another(postgres_url: str, content) -> None:
    engines = [create_engine(postgres_url), create_engine(postgres_url)]
    hub = Hub()
    changer = session_factory(engines[0], Hub())
    async with postgres_listener(postgres_url, hub):
        other = RoomScheduler(session_factory(engines[1], hub), content, TOKYO, on_change=lambda: None, hub=hub)
        await other.start()
        try:
            async with changer() as session:
                start = datetime.now(UTC) + timedelta(minutes=20)
                row = RoomSession(room_id="young_adult_night", starts_at=start, ends_at=start + timedelta(hours=1))
                session.add(row)
                announce(session, SCHEDULE_TOPIC)
                await session.commit()
            for _ in range(100):
                if other._scheduler.get_job(f"open:{row.id}") is not None:
                    break
                await asyncio.sleep(0.05)
            assert other._scheduler.get_job(f"open:{row.id}") is not None, "the other process planned the new session"
        finally:
            await other.stop()
    for engine in engines:
        await engine.dispose()
