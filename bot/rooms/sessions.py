"""Room sessions: planned from the rooms' schedules, opened, closed, and kept by staff.

Every transition is one conditional UPDATE on the session's status, so when several processes (or a
restarted one) run the same scheduled job, exactly one of them acts and the others do nothing. What
the room hears goes through the outbox as a multicast keyed by the session, so it arrives in order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.guidance.content import Content, Room, Rooms
from bot.line.limits import MULTICAST_MAX_RECIPIENTS
from bot.line.messages import Message, postback_item, texts
from bot.line.outbox import enqueue
from bot.rooms.taps import CheckinAnswer, CheckinTap, RoomTap
from bot.storage.after_commit import announce
from bot.storage.models import (
    LineUser,
    ParticipantState,
    RoomChange,
    RoomMessage,
    RoomParticipant,
    RoomReminder,
    RoomSession,
    RoomSessionStatus,
    StaffUser,
    utcnow,
)

log = logging.getLogger(__name__)

# Console pages listen to these: the list of sessions, and one session's transcript.
ROOMS_TOPIC = "rooms"
# The report's category of what is sent in and about the rooms (`OutboxMessage.category`).
ROOMS = "rooms"
# A room's schedule changed: every process's scheduler plans again (heard through NOTIFY on PostgreSQL).
SCHEDULE_TOPIC = "rooms:schedule"
# How far ahead sessions are planned (and listed to people on LINE).
PLAN_AHEAD = timedelta(days=7)
UNFINISHED = (RoomSessionStatus.SCHEDULED, RoomSessionStatus.OPEN)
CHECKIN_ANSWERS = get_args(CheckinAnswer)


def room_topic(session_id: int) -> str:
    """The live topic of one session's transcript and participants."""
    return f"room:{session_id}"


def when_text(moment: datetime, zone: ZoneInfo) -> str:
    """A session's start as a person reads it, e.g. 11/27(金) 20:00."""
    local = moment.astimezone(zone)
    return f"{local.month}/{local.day}({'月火水木金土日'[local.weekday()]}) {local:%H:%M}"


async def rooms_in_effect(session: AsyncSession, rooms: Rooms) -> Rooms:
    """The rooms of content/rooms.yaml with the admins' changes applied."""
    changes = {change.room_id: change.values for change in await session.exec(select(RoomChange))}
    if not changes:
        return rooms
    changed = []
    for room in rooms.rooms:
        try:
            changed.append(Room.model_validate({**room.model_dump(), **changes[room.id]}) if room.id in changes else room)
        except ValidationError:
            log.error("room %s: the change saved in the console no longer fits content/rooms.yaml; the file's definition is used", room.id)
            changed.append(room)
    return rooms.model_copy(update={"rooms": changed})


async def change_room(
    session: AsyncSession, content: Content, zone: ZoneInfo, room_id: str, values: dict[str, object] | None, staff: StaffUser
) -> list[str]:
    """Apply an admin's change to a room (None goes back to the file); returns the problems, if any.

    Coming sessions follow at once: a session whose start the new schedule still names gets the new
    length, any other is called off (people who asked for a reminder are told); the scheduler then
    plans the new ones.
    """
    base = content.rooms.room(room_id)
    if base is None:
        return [f"unknown room {room_id!r}"]
    try:
        room = Room.model_validate({**base.model_dump(), **(values or {})})
    except ValidationError as exc:
        return [f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()]
    if problems := content.rooms.band_problems(room):
        return problems
    differs = {key: value for key, value in room.model_dump().items() if value != base.model_dump()[key]}
    change = await session.get(RoomChange, room_id)
    if differs:
        change = change or RoomChange(room_id=room_id, values={}, staff_id=staff.id)
        change.values, change.staff_id, change.changed_at = differs, staff.id, utcnow()
        session.add(change)
    elif change is not None:
        await session.delete(change)
    await _follow_schedule(session, content, zone, room)
    announce(session, ROOMS_TOPIC, SCHEDULE_TOPIC)
    return []


