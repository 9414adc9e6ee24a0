"""Opening hours as data: weekly periods, overnight spans, national holidays and the new-year break."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

import jpholiday
from pydantic import BaseModel, ConfigDict, Field


class Weekday(StrEnum):
    """Days as written in content files, in `date.weekday()` order."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def index(self) -> int:
        """Monday is 0, as `date.weekday()` counts."""
        return list(Weekday).index(self)


class Period(BaseModel):
    """Open from `open` to `close` on each of `days`; a close at or before the open runs past midnight."""

    model_config = ConfigDict(extra="forbid")

    days: list[Weekday] = Field(min_length=1)
    open: time
    close: time

    def spans(self, day: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """The open spans of this period that start on `day`, as aware datetimes."""
        if Weekday(list(Weekday)[day.weekday()]) not in self.days:
            return []
        start = datetime.combine(day, self.open, zone)
        end_day = day if self.close > self.open else day + timedelta(days=1)
        return [(start, datetime.combine(end_day, self.close, zone))]


Closure = Literal["holidays", "new_year"]


class OpeningHours(BaseModel):
    """When a line or a counselor category answers.

    Either `always: true` (24 hours, every day) or weekly `periods`, optionally closed on Japan's
    national holidays and over the new-year break (29 December to 3 January), as Japanese public
    offices are.
    """

    model_config = ConfigDict(extra="forbid")

    always: bool = False
    periods: list[Period] = Field(default_factory=list)
    closed: list[Closure] = Field(default_factory=list)

    def is_open(self, at: datetime, zone: ZoneInfo) -> bool:
        """Whether it is open at the aware moment `at`, judged on the clock of `zone`."""
        if self.always:
            return True
        local = at.astimezone(zone)
        # An overnight span that began yesterday can still be running now.
        for start_day in (local.date() - timedelta(days=1), local.date()):
            if self._closed_on(start_day):
                continue
            for period in self.periods:
                if any(start <= local < end for start, end in period.spans(start_day, zone)):
                    return True
        return False

    def _closed_on(self, day: date) -> bool:
        if "holidays" in self.closed and jpholiday.is_holiday(day):
            return True
        return "new_year" in self.closed and (
            (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)
        )

    def describe(self, language: str = "ja") -> str:
        """The hours in a short phrase for messages (e.g. 「平日 8:30〜17:15（祝日を除く）」)."""
        words = DESCRIBE_WORDS.get(language, DESCRIBE_WORDS["en"])
        if self.always:
            return words["always"]
        parts = []
        for period in self.periods:
            days = words["day_names"]
            named = words["separator"].join(days[d.index] for d in period.days)
            named = words["day_groups"].get(tuple(d.index for d in period.days), named)
            parts.append(f"{named} {period.open:%-H:%M}{words['until']}{period.close:%-H:%M}")
        text = words["join"].join(parts)
        if self.closed:
            closures = words["closure_joiner"].join(words["closures"][c] for c in self.closed)
            text += words["except"].format(closures=closures)
        return text


# The words `describe` uses, per content language; other languages read the English.
DESCRIBE_WORDS = {
    "ja": {
        "always": "24時間",
        "day_names": "月火水木金土日",
        "separator": "",
        "day_groups": {(0, 1, 2, 3, 4): "平日", (0, 1, 2, 3, 4, 5, 6): "毎日"},
        "until": "〜",
        "join": "、",
        "closures": {"holidays": "祝日", "new_year": "年末年始"},
        "closure_joiner": "・",
        "except": "（{closures}を除く）",
    },
    "en": {
        "always": "24 hours",
        "day_names": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        "separator": ", ",
        "day_groups": {(0, 1, 2, 3, 4): "Weekdays", (0, 1, 2, 3, 4, 5, 6): "Every day"},
        "until": "–",
        "join": "; ",
        "closures": {"holidays": "national holidays", "new_year": "the new-year break"},
        "closure_joiner": " and ",
        "except": " (except {closures})",
    },
}
