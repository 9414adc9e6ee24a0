"""A realistic synthetic period, made through the service's own code paths, so a new user sees a full report.

People arrive over the day with an evening peak and choose categories the way the #9999 trial saw
them chosen; counselors work shifts; some people give up waiting, some are at high risk, some are
referred. Every step calls the functions the service itself uses (`request_consultation`,
`queue.take`, `queue.end`, `queue.raise_level`, …) with the clock set to the simulated moment.
Simulated people are not LINE friends (`following` is false), so nothing they are "sent" ever
leaves the outbox.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.consultation.queue import end, raise_level, set_availability, take
from bot.consultation.requests import request_consultation
from bot.consultation.staff import add_staff
from bot.guidance.content import Content
from bot.rooms.sessions import CHECKIN_ANSWERS, claim, close_session, open_session, plan_sessions
from bot.storage.db import UPGRADE_COMMAND, create_engine, pending_migrations, session_factory
from bot.storage.demo_guard import RealDatabaseError, claim_for_demo
from bot.storage.models import (
    Availability,
    ConsultationRecord,
    ConsultationStatus,
    LineUser,
    ParticipantState,
    RiskLevel,
    RoomMessage,
    RoomParticipant,
    RoomSession,
    RoomSessionStatus,
    StaffRole,
    StaffUser,
    clock_at,
    utcnow,
)

# Arrivals per hour of the day (Tokyo), relative: quiet at dawn, busiest late in the evening.
HOURLY_WEIGHTS = [3, 2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 6, 5, 5, 5, 6, 7, 8, 10, 12, 13, 11, 6]
# How often each category is chosen (ids of the shipped menu; others get a small share).
CATEGORY_WEIGHTS = {"loneliness": 30, "suicidal": 22, "poverty": 14, "under18": 10, "women": 10, "gender": 4, "foreign": 3, "other": 7}
# Counselors on shift, in Tokyo hours: a day shift and an evening shift.
SHIFTS = [(time(10), time(16)), (time(16), time(22)), (time(16), time(22))]
SIMULATED_PASSWORD = "simulated counselor"
AGE_WEIGHTS = {"teens_early": 4, "teens_late": 8, "twenties": 12, "thirties": 14, "forties": 18, "fifties": 17, "sixties": 9, "seventies_plus": 4, "unknown": 8}
LEVEL_SHARES = [(RiskLevel.LOW, 0.70), (RiskLevel.MEDIUM, 0.18), (RiskLevel.HIGH, 0.09), (RiskLevel.IMMINENT, 0.03)]


@dataclass
class Summary:
    """What a simulation made."""

    consultations: int = 0
    answered: int = 0
    abandoned: int = 0
    out_of_hours: int = 0
    room_sessions: int = 0

    def __str__(self) -> str:
        return (
            f"{self.consultations} requests, {self.answered} answered, "
            f"{self.abandoned} gave up waiting, {self.out_of_hours} out of hours, {self.room_sessions} room sessions held"
        )


async def simulate_database(database_url: str, content: Content, zone: ZoneInfo, days: int, *, per_day: int = 60, seed: int = 7) -> Summary:
    """Fill the database at `database_url` with `days` days up to now, and commit.

    Raises:
        RuntimeError: the database is not at the newest migration, or holds real people (`demo_guard`).
    """
    engine = create_engine(database_url)
    try:
        if await pending_migrations(engine):
            raise RuntimeError(f"the database is not at the newest migration; run `{UPGRADE_COMMAND}` first")
        screening_log = logging.getLogger(raise_level.__module__)
        level, _ = screening_log.level, screening_log.setLevel(logging.ERROR)  # one warning per simulated alarm is noise
        try:
            async with session_factory(engine)() as session:
                try:
                    await claim_for_demo(session, "simulate")
                except RealDatabaseError as exc:
                    raise RuntimeError(str(exc)) from None
                summary = await simulate(session, content, zone, days, per_day=per_day, seed=seed, until=utcnow())
                await session.commit()
        finally:
            screening_log.setLevel(level)
        return summary
    finally:
        await engine.dispose()


async def simulate(session: AsyncSession, content: Content, zone: ZoneInfo, days: int, *, per_day: int = 60, seed: int = 7, until: datetime) -> Summary:
    """Fill `days` days before `until` (the caller commits)."""
    rng = random.Random(seed)
    staff = await _counselors(session)
    summary = Summary()
    first_day = until.astimezone(zone).date() - timedelta(days=days)
    categories = [c.id for c in content.menu.categories]
    weights = [CATEGORY_WEIGHTS.get(c, 2) for c in categories]
    for n in range(days):
        day = first_day + timedelta(days=n)
        await _work_shifts(session, staff, day, zone)
        for hour in rng.choices(range(24), weights=HOURLY_WEIGHTS, k=per_day):
            arrival = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), zone)
            if arrival >= until:
                continue
            category = content.menu.category(rng.choices(categories, weights)[0])
            await _one_person(session, content, rng, staff, category, arrival, summary)
    await _rooms(session, content, rng, zone, first_day, until, summary)
    return summary


# Room-goers are drawn from a small pool, so some come back; a session's people, messages and what is held back.
ROOM_REGULARS = 40
HELD_SHARES = {"contact": 0.03, "risk": 0.01, "media": 0.02}


async def _rooms(session: AsyncSession, content: Content, rng: random.Random, zone: ZoneInfo, first_day: date, until: datetime, summary: Summary) -> None:
    """The rooms' sessions of the period: planned, kept by a facilitator, opened, joined, talked in, closed."""
    start = datetime.combine(first_day, time(), zone)
    with clock_at(start):
        await plan_sessions(session, content.rooms, zone, start)
    facilitator = await _simulated_staff(session, "sim-facilitator", StaffRole.FACILITATOR, "見守りシミュレーション")
    regulars = [f"Usimroom{n:024x}" for n in range(ROOM_REGULARS)]
    session.add_all(LineUser(user_id=user_id, following=False, created_at=start, updated_at=start) for user_id in regulars)
    planned = await session.exec(select(RoomSession).where(RoomSession.starts_at >= start, RoomSession.ends_at <= until).order_by(RoomSession.starts_at))
    for room_session in list(planned):
        room = content.rooms.room(room_session.room_id)
        if rng.random() < 0.1:  # now and then nobody can keep the room: it is cancelled at its end
            with clock_at(room_session.ends_at):
                await close_session(session, content, room_session.id)
            continue
        with clock_at(room_session.starts_at):
            await claim(session, content, room_session.id, facilitator)
            await open_session(session, content, room_session.id)
        length = room_session.ends_at - room_session.starts_at
        people = rng.sample(regulars, k=min(room.capacity, rng.randint(2, 12)))
        for n, user_id in enumerate(people):
            joined = room_session.starts_at + length * rng.uniform(0, 0.4)
            participant = RoomParticipant(session_id=room_session.id, user_id=user_id, nickname=f"参加者{n + 1}", joined_at=joined)
            if rng.random() < 0.15:
                participant.state, participant.left_at = ParticipantState.LEFT, joined + length * 0.3
            session.add(participant)
            await session.flush()
            for _ in range(rng.randint(0, 8)):
                held = next((why for why, share in HELD_SHARES.items() if rng.random() < share), None)
                session.add(RoomMessage(session_id=room_session.id, participant_id=participant.id, kind="media" if held == "media" else "text", held=held, created_at=joined + length * rng.uniform(0, 0.5)))
        with clock_at(room_session.ends_at):
            await close_session(session, content, room_session.id)
        for participant in await session.exec(select(RoomParticipant).where(RoomParticipant.session_id == room_session.id)):
            if rng.random() < 0.5:
                participant.checkin = rng.choices(CHECKIN_ANSWERS, [5, 4, 1])[0]
                session.add(participant)
        summary.room_sessions += room_session.status == RoomSessionStatus.CLOSED