async def _follow_schedule(session: AsyncSession, content: Content, zone: ZoneInfo, room: Room) -> None:
    now = utcnow()
    starts = set(room.starts(now, now + PLAN_AHEAD, zone))
    coming = await session.exec(
        select(RoomSession).where(RoomSession.room_id == room.id, RoomSession.status == RoomSessionStatus.SCHEDULED, RoomSession.starts_at > now)
    )
    for room_session in list(coming):
        if room_session.starts_at in starts:
            room_session.ends_at = room_session.starts_at + timedelta(minutes=room.duration_minutes)
            session.add(room_session)
        elif await _transition(session, room_session.id, [RoomSessionStatus.SCHEDULED], status=RoomSessionStatus.CANCELLED, closed_at=now, close_reason="schedule changed"):
            text = content.rooms.words.rescheduled.format(title=room.title, when=when_text(room_session.starts_at, zone))
            _multicast(session, room_session.id, await _reminded_users(session, room_session.id), texts(text))


async def plan_sessions(session: AsyncSession, rooms: Rooms, zone: ZoneInfo, now: datetime) -> None:
    """Create the sessions the rooms' schedules name from now to PLAN_AHEAD (and any still running).

    An insert that meets an existing (room, start) does nothing, so every process may plan.
    """
    rows = []
    for room in rooms.rooms:
        duration = timedelta(minutes=room.duration_minutes)
        for start in room.starts(now - duration, now + PLAN_AHEAD, zone):
            rows.append({"room_id": room.id, "starts_at": start, "ends_at": start + duration, "status": RoomSessionStatus.SCHEDULED})
    if not rows:
        return
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    await session.exec(dialect.insert(RoomSession).values(rows).on_conflict_do_nothing(index_elements=["room_id", "starts_at"]))
    announce(session, ROOMS_TOPIC)


async def unfinished_sessions(session: AsyncSession) -> Sequence[RoomSession]:
    """Sessions not yet closed or cancelled, soonest first: what the scheduler keeps jobs for."""
    return (await session.exec(select(RoomSession).where(col(RoomSession.status).in_(UNFINISHED)).order_by(RoomSession.starts_at))).all()


async def _transition(
    session: AsyncSession, session_id: int, from_states: Sequence[RoomSessionStatus], *conditions: ColumnElement[bool], **values: object
) -> bool:
    """Move a session out of `from_states` if it is still in one (and `conditions` hold); whether this call did it."""
    result = await session.exec(
        update(RoomSession)
        .where(RoomSession.id == session_id, col(RoomSession.status).in_(from_states), *conditions)
        .values(**values)
    )
    if result.rowcount != 1:
        return False
    announce(session, ROOMS_TOPIC, room_topic(session_id))
    return True


async def remind(session: AsyncSession, content: Content, session_id: int, zone: ZoneInfo) -> bool:
    """Tell the people who asked that the session opens soon (once, however many processes try)."""
    result = await session.exec(
        update(RoomSession)
        .where(RoomSession.id == session_id, RoomSession.status == RoomSessionStatus.SCHEDULED, col(RoomSession.reminded_at).is_(None))
        .values(reminded_at=utcnow())
    )
    if result.rowcount != 1:
        return False
    room_session, room = await _session_and_room(session, content, session_id)
    words = content.rooms.words
    text = words.reminder.format(title=room.title, when=when_text(room_session.starts_at, zone))
    _multicast(session, session_id, await _reminded_users(session, session_id), texts(text, quick_reply=[join_button(content, session_id)]))
    return True


async def open_session(session: AsyncSession, content: Content, session_id: int) -> bool:
    """Open a session whose time has come, if a facilitator is present where its room needs one."""
    room_session, room = await _session_and_room(session, content, session_id)
    now = utcnow()
    if room_session is None or room is None or not room_session.starts_at <= now < room_session.ends_at:
        return False
    if room.facilitator_required and room_session.facilitator_id is None:
        announce(session, ROOMS_TOPIC)  # the console shows it waiting for a facilitator
        return False
    if not await _transition(session, session_id, [RoomSessionStatus.SCHEDULED], status=RoomSessionStatus.OPEN, opened_at=now):
        return False
    text = content.rooms.words.opened.format(title=room.title)
    _multicast(session, session_id, await _reminded_users(session, session_id), texts(text, quick_reply=[join_button(content, session_id)]))
    return True


