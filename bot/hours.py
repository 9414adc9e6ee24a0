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

    def describe(self) -> str:
        """The hours in short Japanese, for messages (e.g. 「平日 8:30〜17:15」)."""
        if self.always:
            return "24時間"
        names = "月火水木金土日"
        parts = []
        for period in self.periods:
            days = "".join(names[d.index] for d in period.days)
            days = {"月火水木金": "平日", "月火水木金土日": "毎日", "土日": "土日"}.get(days, days)
            parts.append(f"{days} {period.open:%-H:%M}〜{period.close:%-H:%M}")
        text = "、".join(parts)
        if "holidays" in self.closed:
            text += "（祝日を除く）"
        return text