async def _one_person(session, content, rng, staff, category, arrival, summary) -> None:
    user_id = f"Usim{rng.getrandbits(112):028x}"
    session.add(LineUser(user_id=user_id, following=False, created_at=arrival, updated_at=arrival))
    in_hours = category.hours.is_open(arrival, arrival.tzinfo)
    with clock_at(arrival):
        consultation = await request_consultation(session, user_id, category, arrival, in_hours)
        await session.flush()
    summary.consultations += 1
    if not in_hours:
        summary.out_of_hours += 1
        return
    level = rng.choices([level for level, _ in LEVEL_SHARES], [share for _, share in LEVEL_SHARES])[0]
    with clock_at(arrival):
        raise_level(session, consultation, level)
    # Higher risk is served sooner; some people give up first, fewer when they are at risk.
    wait = timedelta(seconds=rng.expovariate(1 / (90 if level.rank >= 2 else 420)))
    counselor = _on_shift(staff, arrival + wait, rng)
    if counselor is None or rng.random() < (0.05 if level.rank >= 2 else 0.18):
        consultation.status, consultation.ended_at = ConsultationStatus.CANCELLED, arrival + wait
        session.add(consultation)
        summary.abandoned += 1
        return
    with clock_at(arrival + wait):
        await take(session, content, consultation.id, counselor)
    finished = arrival + wait + timedelta(minutes=rng.uniform(8, 55))
    with clock_at(finished):
        await end(session, content, consultation, counselor)
        session.add(_record(content, rng, consultation.id, counselor.id, level, finished))
    summary.answered += 1