async def close_session(
    session: AsyncSession, content: Content, session_id: int, reason: str | None = None, *, when_due: bool = False
) -> bool:
    """Close an open session (closing words and a one-tap check-in), or cancel one that never opened.

    With `when_due` (the schedule's closing) it happens only if the session's end, as the database has
    it now, has come: a job planned before an admin lengthened the session must not close it early.
    """
    room_session, room = await _session_and_room(session, content, session_id)
    if room_session is None or room is None:
        return False
    words, now = content.rooms.words, utcnow()
    due = [RoomSession.ends_at <= now] if when_due else []
    if room_session.status == RoomSessionStatus.SCHEDULED:
        if not await _transition(session, session_id, [RoomSessionStatus.SCHEDULED], *due, status=RoomSessionStatus.CANCELLED, closed_at=now, close_reason=reason or "no facilitator"):
            return False
        _multicast(session, session_id, await _reminded_users(session, session_id), texts(words.cancelled.format(title=room.title)))
        return True
    if not await _transition(session, session_id, [RoomSessionStatus.OPEN], *due, status=RoomSessionStatus.CLOSED, closed_at=now, close_reason=reason):
        return False
    checkin = [postback_item(getattr(words, f"checkin_{answer}"), CheckinTap(id=session_id, v=answer).pack()) for answer in CHECKIN_ANSWERS]
    closing = texts(words.closing.format(title=room.title)) + texts(words.checkin_question, quick_reply=checkin)
    await broadcast(session, session_id, closing)
    await session.exec(
        update(RoomParticipant)
        .where(RoomParticipant.session_id == session_id, RoomParticipant.state == ParticipantState.JOINED)
        .values(state=ParticipantState.LEFT, left_at=now)
    )
    return True


async def claim(session: AsyncSession, content: Content, session_id: int, staff: StaffUser) -> bool:
    """A facilitator says they keep this session; one that was waiting for them opens at once."""
    room_session = await session.get(RoomSession, session_id)
    if room_session is None or room_session.status not in UNFINISHED:
        return False
    room_session.facilitator_id = staff.id
    session.add(room_session)
    announce(session, ROOMS_TOPIC, room_topic(session_id))
    if room_session.status == RoomSessionStatus.SCHEDULED and room_session.starts_at <= utcnow():
        await session.flush()
        await open_session(session, content, session_id)
    return True


async def post_as_staff(session: AsyncSession, content: Content, room_session: RoomSession, staff: StaffUser, text: str) -> None:
    """A facilitator's or moderator's words to the whole room, marked as staff."""
    session.add(RoomMessage(session_id=room_session.id, staff_id=staff.id, kind="staff", text=text))
    await broadcast(session, room_session.id, texts(f"{content.rooms.words.staff_mark}{staff.display_name}: {text}"))
    announce(session, room_topic(room_session.id))


def mute(session: AsyncSession, participant: RoomParticipant, minutes: int) -> None:
    """Stop a participant's messages reaching the room for a while; they still read."""
    participant.muted_until = utcnow() + timedelta(minutes=minutes)
    session.add(participant)
    announce(session, room_topic(participant.session_id))


async def remove(session: AsyncSession, content: Content, participant: RoomParticipant, staff: StaffUser, reason: str) -> None:
    """Take a participant out of the session: told why once, then nothing more from the room reaches them."""
    participant.state, participant.left_at = ParticipantState.REMOVED, utcnow()
    participant.removed_by, participant.removed_reason = staff.id, reason
    session.add(participant)
    enqueue(session, participant.user_id, texts(content.rooms.words.removed), category=ROOMS)
    await session.flush()
    await broadcast(session, participant.session_id, texts(content.rooms.words.announce_leave.format(nickname=participant.nickname)))
    announce(session, room_topic(participant.session_id))


async def forget_transcripts(session: AsyncSession, days: int) -> int:
    """Delete the text of room messages older than the retention period; the counts stay. Returns how many."""
    result = await session.exec(
        update(RoomMessage)
        .where(col(RoomMessage.created_at) < utcnow() - timedelta(days=days), col(RoomMessage.text).is_not(None))
        .values(text=None)
    )
    return result.rowcount


async def broadcast(session: AsyncSession, session_id: int, messages: list[Message], *, leave_out: str | None = None) -> int:
    """Send messages to everyone in the session (but `leave_out`), in order. Returns how many it reaches."""
    rows = await session.exec(
        select(RoomParticipant.user_id)
        .join(LineUser, col(LineUser.user_id) == RoomParticipant.user_id)
        .where(RoomParticipant.session_id == session_id, RoomParticipant.state == ParticipantState.JOINED, col(LineUser.following))
        .order_by(RoomParticipant.id)
    )
    return _multicast(session, session_id, [user_id for user_id in rows if user_id != leave_out], messages)


