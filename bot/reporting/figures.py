"""The analysis report, as the #9999 trial reported it: arrivals, response rates, waits, and who was helped how.

Every figure is counted by the database (GROUP BY) from timestamps, states and the record's choices;
no message text is ever read, so the figures can leave the counselors' room. Days and hours are those
of the service's clock (`StorageSettings.timezone`), never UTC: a request at 00:30 in Tokyo belongs to
the night it was written in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Float,
    Integer,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    or_,
    true,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.rooms.sessions import SessionMeasures, session_measures
from bot.storage.models import (
    Availability,
    AvailabilityChange,
    Consultation,
    ConsultationRecord,
    ConsultationStatus,
    DeliveryCount,
    FlagState,
    Referral,
    ReferralStatus,
    RiskFlag,
    RiskLevel,
    RoomParticipant,
    RoomSession,
    utcnow,
)

WEEKDAYS_JA = "月火水木金土日"
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# The upper edges (seconds) of the time-to-answer distribution's bars; the last bar is open-ended.
WAIT_BIN_EDGES = (60, 180, 300, 600, 900, 1800, 3600)
# A record left without an age band or gender is counted under this id, not dropped.
UNRECORDED = "unrecorded"

# What every figure means, in the words a report reader needs (shown in the report and its CSVs).
DEFINITIONS: dict[str, dict[str, str]] = {
    "deliveries": {
        "ja": "送ったメッセージ：LINE が受け取った通数。返信（応答メッセージ）は無料、プッシュとマルチキャストは受け取る人ごとに月の通数に数えられる。分野は相談のカテゴリ、rooms はオンライン居場所、guidance はボットの案内。",
        "en": "Messages sent: as LINE accepted them. Replies are free; pushes and multicasts count against the month's quota once per recipient. By consultation category, rooms (the online ibasho) or guidance (the bot's own answers).",
    },
    "period": {
        "ja": "集計期間は開始日の0時から終了日の0時まで（終了日を含まない）。日付と時刻はすべてサービスの時間帯（既定は日本時間）。",
        "en": "From 00:00 on the first day up to (not including) 00:00 on the last day, on the service's clock (Asia/Tokyo by default).",
    },
    "arrived": {
        "ja": "相談受付件数：期間内に相談カテゴリが選ばれ、相談依頼が作られた件数（受付時間外を含む）。",
        "en": "Requests arrived: consultations created in the period (a category chosen), out-of-hours ones included.",
    },
    "in_hours": {
        "ja": "受付時間内：依頼の時点でそのカテゴリが受付中だった件数。",
        "en": "In hours: requests that arrived while their category was open.",
    },
    "out_of_hours": {
        "ja": "受付時間外：依頼の時点でそのカテゴリが受付時間外だった件数（待ち行列に入らず、時間外の案内を返した）。",
        "en": "Out of hours: requests that arrived while their category was closed (answered with the out-of-hours guidance, never queued).",
    },
    "answered": {
        "ja": "応答件数：相談員が対応を開始した（taken_at がある）件数。",
        "en": "Answered: requests a counselor took (taken_at is set).",
    },
    "rate_in_hours": {
        "ja": "応答率（受付時間内）：受付時間内に届いた依頼のうち応答した件数 ÷ 受付時間内の受付件数。",
        "en": "Response rate (in hours): in-hours requests answered ÷ requests arrived in hours.",
    },
    "rate_all": {
        "ja": "応答率（全受付）：応答件数 ÷ 時間外を含む全受付件数。",
        "en": "Response rate (all): requests answered ÷ all requests arrived, out-of-hours ones included.",
    },
    "abandoned": {
        "ja": "応答前の離脱：応答前に本人が取り消した件数、または応答されないまま終了した件数（無応答による終了を含む）。",
        "en": "Abandoned before answer: cancelled by the person, or closed (idle or ended) without ever being taken.",
    },
    "unserved": {
        "ja": "時間外対応：受付時間外に届き、時間外の案内のみを返した件数。",
        "en": "Unserved: arrived out of hours and given only the out-of-hours guidance.",
    },
    "wait": {
        "ja": "応答までの時間：待ち行列に入った時刻（queued_at）から相談員が対応を始めた時刻（taken_at）まで。転送された相談は元の順番（queued_at）のまま、最後に対応を始めた時刻までを数えるため、最初の対応の時間を含む。",
        "en": "Time to answer: from entering the queue (queued_at) to being taken (taken_at). A transferred consultation keeps its place (queued_at) and counts to its latest take, so its first chat is included.",
    },
    "duration": {
        "ja": "相談時間：対応開始（taken_at、転送後は最後の対応開始）から終了（ended_at）まで。終了時刻のある相談のみ。",
        "en": "Duration: from being taken (taken_at; the latest take after a transfer) to the end (ended_at), where both are set.",
    },
    "percentiles": {
        "ja": "p50・p90：中央値と90パーセンタイル（順位の間は線形補間。PostgreSQL の percentile_cont と同じ）。",
        "en": "p50, p90: the median and the 90th percentile, interpolating linearly between ranks (as PostgreSQL's percentile_cont).",
    },
    "hour_buckets": {
        "ja": "時間帯・曜日：依頼が届いた時刻（created_at）をサービスの時間帯で数える。応答件数もその依頼の到着時刻の枠に数える。",
        "en": "Hour and weekday: by the time a request arrived (created_at) on the service's clock; answers count in their request's arrival slot.",
    },
    "risk": {
        "ja": "リスク段階：相談中に判定された最も高い段階（low・medium・high・imminent）。",
        "en": "Risk level: the highest level the consultation reached (low, medium, high, imminent).",
    },
    "records": {
        "ja": "相談記録票：期間内に届いた相談のうち、提出済み（filed_at がある）の記録票。下書きは数えない。",
        "en": "Consultation records: filed records (filed_at set) of consultations arrived in the period; drafts are not counted.",
    },
    "worries_responses": {
        "ja": "相談内容・対応内容：記録票の複数選択を選択ごとに数える（1件で複数に数えることがある）。",
        "en": "Worries and responses: each choice of a record counted once, so one record can count under several.",
    },
    "serious": {
        "ja": "深刻事例：記録票で「深刻」とされた件数。つなぎが必要：記録票で「つなぎが必要」とされた件数。",
        "en": "Serious: records marked serious. Referral needed: records marked as needing a referral.",
    },
    "referrals": {
        "ja": "つなぎ：期間内に届いた相談から提案されたつなぎを、現在の状態ごとに数える。",
        "en": "Referrals: referrals proposed from consultations arrived in the period, by their current status.",
    },
    "staffing": {
        "ja": "需要と体制（時間帯別）：各時間帯の受付件数と、期間内にその時間帯で相談員が「対応可」だった時間の合計（相談員・時間）。"
              "相談員は、最後に切り替えた状態が「対応可」である間を対応可と数え（期間の外や現在より先は数えない）、"
              "平均人数は相談員・時間 ÷ 期間の日数。1相談員・時間あたりの受付件数が大きいほど手薄。"
              "「対応可なし」は受付があったのに、期間中その時間帯に対応可の相談員が一度もいなかった時間帯。"
              "カテゴリを選んでも相談員の時間は全カテゴリ共通。",
        "en": "Staffing by hour: requests arrived in each hour of the day, and the time counselors were available in that hour over "
              "the period (counselor-hours). A counselor counts as available while their latest change says available (never outside "
              "the period or beyond now); the average is counselor-hours ÷ days in the period. More arrivals per counselor-hour means "
              "thinner cover. \"Nobody available\": hours with arrivals in which no counselor was ever available during the period. "
              "Counselors serve every category, so their hours are not narrowed by a category.",
    },
    "rooms": {
        "ja": "オンライン居場所：期間内に始まる予定だった回を部屋ごとに数える（開催・中止など状態別）。参加者は入室した人数、発言は参加者の書き込み数、"
              "止めた発言は部屋に届けなかった書き込み（連絡先 contact・高リスク risk・発言停止中 muted・画像など media）。途中退室は終了前に自分で抜けた人、"
              "退室処置はスタッフが退室させた人。気持ちは終了時の一問（楽になった・変わらない・しんどくなった）。"
              "来た人は期間内に一度でも入室した人の数（LINEのIDは数えるだけで表に出さない）、再訪は二回以上の回に入った人。カテゴリを選んでも絞り込まない。",
        "en": "Online ibasho: sessions due to start in the period, per room and by status (held, cancelled ...). Participants: people who "
              "joined; messages: what participants wrote; held back: not relayed (contact details, high risk, muted, media). Left early: "
              "left by themselves before the close; removed: taken out by staff. Check-in: the one question at the close (better, same, "
              "worse). People: distinct people who joined any session (counted, never listed); returning: those who joined more than one. "
              "Not narrowed by a category.",
    },
    "risk_flags": {
        "ja": "リスクフラグ：期間内に立ったフラグ（判定で medium 以上となったメッセージ、相談員による見逃しの報告）を、"
              "段階と現在の確認状態（未確認・確認済み・段階変更・却下）ごと、判定の出どころごとに数える。"
              "カテゴリを選ぶと、そのカテゴリの相談に付いたフラグだけを数える。",
        "en": "Risk flags: flags raised in the period (messages screened at medium or above, and counselors' reports of a missed "
              "risk), by level and current review state (open, confirmed, relabelled, dismissed), and by what raised them. "
              "With a category, only flags on consultations of that category.",
    },
}


@dataclass(frozen=True)
class Period:
    """Whole days [start, end) on the service's clock."""

    start: date
    end: date
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError(f"the period must end after it starts ({self.start} is not before {self.end})")

    @property
    def utc_bounds(self) -> tuple[datetime, datetime]:
        """Local midnight of the first day and of the day after the last, in UTC."""
        start, end = (datetime.combine(day, time(), self.zone).astimezone(UTC) for day in (self.start, self.end))
        return start, end


