"""Every figure of the analysis report against a hand-built week whose answers are known (see report_sample)."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from report_sample import (
    EXPECTED_BY_CATEGORY,
    EXPECTED_COUNSELOR_HOURS,
    EXPECTED_DURATION,
    EXPECTED_FLAG_SOURCES,
    EXPECTED_FLAGS,
    EXPECTED_SLOTS,
    EXPECTED_TOTALS,
    EXPECTED_UNCOVERED,
    EXPECTED_WAIT,
    EXPECTED_WAIT_BINS,
    PERIOD,
    fill,
    utc,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.reporting.figures import (
    Counts,
    Period,
    Rate,
    Report,
    build_report,
    known_categories,
    percentile,
)
from bot.storage.db import session_factory
from bot.storage.models import Consultation, ParticipantState, RoomMessage, RoomParticipant, RoomSession, RoomSessionStatus, clock_at


async def report_of(engine: AsyncEngine, period: Period = PERIOD, category: str | None = None) -> Report:
    async with session_factory(engine)() as session:
        return await build_report(session, period, category)


async def test_totals_split_in_and_out_of_hours_and_count_abandonment(engine: AsyncEngine) -> None:
    await fill(engine)
    totals = (await report_of(engine)).totals
    assert {name: getattr(totals, name) for name in EXPECTED_TOTALS} == EXPECTED_TOTALS


async def test_both_response_rates_are_given_with_their_parts(engine: AsyncEngine) -> None:
    await fill(engine)
    totals = (await report_of(engine)).totals
    assert totals.rate_in_hours == Rate(6, 10)
    assert totals.rate_in_hours.value == pytest.approx(0.6)
    assert totals.rate_all == Rate(6, 12)
    assert str(totals.rate_all) == "50.0%"
    assert str(Rate(0, 0)) == "—" and Rate(0, 0).value is None


async def test_waits_and_durations_give_p50_and_p90(engine: AsyncEngine) -> None:
    await fill(engine)
    report = await report_of(engine)
    assert (report.wait.count, report.wait.p50, report.wait.p90) == pytest.approx(EXPECTED_WAIT)
    assert (report.duration.count, report.duration.p50, report.duration.p90) == pytest.approx(EXPECTED_DURATION)
    assert report.wait_bins == EXPECTED_WAIT_BINS


async def test_breakdown_by_category(engine: AsyncEngine) -> None:
    await fill(engine)
    report = await report_of(engine)
    assert list(report.by_category) == sorted(EXPECTED_BY_CATEGORY)
    for category, expected in EXPECTED_BY_CATEGORY.items():
        counts = report.by_category[category]
        assert {name: getattr(counts, name) for name in expected} == expected, category
    assert report.by_category["poverty"].rate_in_hours == Rate(1, 2)
    assert report.by_category["poverty"].rate_all == Rate(1, 4)


async def test_hour_buckets_are_on_tokyo_time_across_midnight_utc(engine: AsyncEngine) -> None:
    await fill(engine)
    report = await report_of(engine)
    assert {slot: (c.arrived, c.answered) for slot, c in report.by_slot.items()} == EXPECTED_SLOTS
    # 2026-11-24T15:30Z is 00:30 on Wednesday the 25th in Tokyo, not 15:00 on Tuesday.
    assert report.heatmap("arrived")[2][0] == 1 and report.heatmap("arrived")[1][15] == 0
    by_hour = report.by_hour()
    assert (by_hour[0].arrived, by_hour[0].answered) == (2, 1)
    assert [c.arrived for c in report.by_weekday()] == [6, 2, 4, 0, 0, 0, 0]
    assert sum(map(sum, report.heatmap("answered"))) == 6


async def test_breakdown_by_risk_level_lists_every_level(engine: AsyncEngine) -> None:
    await fill(engine)
    report = await report_of(engine)
    assert {level: (c.arrived, c.answered) for level, c in report.by_risk.items()} == {
        "low": (9, 3), "medium": (1, 1), "high": (1, 1), "imminent": (1, 1)
    }


async def test_records_count_filed_choices_of_the_period_only(engine: AsyncEngine) -> None:
    await fill(engine)
    records = (await report_of(engine)).records
    assert (records.filed, records.serious, records.referral_needed) == (4, 1, 1)
    assert records.age_bands == {"teens_late": 2, "thirties": 1, "twenties": 1}
    assert records.genders == {"female": 2, "male": 1, "unrecorded": 1}
    assert records.worries == {"family": 3, "living_money": 1, "no_place_to_talk": 1, "suicidal": 1}
    assert records.responses == {"listening": 3, "information": 2, "liaison": 1}


async def test_referrals_by_status(engine: AsyncEngine) -> None:
    await fill(engine)
    referrals = (await report_of(engine)).referrals
    assert referrals == {"proposed": 0, "consented": 1, "declined": 1, "contacted": 0, "connected": 1, "closed": 0}


async def test_staffing_counts_counselor_hours_by_tokyo_hour_across_midnight_utc(engine: AsyncEngine) -> None:
    await fill(engine)
    with clock_at(utc("2026-11-27T00:00")):
        report = await report_of(engine)
    staffing = report.staffing()
    assert [h.counselor_hours for h in staffing] == pytest.approx([EXPECTED_COUNSELOR_HOURS.get(hour, 0.0) for hour in range(24)])
    assert [h.hour for h in staffing if h.uncovered] == EXPECTED_UNCOVERED
    # Two arrivals at 00:00–01:00 (Mon 00:00, Wed 00:30) against 1.75 counselor-hours, over three days.
    midnight = staffing[0]
    assert (midnight.arrived, midnight.days) == (2, 3)
    assert midnight.per_counselor_hour == pytest.approx(2 / 1.75)
    assert midnight.average_counselors == pytest.approx(1.75 / 3)
    assert staffing[3].per_counselor_hour is None and not staffing[3].uncovered, "no arrivals, nobody: no gap"


async def test_staffing_counts_nothing_beyond_now(engine: AsyncEngine) -> None:
    await fill(engine)
    # Monday 12:00 in Tokyo: mio's 10:00–14:30 counts two hours so far.
    with clock_at(utc("2026-11-23T03:00")):
        report = await report_of(engine)
    assert {h.hour: h.counselor_hours for h in report.staffing() if h.counselor_hours} == pytest.approx(
        {0: 1.0, 1: 0.5, 10: 1.0, 11: 1.0}
    )


async def test_risk_flags_by_level_review_state_and_source(engine: AsyncEngine) -> None:
    await fill(engine)
    flags = (await report_of(engine)).flags
    assert flags.by_level == EXPECTED_FLAGS
    assert flags.by_source == EXPECTED_FLAG_SOURCES
    assert flags.total == 5
    suicidal = (await report_of(engine, category="suicidal")).flags
    assert (suicidal.by_level["high"]["open"], suicidal.by_level["imminent"]["confirmed"], suicidal.total) == (1, 1, 2)


async def test_one_category_only(engine: AsyncEngine) -> None:
    await fill(engine)
    report = await report_of(engine, category="poverty")
    assert list(report.by_category) == ["poverty"]
    assert report.totals.rate_in_hours == Rate(1, 2)
    assert (report.wait.count, report.wait.p50) == (1, pytest.approx(300))
    assert report.records.filed == 1 and report.records.worries == {"living_money": 1}
    assert sum(report.referrals.values()) == 0


async def test_an_empty_period_has_no_rates_and_no_percentiles(engine: AsyncEngine) -> None:
    await fill(engine)
    report = await report_of(engine, Period(date(2025, 1, 1), date(2025, 2, 1), PERIOD.zone))
    assert report.totals == Counts() and report.totals.rate_in_hours.value is None
    assert report.wait.p50 is None and report.records.filed == 0


async def test_hours_follow_summer_time_in_a_zone_that_has_it(engine: AsyncEngine) -> None:
    # New York leaves summer time at 06:00Z on 2026-11-01: the same UTC hour of day falls in different local hours.
    async with session_factory(engine)() as session:
        for created in ("2026-11-01T03:30", "2026-11-01T06:30", "2026-11-02T05:30"):
            session.add(Consultation(user_id="U", category="loneliness", arrived_in_hours=True, created_at=utc(created)))
        await session.commit()
    report = await report_of(engine, Period(date(2026, 10, 31), date(2026, 11, 3), ZoneInfo("America/New_York")))
    # Saturday 23:30 EDT, Sunday 01:30 EST, Monday 00:30 EST.
    assert set(report.by_slot) == {(5, 23), (6, 1), (0, 0)}


async def test_known_categories_come_from_the_history(engine: AsyncEngine) -> None:
    await fill(engine)
    async with session_factory(engine)() as session:
        assert await known_categories(session) == {"loneliness", "poverty", "suicidal"}


def test_percentile_interpolates_between_ranks_like_percentile_cont() -> None:
    assert percentile([1.0], 0.9) == 1.0
    assert percentile([10.0, 20.0], 0.5) == 15.0
    assert percentile([], 0.5) is None


def test_a_period_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="must end after"):
        Period(date(2026, 11, 2), date(2026, 11, 2), PERIOD.zone)


async def test_every_definition_is_in_japanese_and_english(engine: AsyncEngine) -> None:
    definitions = (await report_of(engine)).definitions
    assert {"arrived", "in_hours", "answered", "rate_in_hours", "rate_all", "abandoned", "wait", "duration", "hour_buckets",
            "staffing", "risk_flags"} <= set(definitions)
    assert all(words["ja"] and words["en"] for words in definitions.values())


async def test_room_sessions_and_participation_count_sessions_starting_in_the_period_on_tokyo_time(engine: AsyncEngine) -> None:
    closed, cancelled = RoomSessionStatus.CLOSED, RoomSessionStatus.CANCELLED
    # (room, start UTC, status, [(user, state, check-in, messages relayed, messages held for contact)])
    sessions = [
        ("young_adult_night", "2026-11-22T14:59", closed, [("U1", "joined", None, 3, 0)]),  # 23:59 on the 22nd in Tokyo: before
        ("young_adult_night", "2026-11-22T15:00", closed, [("U1", "joined", "better", 2, 0), ("U2", "left", None, 0, 1), ("U3", "removed", None, 0, 0)]),
        ("teen_evening", "2026-11-25T11:00", cancelled, []),
        ("young_adult_night", "2026-11-25T12:00", closed, [("U1", "joined", None, 1, 0), ("U4", "joined", "same", 0, 0)]),
        ("young_adult_night", "2026-11-26T15:00", closed, [("U5", "joined", None, 1, 0)]),  # the 27th in Tokyo: after
    ]
    async with session_factory(engine)() as session:
        for room_id, start, status, people in sessions:
            starts = utc(start)
            row = RoomSession(room_id=room_id, starts_at=starts, ends_at=starts + timedelta(hours=1), status=status, closed_at=starts + timedelta(hours=1))
            session.add(row)
            await session.flush()
            for n, (user, state, checkin, relayed, held) in enumerate(people):
                left = starts + timedelta(minutes=20) if state != "joined" else starts + timedelta(hours=1)
                person = RoomParticipant(session_id=row.id, user_id=user, nickname=f"n{n}", state=ParticipantState(state if state != "joined" else "left"), checkin=checkin, left_at=left)
                session.add(person)
                await session.flush()
                session.add_all([RoomMessage(session_id=row.id, participant_id=person.id, kind="text", text="…") for _ in range(relayed)])
                session.add_all([RoomMessage(session_id=row.id, participant_id=person.id, kind="text", text="…", held="contact") for _ in range(held)])
        await session.commit()
    rooms = (await report_of(engine)).rooms
    assert rooms.sessions == {"young_adult_night": {"closed": 2}, "teen_evening": {"cancelled": 1}}
    young = rooms.by_room["young_adult_night"]
    assert (young.participants, young.messages, young.held, young.leaves, young.removed) == (5, 4, {"contact": 1}, 1, 1)
    assert young.checkins == {"better": 1, "same": 1}
    assert (rooms.people, rooms.returning) == (4, 1)
