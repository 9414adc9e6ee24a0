"""A small, hand-built week of consultations whose every report figure is worked out below by hand.

The period is Monday 2026-11-23 to Thursday 2026-11-26 (not included) in Asia/Tokyo, i.e.
2026-11-22T15:00Z up to 2026-11-25T15:00Z. Times are written in UTC with the Tokyo clock beside them.

| name | category   | created (UTC) | Tokyo          | in hours | status      | wait s | duration s | risk     |
| c1   | loneliness | 11-24 15:30   | Wed 00:30      | yes      | ended       | 60     | 600        | low      |
| c2   | loneliness | 11-24 01:00   | Tue 10:00      | yes      | ended       | 120    | 1200       | medium   |
| c3   | suicidal   | 11-24 14:59   | Tue 23:59      | yes      | ended       | 180    | 1800       | high     |
| c4   | suicidal   | 11-25 00:10   | Wed 09:10      | yes      | active      | 240    | —          | imminent |
| c5   | poverty    | 11-23 03:00   | Mon 12:00      | yes      | ended       | 300    | 900        | low      |
| c6   | poverty    | 11-23 05:00   | Mon 14:00      | yes      | cancelled   | —      | —          | low      |
| c7   | loneliness | 11-23 06:00   | Mon 15:00      | yes      | closed_idle | —      | —          | low      |
| c8   | poverty    | 11-23 12:00   | Mon 21:00      | no       | unserved    | —      | —          | low      |
| c9   | poverty    | 11-23 13:00   | Mon 22:00      | no       | unserved    | —      | —          | low      |
| c10  | loneliness | 11-25 02:00   | Wed 11:00      | yes      | requested   | —      | —          | low      |
| c11  | loneliness | 11-25 03:00   | Wed 12:00      | yes      | closed_idle | 600    | 300        | low      |
| c13  | loneliness | 11-22 15:00   | Mon 00:00      | yes      | cancelled   | —      | —          | low      |
| out1 | loneliness | 11-22 14:59   | Sun 23:59      | outside the period (a day early in Tokyo, though the same UTC day as c13) |
| out2 | loneliness | 11-25 15:00   | Thu 00:00      | outside the period (its end is not included) |

Two counselors' availability (AVAILABILITY) gives the counselor-hours by Tokyo hour in EXPECTED_COUNSELOR_HOURS:
mio is available from before the period into its first hour and a half, and again 10:00–14:30 on Monday;
sora across midnight UTC (08:30–09:30 Tokyo) and across midnight in Tokyo (23:30–00:45); mio from 23:00 on
the last evening to after the period's end, which counts only up to the end.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.reporting.figures import Period
from bot.storage.db import session_factory
from bot.storage.models import (
    Availability,
    AvailabilityChange,
    Consultation,
    ConsultationRecord,
    FlagState,
    Organisation,
    Referral,
    ReferralStatus,
    RiskFlag,
    RiskLevel,
    StaffRole,
    StaffUser,
    UserMessage,
)
from bot.storage.models import (
    ConsultationStatus as S,
)

TOKYO = ZoneInfo("Asia/Tokyo")
PERIOD = Period(date(2026, 11, 23), date(2026, 11, 26), TOKYO)

# name: (category, created UTC, in hours, status, wait s, duration s, risk)
ROWS = {
    "c1": ("loneliness", "2026-11-24T15:30", True, S.ENDED, 60, 600, RiskLevel.LOW),
    "c2": ("loneliness", "2026-11-24T01:00", True, S.ENDED, 120, 1200, RiskLevel.MEDIUM),
    "c3": ("suicidal", "2026-11-24T14:59", True, S.ENDED, 180, 1800, RiskLevel.HIGH),
    "c4": ("suicidal", "2026-11-25T00:10", True, S.ACTIVE, 240, None, RiskLevel.IMMINENT),
    "c5": ("poverty", "2026-11-23T03:00", True, S.ENDED, 300, 900, RiskLevel.LOW),
    "c6": ("poverty", "2026-11-23T05:00", True, S.CANCELLED, None, None, RiskLevel.LOW),
    "c7": ("loneliness", "2026-11-23T06:00", True, S.CLOSED_IDLE, None, None, RiskLevel.LOW),
    "c8": ("poverty", "2026-11-23T12:00", False, S.UNSERVED, None, None, RiskLevel.LOW),
    "c9": ("poverty", "2026-11-23T13:00", False, S.UNSERVED, None, None, RiskLevel.LOW),
    "c10": ("loneliness", "2026-11-25T02:00", True, S.REQUESTED, None, None, RiskLevel.LOW),
    "c11": ("loneliness", "2026-11-25T03:00", True, S.CLOSED_IDLE, 600, 300, RiskLevel.LOW),
    "c13": ("loneliness", "2026-11-22T15:00", True, S.CANCELLED, None, None, RiskLevel.LOW),
    "out1": ("loneliness", "2026-11-22T14:59", True, S.ENDED, 30, 30, RiskLevel.HIGH),
    "out2": ("loneliness", "2026-11-25T15:00", True, S.ENDED, 30, 30, RiskLevel.HIGH),
}

# name: (filed, age band, gender, worries, responses, serious, referral needed)
RECORDS = {
    "c1": (True, "teens_late", "female", ["no_place_to_talk", "family"], ["listening"], False, False),
    "c2": (True, "twenties", "male", ["family"], ["listening", "information"], False, False),
    "c3": (True, "teens_late", None, ["suicidal", "family"], ["listening", "liaison"], True, True),
    "c5": (True, "thirties", "female", ["living_money"], ["information"], False, False),
    # A draft is not counted, nor a record of a consultation outside the period.
    "c11": (False, "forties", "male", ["work"], ["interview"], True, True),
    "out1": (True, "forties", "male", ["school"], ["interview"], True, True),
}

REFERRALS = {"c1": ReferralStatus.CONNECTED, "c2": ReferralStatus.DECLINED, "c3": ReferralStatus.CONSENTED,
             "out1": ReferralStatus.PROPOSED}

# counselor: [(UTC time of a change, availability)]; Tokyo clock in the comments.
AVAILABILITY = {
    "mio": [
        ("2026-11-22T10:00", Availability.AWAY),  # Sun 19:00, superseded before the period starts
        ("2026-11-22T14:00", Availability.AVAILABLE),  # Sun 23:00: available as the period starts
        ("2026-11-22T16:30", Availability.AWAY),  # Mon 01:30
        ("2026-11-23T01:00", Availability.AVAILABLE),  # Mon 10:00
        ("2026-11-23T05:30", Availability.OFFLINE),  # Mon 14:30
        ("2026-11-25T14:00", Availability.AVAILABLE),  # Wed 23:00, until after the period ends
        ("2026-11-25T16:00", Availability.OFFLINE),  # Thu 01:00, outside the period
    ],
    "sora": [
        ("2026-11-23T23:30", Availability.AVAILABLE),  # Tue 08:30
        ("2026-11-24T00:30", Availability.AWAY),  # Tue 09:30
        ("2026-11-24T14:30", Availability.AVAILABLE),  # Tue 23:30
        ("2026-11-24T15:45", Availability.OFFLINE),  # Wed 00:45
    ],
}
# Tokyo hour → counselor-hours over the period (every other hour 0).
EXPECTED_COUNSELOR_HOURS = {0: 1.75, 1: 0.5, 8: 0.5, 9: 0.5, 10: 1.0, 11: 1.0, 12: 1.0, 13: 1.0, 14: 0.5, 23: 1.5}
# Hours with arrivals (see EXPECTED_SLOTS) and nobody available: Monday 15:00, 21:00 and 22:00.
EXPECTED_UNCOVERED = [15, 21, 22]

# name: (consultation, level, review state, source, created UTC)
FLAGS = {
    "f1": ("c3", RiskLevel.HIGH, FlagState.OPEN, "lexicon", "2026-11-24T14:59"),
    "f2": ("c4", RiskLevel.IMMINENT, FlagState.CONFIRMED, "model+lexicon", "2026-11-25T00:10"),
    "f3": ("c2", RiskLevel.MEDIUM, FlagState.DISMISSED, "model", "2026-11-24T01:00"),
    "f4": ("c5", RiskLevel.MEDIUM, FlagState.RELABELLED, "counselor report", "2026-11-23T03:00"),
    "f5": ("c2", RiskLevel.MEDIUM, FlagState.CONFIRMED, "model", "2026-11-24T01:05"),
    "out": ("out1", RiskLevel.HIGH, FlagState.OPEN, "lexicon", "2026-11-22T14:59"),
}
EXPECTED_FLAGS = {
    "low": {"open": 0, "confirmed": 0, "relabelled": 0, "dismissed": 0},
    "medium": {"open": 0, "confirmed": 1, "relabelled": 1, "dismissed": 1},
    "high": {"open": 1, "confirmed": 0, "relabelled": 0, "dismissed": 0},
    "imminent": {"open": 0, "confirmed": 1, "relabelled": 0, "dismissed": 0},
}
EXPECTED_FLAG_SOURCES = {"model": 2, "counselor report": 1, "lexicon": 1, "model+lexicon": 1}

# The figures of the whole period, worked out from the table above.
EXPECTED_TOTALS = {"arrived": 12, "in_hours": 10, "out_of_hours": 2, "answered": 6, "answered_in_hours": 6,
                   "abandoned": 3, "unserved": 2}
EXPECTED_BY_CATEGORY = {
    "loneliness": {"arrived": 6, "in_hours": 6, "answered": 3, "abandoned": 2, "unserved": 0},
    "poverty": {"arrived": 4, "in_hours": 2, "answered": 1, "abandoned": 1, "unserved": 2},
    "suicidal": {"arrived": 2, "in_hours": 2, "answered": 2, "abandoned": 0, "unserved": 0},
}
# (weekday with Monday 0, Tokyo hour) → (arrived, answered)
EXPECTED_SLOTS = {
    (2, 0): (1, 1), (1, 10): (1, 1), (1, 23): (1, 1), (2, 9): (1, 1), (0, 12): (1, 1), (0, 14): (1, 0),
    (0, 15): (1, 0), (0, 21): (1, 0), (0, 22): (1, 0), (2, 11): (1, 0), (2, 12): (1, 1), (0, 0): (1, 0),
}
# Waits 60, 120, 180, 240, 300, 600: p50 halfway between 180 and 240, p90 halfway between 300 and 600.
EXPECTED_WAIT = (6, 210.0, 450.0)
# Durations 300, 600, 900, 1200, 1800: p90 is 60 % of the way from 1200 to 1800.
EXPECTED_DURATION = (5, 900.0, 1560.0)
# Waits in the bars ≤1, 1–3, 3–5, 5–10, 10–15, 15–30, 30–60 minutes, and longer.
EXPECTED_WAIT_BINS = [1, 2, 2, 1, 0, 0, 0, 0]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def fill(engine: AsyncEngine) -> dict[str, int]:
    """Store the sample; returns each name's consultation id."""
    async with session_factory(engine)() as session:
        staff = StaffUser(login="counselor", display_name="相談員", role=StaffRole.COUNSELOR, password_hash="-")
        organisation = Organisation(name="地域の支援団体", region="東京都", contact="03-0000-0000")
        session.add_all([staff, organisation])
        await session.flush()
        consultations = {}
        for name, (category, created, in_hours, status, wait, duration, risk) in ROWS.items():
            created_at = utc(created)
            taken_at = created_at + timedelta(seconds=wait) if wait is not None else None
            consultations[name] = Consultation(
                user_id=f"U{name}", category=category, status=status, arrived_in_hours=in_hours, risk_level=risk,
                created_at=created_at, queued_at=created_at, taken_at=taken_at,
                ended_at=taken_at + timedelta(seconds=duration) if duration is not None else None,
            )
        session.add_all(consultations.values())
        await session.flush()
        for name, (filed, age, gender, worries, responses, serious, referral) in RECORDS.items():
            session.add(ConsultationRecord(
                consultation_id=consultations[name].id, staff_id=staff.id, age_band=age, gender=gender,
                worries=worries, responses=responses, serious=serious, referral_needed=referral,
                note="本文は集計に使わない", filed_at=utc("2026-11-25T06:00") if filed else None,
            ))
        for name, status in REFERRALS.items():
            session.add(Referral(consultation_id=consultations[name].id, organisation_id=organisation.id,
                                 status=status, proposed_by=staff.id))
        for login, changes in AVAILABILITY.items():
            counselor = StaffUser(login=login, display_name=login, role=StaffRole.COUNSELOR, password_hash="-")
            session.add(counselor)
            await session.flush()
            session.add_all(AvailabilityChange(staff_id=counselor.id, availability=a, at=utc(at)) for at, a in changes)
        for name, (consultation, level, state, source, created) in FLAGS.items():
            owner = consultations[consultation]
            message = UserMessage(user_id=owner.user_id, line_message_id=f"m{name}", kind="text", text="本文は集計に使わない",
                                  consultation_id=owner.id, sent_at=utc(created))
            session.add(message)
            await session.flush()
            session.add(RiskFlag(message_id=message.id, user_id=owner.user_id, consultation_id=owner.id, level=level,
                                 state=state, source=source, created_at=utc(created)))
        await session.commit()
        return {name: c.id for name, c in consultations.items()}