def _multicast(session: AsyncSession, session_id: int, user_ids: list[str], messages: list[Message]) -> int:
    # One key per session keeps the room's messages in the order they were said.
    for start in range(0, len(user_ids), MULTICAST_MAX_RECIPIENTS):
        enqueue(session, f"room:{session_id}", messages, recipients=user_ids[start : start + MULTICAST_MAX_RECIPIENTS], category=ROOMS)
    return len(user_ids)


async def _reminded_users(session: AsyncSession, session_id: int) -> list[str]:
    rows = await session.exec(
        select(RoomReminder.user_id)
        .join(LineUser, col(LineUser.user_id) == RoomReminder.user_id)
        .where(RoomReminder.session_id == session_id, col(LineUser.following))
        .order_by(RoomReminder.created_at)
    )
    return list(rows)


async def _session_and_room(session: AsyncSession, content: Content, session_id: int) -> tuple[RoomSession | None, Room | None]:
    room_session = await session.get(RoomSession, session_id, populate_existing=True)
    if room_session is None:
        return None, None
    return room_session, (await rooms_in_effect(session, content.rooms)).room(room_session.room_id)


def join_button(content: Content, session_id: int) -> dict[str, object]:
    """The quick-reply button that asks to join a session."""
    return postback_item(content.rooms.words.join, RoomTap(do="join", id=session_id).pack())


@dataclass
class SessionMeasures:
    """What a session's report shows, without a word of what was said."""

    participants: int = 0
    messages: int = 0
    # Messages not relayed, by why: contact, risk, muted, media.
    held: dict[str, int] = field(default_factory=dict)
    # Participants who left before the close, and who were removed by staff.
    leaves: int = 0
    removed: int = 0
    # Check-in answers at the close: better, same, worse.
    checkins: dict[str, int] = field(default_factory=dict)
    reports: int = 0

    def __add__(self, other: SessionMeasures) -> SessionMeasures:
        def merged(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {key: a.get(key, 0) + b.get(key, 0) for key in {**a, **b}}

        return SessionMeasures(
            self.participants + other.participants, self.messages + other.messages, merged(self.held, other.held),
            self.leaves + other.leaves, self.removed + other.removed, merged(self.checkins, other.checkins), self.reports + other.reports,
        )


async def session_measures(session: AsyncSession, session_ids: Sequence[int]) -> dict[int, SessionMeasures]:
    """The measures of each session, counted in SQL."""
    measures = {session_id: SessionMeasures() for session_id in session_ids}
    if not measures:
        return measures
    people = await session.exec(
        select(RoomParticipant.session_id, RoomParticipant.state, RoomParticipant.checkin, func.count())
        .where(col(RoomParticipant.session_id).in_(measures))
        .group_by(RoomParticipant.session_id, RoomParticipant.state, RoomParticipant.checkin)
    )
    for session_id, state, checkin, count in people:
        figures = measures[session_id]
        figures.participants += count
        figures.removed += count if state == ParticipantState.REMOVED else 0
        if checkin:
            figures.checkins[checkin] = figures.checkins.get(checkin, 0) + count
    left_early = await session.exec(
        select(RoomParticipant.session_id, func.count())
        .join(RoomSession, col(RoomSession.id) == RoomParticipant.session_id)
        .where(col(RoomParticipant.session_id).in_(measures), RoomParticipant.state == ParticipantState.LEFT)
        .where(or_(col(RoomSession.closed_at).is_(None), col(RoomParticipant.left_at) < RoomSession.closed_at))
        .group_by(RoomParticipant.session_id)
    )
    for session_id, count in left_early:
        measures[session_id].leaves = count
    said = await session.exec(
        select(RoomMessage.session_id, RoomMessage.held, func.count(), func.sum(RoomMessage.reports))
        .where(col(RoomMessage.session_id).in_(measures), col(RoomMessage.participant_id).is_not(None))
        .group_by(RoomMessage.session_id, RoomMessage.held)
    )
    for session_id, held, count, reports in said:
        figures = measures[session_id]
        figures.messages += count
        figures.reports += reports or 0
        if held:
            figures.held[held] = count
    return measures
