"""Opening hours as data: weekly periods, overnight spans, national holidays and the new-year break."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import jpholiday
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator


class Weekday(StrEnum):
    """Days as written in content files, in `date.weekday()` order, then Japan's national holidays."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"
    # A period naming holidays is the one a holiday keeps (「土日祝 9時〜17時」), whatever its weekday.
    HOLIDAYS = "holidays"

    @property
    def index(self) -> int:
        """Monday is 0, as `date.weekday()` counts; holidays come after Sunday."""
        return list(Weekday).index(self)


class Period(BaseModel):
    """Open from `open` to `close` on each of `days`; a close at or before the open runs past midnight.

    `weeks` limits the days to those weeks of the month (2 is the second: days 8 to 14), for a line
    open on the second Saturday only. `holidays` among the days makes this the period national
    holidays follow (see `OpeningHours`).
    """

    model_config = ConfigDict(extra="forbid")

    days: list[Weekday] = Field(min_length=1)
    weeks: list[int] = Field(default_factory=list)
    open: time
    close: time

    @field_validator("weeks")
    @classmethod
    def _weeks_of_a_month(cls, weeks: list[int]) -> list[int]:
        if any(not 1 <= week <= 5 for week in weeks):
            raise ValueError("weeks of a month are 1 to 5")
        return weeks

    @model_validator(mode="after")
    def _weeks_are_of_weekdays(self) -> Period:
        if self.weeks and Weekday.HOLIDAYS in self.days:
            raise ValueError("weeks of the month apply to weekdays: give holidays a period of their own")
        return self

    def spans(self, day: date, zone: ZoneInfo, holiday: bool = False) -> list[tuple[datetime, datetime]]:
        """The open spans of this period that start on `day`, as aware datetimes.

        With `holiday`, the day is taken as a national holiday whose hours some period names: only
        such a period runs then, whatever its weekdays.
        """
        if holiday:
            if Weekday.HOLIDAYS not in self.days:
                return []
        elif Weekday(list(Weekday)[day.weekday()]) not in self.days:
            return []
        elif self.weeks and (day.day - 1) // 7 + 1 not in self.weeks:
            return []
        start = datetime.combine(day, self.open, zone)
        end_day = day if self.close > self.open else day + timedelta(days=1)
        return [(start, datetime.combine(end_day, self.close, zone))]


