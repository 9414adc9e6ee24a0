"""`tsunagi simulate`: a synthetic period made through the service's code, that the report can read."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.reporting.figures import Period, build_report
from bot.reporting.simulate import simulate
from bot.storage.db import create_engine, session_factory
from bot.storage.models import Consultation, ConsultationRecord, ConsultationStatus, LineUser, OutboxMessage, RiskLevel

UNTIL = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # Thursday 00:00 in Tokyo


async def test_a_simulated_week_is_consistent_and_reported(database_url: str, content) -> None:
    zone = ZoneInfo("Asia/Tokyo")
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        summary = await simulate(session, content, zone, 7, per_day=40, seed=3, until=UNTIL)
        await session.commit()
    async with session_factory(engine)() as session:
        rows = list(await session.exec(select(Consultation)))
        records = list(await session.exec(select(ConsultationRecord)))
        friends = list(await session.exec(select(LineUser).where(LineUser.following)))
        outbox_to = {row.to for row in await session.exec(select(OutboxMessage))}
        report = await build_report(session, Period(date(2026, 11, 18), date(2026, 11, 26), zone), None)
    await engine.dispose()
    states = Counter(c.status for c in rows)
    assert summary.consultations == len(rows) == 7 * 40
    assert states[ConsultationStatus.ENDED] == summary.answered == len(records)
    assert states[ConsultationStatus.CANCELLED] == summary.abandoned
    assert states[ConsultationStatus.UNSERVED] == summary.out_of_hours > 0
    assert all(c.taken_at and c.queued_at <= c.taken_at < c.ended_at <= UNTIL for c in rows if c.status == ConsultationStatus.ENDED)
    assert {c.risk_level for c in rows} >= {RiskLevel.LOW, RiskLevel.HIGH}
    assert friends == [] and outbox_to, "nothing simulated can reach a real LINE user"
    grid = report.heatmap("arrived")
    arrivals_by_hour = [sum(grid[day][hour] for day in range(7)) for hour in range(24)]
    assert sum(arrivals_by_hour[19:23]) > sum(arrivals_by_hour[2:6]) * 3, "the evening peak shows in the report"
    assert report.totals.arrived == len(rows) and report.totals.answered == summary.answered
    # Shifts (10–16 one counselor, 16–22 two) were switched on and off through the console's own function.
    staffing = report.staffing()
    assert [h.counselor_hours for h in staffing] == [7.0 if 10 <= h.hour < 16 else 14.0 if 16 <= h.hour < 22 else 0.0 for h in staffing]
    assert not any(h.uncovered for h in staffing if 10 <= h.hour < 22)
    # The week's room sessions were planned from the schedules, kept, and closed through the rooms' own functions.
    rooms = report.rooms
    assert sum(statuses.get("closed", 0) for statuses in rooms.sessions.values()) == summary.room_sessions > 0
    assert set(rooms.sessions) == {room.id for room in content.rooms.rooms}
    assert sum(m.participants for m in rooms.by_room.values()) >= 2 * summary.room_sessions
    assert 0 < rooms.returning <= rooms.people


def test_the_command_fills_a_migrated_database_and_refuses_an_old_one(tmp_path, sqlite_url: str) -> None:
    import os
    import subprocess

    from conftest import TSUNAGI

    def run(url: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DATABASE_URL": url}
        return subprocess.run([TSUNAGI, "simulate", "--days", "1", "--per-day", "20"], env=env, capture_output=True, text=True, timeout=120)

    refused = run(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    assert refused.returncode == 2 and "tsunagi db upgrade" in refused.stderr
    filled = run(sqlite_url)
    assert filled.returncode == 0, filled.stderr
    assert filled.stdout.startswith("simulated 1 day(s): 20 requests")
