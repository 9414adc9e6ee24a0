from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.guidance.hours import OpeningHours

TOKYO = ZoneInfo("Asia/Tokyo")
WEEKDAYS = OpeningHours.model_validate(
    {"periods": [{"days": ["mon", "tue", "wed", "thu", "fri"], "open": "08:30", "close": "17:15"}], "closed": ["holidays", "new_year"]}
)
EVENINGS = OpeningHours.model_validate({"periods": [{"days": ["fri"], "open": "20:00", "close": "02:00"}]})


def tokyo(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (tokyo(2026, 11, 24, 10, 0), True),  # Tuesday morning
        (tokyo(2026, 11, 24, 8, 29), False),
        (tokyo(2026, 11, 24, 17, 15), False),  # closing time is closed
        (tokyo(2026, 11, 24, 22, 0), False),
        (tokyo(2026, 11, 29, 10, 0), False),  # Sunday
        (tokyo(2026, 11, 23, 10, 0), False),  # 勤労感謝の日, a Monday holiday
        (tokyo(2026, 12, 29, 10, 0), False),  # new-year break, a Tuesday
        (tokyo(2027, 1, 4, 10, 0), True),  # first working day after it
    ],
)
def test_weekday_office_hours(moment: datetime, expected: bool) -> None:
    assert WEEKDAYS.is_open(moment, TOKYO) is expected


def test_judged_on_the_local_clock_not_utc() -> None:
    # 01:00 UTC on Tuesday is 10:00 in Tokyo: open, though UTC's clock says night.
    assert WEEKDAYS.is_open(datetime.fromisoformat("2026-11-24T01:00:00+00:00"), TOKYO)
    # 23:00 UTC on Monday the 23rd is 08:00 Tuesday in Tokyo: not yet open.
    assert not WEEKDAYS.is_open(datetime.fromisoformat("2026-11-23T23:00:00+00:00"), TOKYO)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (tokyo(2026, 11, 27, 23, 0), True),  # Friday night
        (tokyo(2026, 11, 28, 1, 59), True),  # after midnight, still Friday's span
        (tokyo(2026, 11, 28, 2, 0), False),
        (tokyo(2026, 11, 28, 23, 0), False),  # Saturday has no span of its own
    ],
)
def test_overnight_span_runs_past_midnight(moment: datetime, expected: bool) -> None:
    assert EVENINGS.is_open(moment, TOKYO) is expected


def test_always_open_and_descriptions() -> None:
    assert OpeningHours(always=True).is_open(tokyo(2027, 1, 1, 3, 0), TOKYO)
    assert OpeningHours(always=True).describe() == "24時間"
    assert WEEKDAYS.describe() == "平日 8:30〜17:15（祝日・年末年始を除く）"
    assert WEEKDAYS.describe("en") == "Weekdays 8:30–17:15 (except national holidays and the new-year break)"
    assert EVENINGS.describe("en") == "Fri 20:00–2:00"


SECOND_SATURDAY = OpeningHours.model_validate({"periods": [{"days": ["sat"], "weeks": [2], "open": "09:30", "close": "16:00"}]})
VARIES = OpeningHours(varies="受付時間は地域によって異なります")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (tokyo(2026, 12, 12, 10, 0), True),  # 12 December 2026 is the second Saturday
        (tokyo(2026, 12, 5, 10, 0), False),  # the first
        (tokyo(2026, 12, 19, 10, 0), False),  # the third
        (tokyo(2026, 12, 12, 16, 0), False),
    ],
)
def test_a_period_on_one_week_of_the_month(moment: datetime, expected: bool) -> None:
    assert SECOND_SATURDAY.is_open(moment, TOKYO) is expected


def test_hours_that_vary_are_never_open_and_read_as_the_page_says() -> None:
    moments = [tokyo(2026, 11, 24, hour, 0) for hour in range(24)] + [tokyo(2027, 1, 1, 12, 0)]
    assert not any(VARIES.is_open(moment, TOKYO) for moment in moments)
    assert VARIES.describe() == VARIES.describe("en") == "受付時間は地域によって異なります"
    assert SECOND_SATURDAY.describe() == "第2土 9:30〜16:00"
    assert SECOND_SATURDAY.describe("en") == "2nd Sat of the month 9:30–16:00"


@pytest.mark.parametrize(
    "hours",
    [
        {},
        {"always": True, "varies": "地域によって異なります"},
        {"periods": [{"days": ["mon"], "open": "09:00", "close": "17:00"}], "varies": "地域によって異なります"},
        {"varies": "地域によって異なります", "closed": ["holidays"]},
        {"periods": [{"days": ["sat"], "weeks": [6], "open": "09:00", "close": "17:00"}]},
    ],
)
def test_hours_are_exactly_one_kind(hours: dict) -> None:
    with pytest.raises(ValueError):
        OpeningHours.model_validate(hours)
