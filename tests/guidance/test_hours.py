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


# 「平日 9時〜21時、土日祝 9時〜17時」: a holiday keeps the weekend's hours, whatever its weekday.
WEEKEND_AND_HOLIDAYS = OpeningHours.model_validate(
    {
        "periods": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "open": "09:00", "close": "21:00"},
            {"days": ["sat", "sun", "holidays"], "open": "09:00", "close": "17:00"},
        ],
        "closed": ["new_year"],
    }
)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (tokyo(2026, 11, 24, 19, 0), True),  # an ordinary Tuesday evening
        (tokyo(2026, 11, 23, 10, 0), True),  # 勤労感謝の日, a Monday holiday: the weekend's hours
        (tokyo(2026, 11, 23, 19, 0), False),  # ... so not the weekday's evening
        (tokyo(2026, 11, 28, 16, 59), True),  # Saturday
        (tokyo(2026, 11, 29, 17, 0), False),  # Sunday at closing time
        (tokyo(2027, 1, 11, 10, 0), True),  # 成人の日
        (tokyo(2027, 1, 1, 10, 0), False),  # 元日 is a holiday inside the new-year break: closed
        (tokyo(2026, 12, 29, 19, 0), False),  # the break closes weekdays too
    ],
)
def test_a_holiday_follows_the_period_that_names_holidays(moment: datetime, expected: bool) -> None:
    assert WEEKEND_AND_HOLIDAYS.is_open(moment, TOKYO) is expected


def test_a_weekday_evening_span_does_not_run_on_a_holiday() -> None:
    # 労働条件相談ほっとライン: Mon–Fri 17:00–22:00; Sat, Sun and holidays 9:00–21:00.
    hotline = OpeningHours.model_validate(
        {
            "periods": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "open": "17:00", "close": "22:00"},
                {"days": ["sat", "sun", "holidays"], "open": "09:00", "close": "21:00"},
            ]
        }
    )
    assert hotline.is_open(tokyo(2026, 11, 23, 10, 0), TOKYO)  # Monday holiday morning
    assert not hotline.is_open(tokyo(2026, 11, 23, 21, 30), TOKYO)  # the weekday's 22:00 does not apply
    assert hotline.is_open(tokyo(2026, 11, 24, 21, 30), TOKYO)


def test_holidays_read_as_a_day_of_their_own() -> None:
    assert WEEKEND_AND_HOLIDAYS.describe() == "平日 9:00〜21:00、土日祝 9:00〜17:00（年末年始を除く）"
    assert WEEKEND_AND_HOLIDAYS.describe("en") == "Weekdays 9:00–21:00; Sat, Sun, holidays 9:00–17:00 (except the new-year break)"


@pytest.mark.parametrize(
    "hours",
    [
        {"periods": [{"days": ["sat", "holidays"], "open": "09:00", "close": "17:00"}], "closed": ["holidays"]},
        {"periods": [{"days": ["sat", "holidays"], "weeks": [2], "open": "09:00", "close": "17:00"}]},
    ],
)
def test_holiday_periods_that_contradict_themselves_are_refused(hours: dict) -> None:
    with pytest.raises(ValueError):
        OpeningHours.model_validate(hours)


def test_a_night_line_open_all_day_at_weekends_and_on_holidays() -> None:
    # 大阪府 夜間休日虐待通告専用電話: weeknights 17:45–9:00; Saturdays, Sundays and holidays all day.
    night = OpeningHours.model_validate(
        {
            "periods": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "open": "17:45", "close": "09:00"},
                {"days": ["sat", "sun", "holidays"], "open": "00:00", "close": "00:00"},
            ]
        }
    )
    assert night.is_open(tokyo(2026, 11, 28, 13, 0), TOKYO)  # Saturday afternoon
    assert night.is_open(tokyo(2026, 11, 28, 8, 0), TOKYO)  # Friday's night span still running
    assert night.is_open(tokyo(2026, 11, 23, 13, 0), TOKYO)  # Monday holiday afternoon
    assert not night.is_open(tokyo(2026, 11, 24, 13, 0), TOKYO)  # Tuesday afternoon: the centres' own hours
    assert night.describe() == "平日 17:45〜9:00、土日祝 終日"
    assert night.describe("en") == "Weekdays 17:45–9:00; Sat, Sun, holidays all day"


# 貸金業相談・紛争解決センター: weekdays, closed 「12月29日より1月4日まで」, a day past the new-year break.
TO_FOURTH_JANUARY = OpeningHours.model_validate(
    {"periods": [{"days": ["mon", "tue", "wed", "thu", "fri"], "open": "09:00", "close": "17:30"}], "closed": ["holidays", "new_year", "01-04"]}
)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (tokyo(2027, 1, 4, 10, 0), False),  # the extra day of the year, a Monday
        (tokyo(2027, 1, 5, 10, 0), True),
        (tokyo(2026, 12, 28, 10, 0), True),
        (tokyo(2026, 1, 5, 10, 0), True),  # 5 January 2026 (4 January was a Sunday)
    ],
)
def test_a_day_of_the_year_closes_every_year(moment: datetime, expected: bool) -> None:
    assert TO_FOURTH_JANUARY.is_open(moment, TOKYO) is expected


def test_days_of_the_year_read_as_dates_and_must_be_dates() -> None:
    assert TO_FOURTH_JANUARY.describe() == "平日 9:00〜17:30（祝日・年末年始・1月4日を除く）"
    assert TO_FOURTH_JANUARY.describe("en") == "Weekdays 9:00–17:30 (except national holidays and the new-year break and 4 Jan)"
    with pytest.raises(ValueError):
        OpeningHours.model_validate({"periods": [{"days": ["mon"], "open": "09:00", "close": "17:00"}], "closed": ["13-01"]})