# Named closures, or one day of every year written "MM-DD" for a page that closes a day beyond the
# new-year break (「12月28日~1月3日」, 「12月29日より1月4日まで」).
Closure = Literal["holidays", "new_year"] | Annotated[str, StringConstraints(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")]


class OpeningHours(BaseModel):
    """When a line or a counselor category answers.

    One of three kinds: `always: true` (24 hours, every day); weekly `periods`, optionally closed on
    Japan's national holidays and over the new-year break (29 December to 3 January), as Japanese
    public offices are; or `varies`, the sentence the source page gives when the hours depend on
    where the caller is or on a calendar (「受付時間は地域によって異なります」). Hours that vary are
    never known to be open, so such a line is never said to be open now.

    A national holiday keeps its weekday's periods unless `closed` names holidays, or a period names
    `holidays` among its days: then only such periods run on a holiday (「平日 9時〜21時、土日祝
    9時〜17時」 keeps a Monday holiday to 9時〜17時). The new-year break closes every period.
    """

    model_config = ConfigDict(extra="forbid")

    always: bool = False
    periods: list[Period] = Field(default_factory=list)
    closed: list[Closure] = Field(default_factory=list)
    varies: str | None = Field(default=None, min_length=1, max_length=60)

    @model_validator(mode="after")
    def _one_kind(self) -> OpeningHours:
        kinds = [self.always, bool(self.periods), self.varies is not None]
        if kinds.count(True) != 1:
            raise ValueError("give exactly one of always: true, periods, or varies (the page's sentence)")
        if self.closed and not self.periods:
            raise ValueError("closed applies only to periods")
        if "holidays" in self.closed and self._holiday_periods:
            raise ValueError("a period open on holidays contradicts closed: [holidays]; leave the closure out")
        return self

    @property
    def _holiday_periods(self) -> bool:
        return any(Weekday.HOLIDAYS in period.days for period in self.periods)

    def is_open(self, at: datetime, zone: ZoneInfo) -> bool:
        """Whether it is known to be open at the aware moment `at`, judged on the clock of `zone`."""
        if self.always:
            return True
        if self.varies is not None:
            return False
        local = at.astimezone(zone)
        # An overnight span that began yesterday can still be running now.
        for start_day in (local.date() - timedelta(days=1), local.date()):
            if self._closed_on(start_day):
                continue
            holiday = self._holiday_periods and jpholiday.is_holiday(start_day)
            for period in self.periods:
                if any(start <= local < end for start, end in period.spans(start_day, zone, holiday)):
                    return True
        return False

    def _closed_on(self, day: date) -> bool:
        if "holidays" in self.closed and jpholiday.is_holiday(day):
            return True
        if f"{day:%m-%d}" in self.closed:
            return True
        return "new_year" in self.closed and (
            (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)
        )

    def describe(self, language: str = "ja") -> str:
        """The hours in a short phrase for messages (e.g. 「平日 8:30〜17:15（祝日を除く）」)."""
        words = DESCRIBE_WORDS.get(language, DESCRIBE_WORDS["en"])
        if self.varies is not None:
            return self.varies
        if self.always:
            return words["always"]
        parts = []
        for period in self.periods:
            days = words["day_names"]
            named = words["separator"].join(days[d.index] for d in period.days)
            named = words["day_groups"].get(tuple(d.index for d in period.days), named)
            if period.weeks:
                named = words["weeks"].format(weeks=words["week_joiner"].join(words["ordinals"][w - 1] for w in period.weeks), days=named)
            # Midnight to midnight is the whole day (a night line open all day at weekends).
            if period.open == period.close == time(0):
                parts.append(f"{named} {words['all_day']}")
            else:
                parts.append(f"{named} {period.open:%-H:%M}{words['until']}{period.close:%-H:%M}")
        text = words["join"].join(parts)
        if self.closed:
            closures = words["closure_joiner"].join(
                words["closures"].get(c) or words["day_of_year"].format(month=int(c[:2]), day=int(c[3:]), name=MONTH_NAMES[int(c[:2]) - 1])
                for c in self.closed
            )
            text += words["except"].format(closures=closures)
        return text


# The words `describe` uses, per content language; other languages read the English.
DESCRIBE_WORDS = {
    "ja": {
        "always": "24時間",
        "day_names": "月火水木金土日祝",
        "separator": "",
        "day_groups": {(0, 1, 2, 3, 4): "平日", (0, 1, 2, 3, 4, 5, 6): "毎日", (0, 1, 2, 3, 4, 5, 6, 7): "毎日"},
        "until": "〜",
        "all_day": "終日",
        "join": "、",
        "closures": {"holidays": "祝日", "new_year": "年末年始"},
        "day_of_year": "{month}月{day}日",
        "closure_joiner": "・",
        "except": "（{closures}を除く）",
        "weeks": "第{weeks}{days}",
        "ordinals": ["1", "2", "3", "4", "5"],
        "week_joiner": "・",
    },
    "en": {
        "always": "24 hours",
        "day_names": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "holidays"],
        "separator": ", ",
        "day_groups": {(0, 1, 2, 3, 4): "Weekdays", (0, 1, 2, 3, 4, 5, 6): "Every day", (0, 1, 2, 3, 4, 5, 6, 7): "Every day"},
        "until": "–",
        "all_day": "all day",
        "join": "; ",
        "closures": {"holidays": "national holidays", "new_year": "the new-year break"},
        "day_of_year": "{day} {name}",
        "closure_joiner": " and ",
        "except": " (except {closures})",
        "weeks": "{weeks} {days} of the month",
        "ordinals": ["1st", "2nd", "3rd", "4th", "5th"],
        "week_joiner": " and ",
    },
}

MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