@dataclass(frozen=True)
class Rate:
    """A share kept with its parts, so a reader can check it and an empty denominator shows as none."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def __str__(self) -> str:
        return "—" if self.value is None else f"{self.value:.1%}"


@dataclass(frozen=True)
class Counts:
    """The arrival figures of one slice of the requests (a category, an hour, a risk level, or all)."""

    arrived: int = 0
    in_hours: int = 0
    answered: int = 0
    answered_in_hours: int = 0
    abandoned: int = 0
    unserved: int = 0

    @property
    def out_of_hours(self) -> int:
        return self.arrived - self.in_hours

    @property
    def rate_in_hours(self) -> Rate:
        return Rate(self.answered_in_hours, self.in_hours)

    @property
    def rate_all(self) -> Rate:
        return Rate(self.answered, self.arrived)

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(self._values(), other._values(), strict=True)))

    def _values(self) -> tuple[int, ...]:
        return (self.arrived, self.in_hours, self.answered, self.answered_in_hours, self.abandoned, self.unserved)


@dataclass(frozen=True)
class Spread:
    """How long something took across consultations, in seconds."""

    count: int
    p50: float | None
    p90: float | None


@dataclass(frozen=True)
class RecordCounts:
    """What the filed consultation records say, counted per choice."""

    filed: int = 0
    serious: int = 0
    referral_needed: int = 0
    age_bands: dict[str, int] = field(default_factory=dict)
    genders: dict[str, int] = field(default_factory=dict)
    worries: dict[str, int] = field(default_factory=dict)
    responses: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Staffing:
    """Demand against cover in one hour of the day, over the whole period."""

    hour: int
    arrived: int
    counselor_hours: float
    days: int

    @property
    def average_counselors(self) -> float:
        return self.counselor_hours / self.days

    @property
    def per_counselor_hour(self) -> float | None:
        return self.arrived / self.counselor_hours if self.counselor_hours else None

    @property
    def uncovered(self) -> bool:
        """Requests arrived in this hour, and no counselor was ever available in it."""
        return self.arrived > 0 and not self.counselor_hours


@dataclass(frozen=True)
class FlagCounts:
    """Risk flags raised in the period: level → review state → count (every level and state listed), and by source."""

    by_level: dict[str, dict[str, int]] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_source.values())


@dataclass(frozen=True)
class RoomCounts:
    """The peer-support rooms whose sessions started in the period (never narrowed by a category)."""

    # room id → session status → count
    sessions: dict[str, dict[str, int]] = field(default_factory=dict)
    # room id → the measures of its sessions, added up
    by_room: dict[str, SessionMeasures] = field(default_factory=dict)
    # Distinct people who joined a session, and those of them who joined more than one.
    people: int = 0
    returning: int = 0


@dataclass(frozen=True)
class Deliveries:
    """Messages LINE accepted in one category: free replies and counted pushes."""

    free: int = 0
    charged: int = 0

    @property
    def free_share(self) -> Rate:
        """The share that went out free."""
        return Rate(self.free, self.free + self.charged)


@dataclass(frozen=True)
class Report:
    """Every figure of one period (and optionally one category)."""

    period: Period
    category: str | None
    by_category: dict[str, Counts]
    # (weekday, hour) → counts; Monday is 0, hours on the service's clock; empty slots are absent.
    by_slot: dict[tuple[int, int], Counts]
    by_risk: dict[str, Counts]
    wait: Spread
    # How many answers waited up to each edge of WAIT_BIN_EDGES, then longer than the last.
    wait_bins: list[int]
    duration: Spread
    records: RecordCounts
    referrals: dict[str, int]
    # Counselor-hours available in each hour of the day (0–23, the service's clock) over the period.
    counselor_hours: list[float]
    flags: FlagCounts
    rooms: RoomCounts
    # category → messages sent as free replies, and as pushes counted against the month's quota
    deliveries: dict[str, Deliveries] = field(default_factory=dict)
    definitions: dict[str, dict[str, str]] = field(default_factory=lambda: DEFINITIONS)

    @property
    def totals(self) -> Counts:
        return sum(self.by_category.values(), Counts())

    def by_hour(self) -> list[Counts]:
        """Hours 0–23 of the day, every weekday together."""
        return [sum((c for (_, h), c in self.by_slot.items() if h == hour), Counts()) for hour in range(24)]

    def by_weekday(self) -> list[Counts]:
        """Monday to Sunday, every hour together."""
        return [sum((c for (d, _), c in self.by_slot.items() if d == day), Counts()) for day in range(7)]

    def staffing(self) -> list[Staffing]:
        """Arrivals against counselor-hours, hours 0–23 of the day."""
        days = (self.period.end - self.period.start).days
        return [Staffing(hour, counts.arrived, self.counselor_hours[hour], days) for hour, counts in enumerate(self.by_hour())]

    def heatmap(self, figure: str) -> list[list[int]]:
        """A 7×24 grid (weekday × hour) of one `Counts` figure, e.g. "arrived" or "answered"."""
        return [[getattr(self.by_slot.get((d, h), Counts()), figure) for h in range(24)] for d in range(7)]


# Parts of build_report in order; the caller's `tick` is called after each.
STEPS = ("categories", "slots", "risk", "waits", "durations", "records", "referrals", "staffing", "flags", "rooms", "deliveries")


async def build_report(
    session: AsyncSession, period: Period, category: str | None = None, tick: Callable[[], None] = lambda: None
) -> Report:
    """Count every figure of `period` (optionally one category) in one transaction, so they agree with each other."""
    scope = _Scope(period, category, session.bind.dialect.name)  # type: ignore[union-attr]
    by_category = await _counts_by(session, scope, Consultation.category)
    tick()
    by_slot = await _counts_by_slot(session, scope)
    tick()
    by_risk = _in_level_order(await _counts_by(session, scope, Consultation.risk_level))
    tick()
    waits = await _seconds(session, scope, Consultation.queued_at, Consultation.taken_at)
    tick()
    durations = await _seconds(session, scope, Consultation.taken_at, Consultation.ended_at)
    tick()
    records = await _record_counts(session, scope)
    tick()
    referrals = await _referrals_by_status(session, scope)
    tick()
    counselor_hours = await _counselor_hours(session, period, utcnow())
    tick()
    flags = await _flag_counts(session, scope)
    tick()
    rooms = await _room_counts(session, period)
    tick()
    deliveries = await _deliveries(session, period, category)
    tick()
    return Report(
        period=period,
        category=category,
        by_category=by_category,
        by_slot=by_slot,
        by_risk=by_risk,
        wait=spread(waits),
        wait_bins=_histogram(waits, WAIT_BIN_EDGES),
        duration=spread(durations),
        records=records,
        referrals=referrals,
        counselor_hours=counselor_hours,
        flags=flags,
        rooms=rooms,
        deliveries=deliveries,
    )


async def known_categories(session: AsyncSession) -> set[str]:
    """Every category a request was ever made in (a category since removed from the menu still has a history)."""
    return set(await session.exec(select(Consultation.category).distinct()))


def spread(seconds: Sequence[float]) -> Spread:
    """The count, median and 90th percentile of some durations."""
    ordered = sorted(seconds)
    return Spread(len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.9))


def percentile(ordered: Sequence[float], share: float) -> float | None:
    """The `share` percentile of sorted values, interpolated between ranks (PostgreSQL's percentile_cont)."""
    if not ordered:
        return None
    position = share * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


class _Scope:
    """The requests a report counts, and how this database says what the report needs."""

    def __init__(self, period: Period, category: str | None, dialect: str) -> None:
        self.period = period
        self.category = category
        self.dialect = dialect
        start, end = period.utc_bounds
        self.conditions: list[ColumnElement[bool]] = [Consultation.created_at >= start, Consultation.created_at < end]
        if category is not None:
            self.conditions.append(Consultation.category == category)

    def weekday_and_hour(self) -> tuple[ColumnElement[int], ColumnElement[int]]:
        """The local weekday (Monday 0) and hour of each request's arrival, computed by the database."""
        created = col(Consultation.created_at)
        if self.dialect == "postgresql":
            local = func.timezone(self.period.zone.key, created)
            return cast(extract("isodow", local), Integer) - 1, cast(extract("hour", local), Integer)
        # SQLite knows no time zones: shift each UTC timestamp by the offset in force at that moment.
        local = func.datetime(created, self._sqlite_offset(created))
        return (cast(func.strftime("%w", local), Integer) + 6) % 7, cast(func.strftime("%H", local), Integer)

    def _sqlite_offset(self, created: ColumnElement[datetime]) -> ColumnElement[str]:
        pieces = _offset_pieces(*self.period.utc_bounds, self.period.zone)
        modifiers = [literal(f"{offset:+d} seconds") for _, offset in pieces]
        if len(pieces) == 1:
            return modifiers[0]
        # A zone with summer time: each piece of the period has its own offset.
        whens = [(created < starts, modifier) for (starts, _), modifier in zip(pieces[1:], modifiers, strict=False)]
        return case(*whens, else_=modifiers[-1])

    def seconds_between(self, start: Any, end: Any) -> ColumnElement[float]:
        if self.dialect == "postgresql":
            return cast(extract("epoch", end - start), Float)
        return (func.julianday(end) - func.julianday(start)) * 86400.0


def _offset_pieces(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[datetime, int]]:
    """(from, UTC offset in seconds) for each stretch of [start, end) in which the zone's offset holds."""

    def offset(at: datetime) -> int:
        return int(at.astimezone(zone).utcoffset().total_seconds())  # type: ignore[union-attr]

    pieces = [(start, offset(start))]
    at = start
    while at < end:
        step_end = min(at + timedelta(hours=1), end)
        if offset(step_end) != pieces[-1][1]:
            low, high = at, step_end
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == pieces[-1][1] else (low, middle)
            pieces.append((high, offset(high)))
        at = step_end
    return pieces


_ANSWERED = col(Consultation.taken_at).is_not(None)
_ABANDONED = or_(
    Consultation.status == ConsultationStatus.CANCELLED,
    and_(
        col(Consultation.status).in_([ConsultationStatus.CLOSED_IDLE, ConsultationStatus.ENDED]),
        col(Consultation.taken_at).is_(None),
    ),
)


def _how_many(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# The aggregates behind `Counts`, in its field order.
_COUNTS = (
    func.count(),
    _how_many(Consultation.arrived_in_hours == true()),
    _how_many(_ANSWERED),
    _how_many(and_(_ANSWERED, Consultation.arrived_in_hours == true())),
    _how_many(_ABANDONED),
    _how_many(Consultation.status == ConsultationStatus.UNSERVED),
)


def _counts(row: Sequence[Any]) -> Counts:
    return Counts(*(int(value) for value in row))


async def _counts_by(session: AsyncSession, scope: _Scope, column: Any) -> dict[str, Counts]:
    rows = await session.exec(select(column, *_COUNTS).where(*scope.conditions).group_by(column).order_by(column))
    return {str(key): _counts(rest) for key, *rest in rows}


async def _counts_by_slot(session: AsyncSession, scope: _Scope) -> dict[tuple[int, int], Counts]:
    weekday, hour = scope.weekday_and_hour()
    # Grouping an inner select's columns keeps the zone a single bound parameter on PostgreSQL, which
    # would otherwise see two different expressions in SELECT and GROUP BY.
    local = (
        select(
            weekday.label("weekday"),
            hour.label("hour"),
            Consultation.arrived_in_hours,
            Consultation.taken_at,
            Consultation.status,
        )
        .where(*scope.conditions)
        .subquery()
    )
    answered = local.c.taken_at.is_not(None)
    abandoned = or_(
        local.c.status == ConsultationStatus.CANCELLED,
        and_(local.c.status.in_([ConsultationStatus.CLOSED_IDLE, ConsultationStatus.ENDED]), local.c.taken_at.is_(None)),
    )
    in_hours = local.c.arrived_in_hours == true()
    rows = await session.exec(
        select(
            local.c.weekday,
            local.c.hour,
            func.count(),
            _how_many(in_hours),
            _how_many(answered),
            _how_many(and_(answered, in_hours)),
            _how_many(abandoned),
            _how_many(local.c.status == ConsultationStatus.UNSERVED),
        ).group_by(local.c.weekday, local.c.hour)
    )
    return {(int(day), int(hour)): _counts(rest) for day, hour, *rest in rows}


def _in_level_order(by_level: dict[str, Counts]) -> dict[str, Counts]:
    return {level.value: by_level.get(level.value, Counts()) for level in RiskLevel} | by_level


async def _seconds(session: AsyncSession, scope: _Scope, start: Any, end: Any) -> list[float]:
    """How long from `start` to `end` for each request with both; only numbers leave the database."""
    seconds = scope.seconds_between(start, end)
    rows = await session.exec(
        select(seconds).where(*scope.conditions, col(start).is_not(None), col(end).is_not(None))
    )
    # julianday() is a day count in a double: round away its sub-millisecond noise.
    return [round(float(value), 3) for value in rows]


def _histogram(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[next((i for i, edge in enumerate(edges) if value <= edge), len(edges))] += 1
    return counts


async def _record_counts(session: AsyncSession, scope: _Scope) -> RecordCounts:
    filed = [*scope.conditions, col(ConsultationRecord.filed_at).is_not(None)]

    def records(*columns: Any) -> Any:
        return (
            select(*columns)
            .select_from(ConsultationRecord)
            .join(Consultation, col(Consultation.id) == ConsultationRecord.consultation_id)
            .where(*filed)
        )

    total, serious, referral_needed = (
        await session.exec(
            records(
                func.count(),
                _how_many(ConsultationRecord.serious == true()),
                _how_many(ConsultationRecord.referral_needed == true()),
            )
        )
    ).one()

    async def by_column(column: Any) -> dict[str, int]:
        key = func.coalesce(column, UNRECORDED)
        rows = await session.exec(records(key, func.count()).group_by(key))
        return _most_first(rows)

    async def by_choice(column: Any) -> dict[str, int]:
        # One row per choice inside the JSON list, still counted by the database.
        unpack = "json_array_elements_text" if scope.dialect == "postgresql" else "json_each"
        choice = getattr(func, unpack)(column).table_valued("value")
        rows = await session.exec(records(choice.c.value, func.count()).join(choice, true()).group_by(choice.c.value))
        return _most_first(rows)

    return RecordCounts(
        filed=int(total),
        serious=int(serious),
        referral_needed=int(referral_needed),
        age_bands=await by_column(ConsultationRecord.age_band),
        genders=await by_column(ConsultationRecord.gender),
        worries=await by_choice(ConsultationRecord.worries),
        responses=await by_choice(ConsultationRecord.responses),
    )


def _most_first(rows: Any) -> dict[str, int]:
    return dict(sorted(((str(key), int(count)) for key, count in rows), key=lambda item: (-item[1], item[0])))


async def _referrals_by_status(session: AsyncSession, scope: _Scope) -> dict[str, int]:
    rows = await session.exec(
        select(Referral.status, func.count())
        .join(Consultation, col(Consultation.id) == Referral.consultation_id)
        .where(*scope.conditions)
        .group_by(Referral.status)
    )
    counted = {str(status): int(count) for status, count in rows}
    return {status.value: counted.get(status.value, 0) for status in ReferralStatus} | counted


async def _counselor_hours(session: AsyncSession, period: Period, now: datetime) -> list[float]:
    """Counselor-hours available per hour of the day, from the availability history clipped to the period (and now).

    Only the changes are read (a few per counselor a day): each one's interval is split into local hours here.
    """
    start, end = period.utc_bounds
    end = min(end, now)
    hours = [0.0] * 24
    if end <= start:
        return hours
    change = AvailabilityChange
    # Each counselor's state as the period starts is their latest change before it.
    latest = (
        select(change.staff_id, func.max(change.at).label("at")).where(change.at < start).group_by(change.staff_id).subquery()
    )
    opening = (
        select(change.staff_id, change.availability, change.at)
        .join(latest, and_(latest.c.staff_id == change.staff_id, latest.c.at == change.at))
        .order_by(change.at, change.id)
    )
    within = select(change.staff_id, change.availability, change.at).where(change.at >= start, change.at < end).order_by(change.at, change.id)
    since: dict[int, datetime] = {}  # counselors available now, and from when
    for staff_id, availability, at in [*await session.exec(opening), *await session.exec(within)]:
        if staff_id in since:
            _add_local_hours(hours, since.pop(staff_id), at, period.zone)
        if availability == Availability.AVAILABLE:
            since[staff_id] = max(at, start)
    for began in since.values():
        _add_local_hours(hours, began, end, period.zone)
    return hours


def _add_local_hours(hours: list[float], start: datetime, end: datetime, zone: ZoneInfo) -> None:
    """Add the stretch [start, end) to `hours`, split at the local clock's hour boundaries."""
    at = start
    while at < end:
        local = at.astimezone(zone)
        # Wall-clock arithmetic: the next local hour, wherever summer time moves it in UTC.
        boundary = min((local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)).astimezone(UTC), end)
        hours[local.hour] += (boundary - at).total_seconds() / 3600
        at = boundary


async def _flag_counts(session: AsyncSession, scope: _Scope) -> FlagCounts:
    start, end = scope.period.utc_bounds
    query = select(RiskFlag.level, RiskFlag.state, RiskFlag.source, func.count()).where(
        RiskFlag.created_at >= start, RiskFlag.created_at < end
    )
    if scope.category is not None:
        query = query.join(Consultation, col(Consultation.id) == RiskFlag.consultation_id).where(Consultation.category == scope.category)
    states = [state.value for state in FlagState]
    by_level = {level.value: dict.fromkeys(states, 0) for level in RiskLevel}
    by_source: Counter[str] = Counter()
    for level, state, source, count in await session.exec(query.group_by(RiskFlag.level, RiskFlag.state, RiskFlag.source)):
        counted = by_level.setdefault(str(level), dict.fromkeys(states, 0))
        counted[str(state)] = counted.get(str(state), 0) + int(count)
        by_source[str(source)] += int(count)
    return FlagCounts(by_level, _most_first(by_source.items()))


async def _room_counts(session: AsyncSession, period: Period) -> RoomCounts:
    start, end = period.utc_bounds
    held = list(await session.exec(select(RoomSession).where(RoomSession.starts_at >= start, RoomSession.starts_at < end)))
    measures = await session_measures(session, [s.id for s in held])
    sessions: dict[str, dict[str, int]] = {}
    by_room: dict[str, SessionMeasures] = {}
    for room_session in held:
        statuses = sessions.setdefault(room_session.room_id, {})
        statuses[room_session.status] = statuses.get(room_session.status, 0) + 1
        by_room[room_session.room_id] = by_room.get(room_session.room_id, SessionMeasures()) + measures[room_session.id]
    visits = await session.exec(
        select(RoomParticipant.user_id, func.count())
        .join(RoomSession, col(RoomSession.id) == RoomParticipant.session_id)
        .where(RoomSession.starts_at >= start, RoomSession.starts_at < end)
        .group_by(RoomParticipant.user_id)
    )
    counts = [count for _, count in visits]
    return RoomCounts(sessions, by_room, len(counts), sum(1 for count in counts if count > 1))


async def _deliveries(session: AsyncSession, period: Period, category: str | None) -> dict[str, Deliveries]:
    """Free replies and counted pushes per category, from the hourly counts the outbox sender keeps."""
    start, end = period.utc_bounds
    statement = (
        select(DeliveryCount.category, DeliveryCount.charged, func.sum(DeliveryCount.messages))
        .where(DeliveryCount.hour >= start, DeliveryCount.hour < end)
        .group_by(DeliveryCount.category, DeliveryCount.charged)
    )
    if category is not None:
        statement = statement.where(DeliveryCount.category == category)
    found: dict[str, Deliveries] = {}
    for name, charged, messages in await session.exec(statement):
        now = found.get(name, Deliveries())
        found[name] = Deliveries(now.free, now.charged + messages) if charged else Deliveries(now.free + messages, now.charged)
    return dict(sorted(found.items()))
