"""Report benchmark: the analysis report over a year of 100,000 consultations.

Run with `.venv/bin/python tests/benchmarks/bench_report.py` (SQLite in a temporary folder), adding
`--database-url postgresql+asyncpg://USER@HOST/DB` to measure an empty PostgreSQL database as well
(it is migrated, filled with ids from 1, and left with the synthetic rows). It bulk-inserts synthetic consultations (with records
and referrals for some, a risk flag for each one above low) and a year of counselors' shifts, then times
  * figures: `build_report` over the whole year, every category;
  * writing: the charts, report.html and the CSVs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bot.guidance.content import load_content
from bot.reporting.figures import Period, build_report
from bot.reporting.html import labels_from_content, write_report
from bot.storage.crypto import KeyRing, generate_key, use_keys
from bot.storage.db import create_engine, session_factory, upgrade_to_head
from bot.storage.models import (
    Availability,
    AvailabilityChange,
    Consultation,
    ConsultationRecord,
    ConsultationStatus,
    Organisation,
    Referral,
    ReferralStatus,
    RiskFlag,
    RiskLevel,
    StaffRole,
    StaffUser,
    UserMessage,
)

ZONE = ZoneInfo("Asia/Tokyo")
YEAR = Period(date(2026, 1, 1), date(2027, 1, 1), ZONE)
CATEGORIES = ("under18", "loneliness", "suicidal", "poverty", "women", "gender", "foreign", "other")
WORRIES = ("mental_health", "no_place_to_talk", "living_money", "family", "suicidal", "work", "school")
RESPONSES = ("listening", "information", "interview", "liaison")
BATCH = 10_000
# Counselors on shift every day (Tokyo hours), each switching available at the start and offline at the end.
SHIFTS = [(clock(8), clock(16)), (clock(10), clock(18)), (clock(16), clock(23)), (clock(17), clock(23)), (clock(18), clock(23))]


def synthetic(n: int, staff_id: int, rng: random.Random) -> dict[str, object]:
    """One consultation row: arrivals heavier in the evening, about half answered."""
    start, end = YEAR.utc_bounds
    created = start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
    in_hours = rng.random() < 0.8
    taken = created + timedelta(seconds=rng.expovariate(1 / 300)) if in_hours and rng.random() < 0.6 else None
    if taken is not None:
        status = ConsultationStatus.ENDED
    elif not in_hours:
        status = ConsultationStatus.UNSERVED
    else:
        status = rng.choice([ConsultationStatus.CANCELLED, ConsultationStatus.CLOSED_IDLE, ConsultationStatus.REQUESTED])
    return {
        "id": n,
        "user_id": f"U{n % 20_000}",
        "category": rng.choice(CATEGORIES),
        "status": status,
        "arrived_in_hours": in_hours,
        "risk_level": rng.choices(list(RiskLevel), weights=[80, 14, 5, 1])[0],
        "counselor_id": staff_id if taken else None,
        "created_at": created,
        "queued_at": created,
        "taken_at": taken,
        "ended_at": taken + timedelta(seconds=rng.expovariate(1 / 1800)) if taken else None,
    }


async def fill(url: str, count: int) -> float:
    """Insert `count` consultations (and records for the answered, referrals for some); returns seconds."""
    rng = random.Random(9999)
    engine = create_engine(url)
    await upgrade_to_head(engine)
    started = time.perf_counter()
    async with session_factory(engine)() as session:
        staff = StaffUser(login="bench", display_name="bench", role=StaffRole.COUNSELOR, password_hash="-")
        organisation = Organisation(name="bench", region="bench", contact="-")
        session.add_all([staff, organisation])
        await session.flush()
        # Core inserts of many rows at once (executemany), without building ORM objects.
        connection = await session.connection()
        for offset in range(0, count, BATCH):
            rows = [synthetic(1 + n, staff.id, rng) for n in range(offset, min(offset + BATCH, count))]
            records = [
                {"consultation_id": row["id"], "staff_id": staff.id, "age_band": rng.choice(["teens_late", "twenties", "thirties"]),
                 "gender": rng.choice(["female", "male", None]), "worries": rng.sample(WORRIES, 2),
                 "responses": rng.sample(RESPONSES, 1), "serious": rng.random() < 0.05, "referral_needed": False,
                 "filed_at": row["ended_at"], "updated_at": row["ended_at"]}
                for row in rows if row["taken_at"] is not None
            ]
            referrals = [
                {"consultation_id": record["consultation_id"], "organisation_id": organisation.id, "proposed_by": staff.id,
                 "status": rng.choice(list(ReferralStatus)), "history": [], "created_at": record["filed_at"]}
                for record in records if record["serious"]
            ]
            flagged = [row for row in rows if row["risk_level"] != RiskLevel.LOW]
            messages = [
                {"id": row["id"], "user_id": row["user_id"], "line_message_id": f"m{row['id']}", "kind": "text",
                 "consultation_id": row["id"], "sent_at": row["created_at"]}
                for row in flagged
            ]
            flags = [
                {"message_id": row["id"], "user_id": row["user_id"], "consultation_id": row["id"], "level": row["risk_level"],
                 "source": rng.choice(["model", "lexicon", "model+lexicon"]), "tags": [],
                 "state": rng.choice(["open", "confirmed", "relabelled", "dismissed"]), "created_at": row["created_at"]}
                for row in flagged
            ]
            await connection.execute(insert(Consultation), rows)
            await connection.execute(insert(UserMessage), messages)
            await connection.execute(insert(RiskFlag), flags)
            if records:
                await connection.execute(insert(ConsultationRecord), records)
            if referrals:
                await connection.execute(insert(Referral), referrals)
        counselors = [StaffUser(login=f"bench-{n}", display_name="bench", role=StaffRole.COUNSELOR, password_hash="-") for n in range(len(SHIFTS))]
        session.add_all(counselors)
        await session.flush()
        days = (YEAR.end - YEAR.start).days
        changes = [
            {"staff_id": counselor.id, "availability": availability, "at": datetime.combine(YEAR.start + timedelta(days=day), at, ZONE)}
            for day in range(days)
            for counselor, (start, stop) in zip(counselors, SHIFTS, strict=True)
            for at, availability in ((start, Availability.AVAILABLE), (stop, Availability.OFFLINE))
        ]
        await connection.execute(insert(AvailabilityChange), changes)
        await session.commit()
    await engine.dispose()
    return time.perf_counter() - started


async def measure(url: str, out: Path) -> None:
    engine = create_engine(url)
    try:
        started = time.perf_counter()
        async with session_factory(engine)() as session:
            report = await build_report(session, YEAR)
        figures = time.perf_counter() - started
    finally:
        await engine.dispose()
    started = time.perf_counter()
    path = write_report(report, out, labels_from_content(load_content(REPO / "content")))
    writing = time.perf_counter() - started
    totals = report.totals
    print(f"  figures  {figures:6.2f} s   ({totals.arrived:,} arrived, {totals.answered:,} answered, "
          f"rate in hours {totals.rate_in_hours}, all {totals.rate_all}, wait p50 {report.wait.p50:.0f} s p90 {report.wait.p90:.0f} s, "
          f"{report.records.filed:,} records, {report.flags.total:,} flags, "
          f"{sum(report.counselor_hours):,.0f} counselor-hours)")
    print(f"  writing  {writing:6.2f} s   ({path}, {path.stat().st_size / 1024:.0f} KiB)")


async def main(count: int, database_url: str | None) -> None:
    use_keys(KeyRing.parse(os.environ.get("ENCRYPTION_KEYS") or generate_key("bench")))
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite", f"sqlite+aiosqlite:///{tmp}/bench.db")]
        if database_url:
            targets.append(("PostgreSQL", database_url))
        for name, url in targets:
            print(f"{name}: inserting {count:,} consultations …")
            print(f"  insert   {await fill(url, count):6.2f} s")
            await measure(url, Path(tmp) / name.lower())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="consultations to insert")
    parser.add_argument("--database-url", help="also measure this (empty) PostgreSQL database")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.count, arguments.database_url))