def _record(content: Content, rng: random.Random, consultation_id: int, staff_id: int, level: RiskLevel, at: datetime) -> ConsultationRecord:
    records = content.records
    return ConsultationRecord(
        consultation_id=consultation_id,
        staff_id=staff_id,
        # Most callers of the trial were middle-aged; text brings in more of the young.
        age_band=rng.choices([c.id for c in records.age_bands], [AGE_WEIGHTS.get(c.id, 2) for c in records.age_bands])[0],
        gender=rng.choice([c.id for c in records.genders]),
        worries=rng.sample([c.id for c in records.worries], k=rng.randint(1, 3)),
        responses=rng.sample([c.id for c in records.responses], k=rng.randint(1, 2)),
        serious=level.rank >= 2,
        referral_needed=level.rank >= 2 and rng.random() < 0.4,
        filed_at=at,
        updated_at=at,
    )


async def _work_shifts(session: AsyncSession, staff: list[StaffUser], day: date, zone: ZoneInfo) -> None:
    """Each counselor available for their shift that day, switched as in the console, so the report sees the cover."""
    for counselor, (start, stop) in zip(staff, SHIFTS, strict=True):
        for at, availability in ((start, Availability.AVAILABLE), (stop, Availability.OFFLINE)):
            with clock_at(datetime.combine(day, at, zone)):
                await set_availability(session, counselor, availability)


def _on_shift(staff: list[StaffUser], at: datetime, rng: random.Random) -> StaffUser | None:
    local = at.timetz().replace(tzinfo=None)
    working = [s for s, (start, stop) in zip(staff, SHIFTS) if start <= local < stop]
    return rng.choice(working) if working else None


async def _counselors(session: AsyncSession) -> list[StaffUser]:
    """The simulated counselors (made once; their chats never count against anyone real)."""
    staff = []
    for n in range(len(SHIFTS)):
        found = await _simulated_staff(session, f"sim-counselor-{n + 1}", StaffRole.COUNSELOR, f"シミュレーション{n + 1}")
        found.availability = Availability.OFFLINE
        staff.append(found)
    return staff


async def _simulated_staff(session: AsyncSession, login: str, role: StaffRole, name: str) -> StaffUser:
    found = (await session.exec(select(StaffUser).where(StaffUser.login == login))).first()
    return found or await add_staff(session, login, SIMULATED_PASSWORD, role, name, max_chats=1000)
