"""The queue with several processes on one database: each consultation closed or escalated once, the chat limit held."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import func, select

from bot.consultation.queue import TakeRefused, sweep, take
from bot.consultation.staff import add_staff
from bot.storage.db import create_engine, session_factory
from bot.storage.models import ChatEntry, Consultation, ConsultationStatus, OutboxMessage, RiskLevel, StaffRole, utcnow

IDLE, HIGH_RISK_WAIT = timedelta(minutes=30), timedelta(minutes=2)


async def test_two_processes_sweeping_close_and_escalate_each_consultation_once(database_url: str, content) -> None:
    engines = [create_engine(database_url), create_engine(database_url)]
    sessions = [session_factory(e) for e in engines]
    long_ago = utcnow() - timedelta(hours=2)
    async with sessions[0]() as session:
        staff = await add_staff(session, "aoi", "correct horse battery", StaffRole.COUNSELOR, "あおい", 50)
        idle = [Consultation(user_id=f"UIDLE{n}", category="life", arrived_in_hours=True, status=ConsultationStatus.ACTIVE,
                             counselor_id=staff.id, taken_at=long_ago, queued_at=long_ago) for n in range(10)]
        serious = [Consultation(user_id=f"UHIGH{n}", category="life", arrived_in_hours=True, risk_level=RiskLevel.HIGH,
                                queued_at=long_ago) for n in range(5)]
        session.add_all(idle + serious)
        await session.commit()

    async def sweep_with(factory) -> None:
        async with factory() as session:
            await sweep(session, content, IDLE, HIGH_RISK_WAIT)
            await session.commit()

    await asyncio.gather(*(sweep_with(sessions[n % 2]) for n in range(6)))
    async with sessions[0]() as session:
        closings = dict(
            (await session.exec(select(ChatEntry.consultation_id, func.count()).group_by(ChatEntry.consultation_id))).all()
        )
        told = dict((await session.exec(select(OutboxMessage.to, func.count()).where(OutboxMessage.kind == "messages").group_by(OutboxMessage.to))).all())
        rows = list(await session.exec(select(Consultation)))
    assert closings == {c.id: 1 for c in idle}, "each silent chat closed once"
    assert told == {c.user_id: 1 for c in idle}, "each person told once"
    assert all(c.status == ConsultationStatus.CLOSED_IDLE for c in rows if c.user_id.startswith("UIDLE"))
    assert all(c.escalated_at is not None for c in rows if c.user_id.startswith("UHIGH"))
    for engine in engines:
        await engine.dispose()


async def test_the_sweep_never_overwrites_a_counselors_end_made_meanwhile(database_url: str, content) -> None:
    engines = [create_engine(database_url), create_engine(database_url)]
    counselor, sweeper = (session_factory(e) for e in engines)
    long_ago = utcnow() - timedelta(hours=2)
    async with counselor() as session:
        chat = Consultation(user_id="UENDS", category="life", arrived_in_hours=True, status=ConsultationStatus.ACTIVE,
                            taken_at=long_ago, queued_at=long_ago)
        session.add(chat)
        await session.commit()
    async with counselor() as ending:
        # The counselor's end is under way (row written, not committed) when the sweep comes.
        await ending.exec(update(Consultation).where(Consultation.id == chat.id).values(status=ConsultationStatus.ENDED, ended_at=utcnow()))

        async def sweep_now() -> None:
            async with sweeper() as session:
                await sweep(session, content, IDLE, HIGH_RISK_WAIT)
                await session.commit()

        sweeping = asyncio.create_task(sweep_now())
        await asyncio.sleep(0.3)
        await ending.commit()
    await sweeping
    async with counselor() as session:
        ended = await session.get(Consultation, chat.id)
        told = list(await session.exec(select(OutboxMessage)))
    assert ended.status == ConsultationStatus.ENDED, "the counselor's end stands"
    assert told == [], "the person was not also told their chat closed for silence"
    for engine in engines:
        await engine.dispose()


async def test_the_chat_limit_holds_when_one_counselor_takes_many_at_once(database_url: str, content) -> None:
    engines = [create_engine(database_url), create_engine(database_url)]
    sessions = [session_factory(e) for e in engines]
    async with sessions[0]() as session:
        staff = await add_staff(session, "aoi", "correct horse battery", StaffRole.COUNSELOR, "あおい", 2)
        waiting = [Consultation(user_id=f"UWAIT{n}", category="life", arrived_in_hours=True) for n in range(6)]
        session.add_all(waiting)
        await session.commit()

    async def take_one(n: int) -> bool:
        async with sessions[n % 2]() as session:
            try:
                await take(session, content, waiting[n].id, staff)
            except TakeRefused:
                return False
            await session.commit()
            return True

    taken = await asyncio.gather(*(take_one(n) for n in range(6)))
    assert sum(taken) == 2, taken
    async with sessions[0]() as session:
        active = (await session.exec(select(func.count()).select_from(Consultation).where(Consultation.status == ConsultationStatus.ACTIVE))).one()
    assert active == 2
    for engine in engines:
        await engine.dispose()
