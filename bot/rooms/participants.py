"""The online ibasho as a person on LINE meets it: rooms for their age band, joining, talking, leaving.

A participant's words reach the others as「nickname: text」, never with their LINE name. Before
anything is relayed it is checked: contact details are held back (moderation/contact.py), and a
message screened at `high` or above is held back too, with a one-tap offer of a one-to-one
consultation at that priority. Children and adults never share a room.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from moderation.contact import describe, find_contact_details
from sqlmodel import col, func, select

from bot.consultation.queue import raise_level
from bot.consultation.requests import crisis_consultation, open_consultation
from bot.conversation.people import get_or_create_user
from bot.conversation.router import Router, Turn
from bot.guidance.content import Room
from bot.line.messages import flex, postback_item, texts
from bot.rooms.sessions import (
    PLAN_AHEAD,
    ROOMS_TOPIC,
    UNFINISHED,
    broadcast,
    join_button,
    room_topic,
    rooms_in_effect,
    when_text,
)
from bot.rooms.taps import AgeBandTap, CheckinTap, RoomTap
from bot.storage.after_commit import announce
from bot.storage.models import (
    ParticipantState,
    RiskFlag,
    RiskLevel,
    RoomMessage,
    RoomParticipant,
    RoomReminder,
    RoomSession,
    RoomSessionStatus,
    UserMessage,
    utcnow,
)

# Nicknames are colour or mood + animal + digit: over a thousand, enough for a full room.
router = Router()

NICKNAME_WORDS = ("あおい", "あかい", "しろい", "きいろい", "みどりの", "ちいさな", "しずかな", "やさしい", "ひだまりの", "よぞらの")
NICKNAME_ANIMALS = ("ネコ", "イヌ", "ウサギ", "リス", "クマ", "ペンギン", "カメ", "タヌキ", "キツネ", "フクロウ", "パンダ", "ラッコ")
NICKNAME_MAX = 10
# Held-back risk: the level from which a message does not reach the room.
HOLD_FROM = RiskLevel.HIGH
LISTED_SESSIONS = 10
REPORTABLE_MESSAGES = 5


async def show_rooms(turn: Turn) -> None:
    """The menu's オンライン居場所: ask the age band once, then list open and coming sessions for it."""
    rooms = turn.content.rooms
    user = await get_or_create_user(turn.session, turn.source_id)
    if rooms.age_band(user.age_band) is None:
        bands = [postback_item(b.label, AgeBandTap(id=b.id).pack()) for b in rooms.age_bands]
        turn.reply(texts(rooms.words.ask_age_band, quick_reply=bands))
        return
    listed = [(s, room) for s, room in await _upcoming(turn) if user.age_band in room.age_bands][:LISTED_SESSIONS]
    if not listed:
        turn.reply(texts(rooms.words.none_upcoming))
        return
    bubbles = [_session_bubble(turn, room_session, room) for room_session, room in listed]
    turn.reply([flex(rooms.words.list_intro, {"type": "carousel", "contents": bubbles})])


@router.tap(AgeBandTap)
async def choose_age_band(turn: Turn, tap: AgeBandTap) -> None:
    """Keep the age band the person chose, then show their rooms."""
    band_id = tap.id
    if turn.content.rooms.age_band(band_id) is None:
        turn.reply(texts(turn.content.messages.unknown_choice))
        return
    user = await get_or_create_user(turn.session, turn.source_id)
    user.age_band = band_id
    turn.session.add(user)
    await show_rooms(turn)


@router.tap(RoomTap, do="join")
async def ask_to_join(turn: Turn, tap: RoomTap) -> None:
    """Show the rules; joining needs a tap to agree."""
    checked = await _may_join(turn, tap.id)
    if checked is None:
        return
    room_session, room = checked
    words = turn.content.rooms.words
    buttons = [
        postback_item(words.agree, RoomTap(do="agree", id=room_session.id).pack()),
        postback_item(words.decline, RoomTap(do="decline", id=room_session.id).pack()),
    ]
    turn.reply(texts(f"「{room.title}」\n{room.rules}", quick_reply=buttons))


@router.tap(RoomTap, do="agree")
async def join(turn: Turn, tap: RoomTap) -> None:
    """The person agreed to the rules: in, with a nickname the room sees instead of their name."""
    checked = await _may_join(turn, tap.id)
    if checked is None:
        return
    room_session, room = checked
    taken = set(await turn.session.exec(select(RoomParticipant.nickname).where(RoomParticipant.session_id == room_session.id)))
    previous = await _participant_row(turn, room_session.id)
    if previous is not None:  # they left and came back: same nickname, in again
        participant = previous
        participant.state, participant.left_at = ParticipantState.JOINED, None
    else:
        participant = RoomParticipant(session_id=room_session.id, user_id=turn.source_id, nickname=_new_nickname(taken))
    turn.session.add(participant)
    await turn.session.flush()
    words = turn.content.rooms.words
    turn.reply(texts(words.joined.format(title=room.title, nickname=participant.nickname)))
    await broadcast(turn.session, room_session.id, texts(words.announce_join.format(nickname=participant.nickname)), leave_out=turn.source_id)
    announce(turn.session, room_topic(room_session.id), ROOMS_TOPIC)


@router.tap(RoomTap, do="remind")
async def remind_me(turn: Turn, tap: RoomTap) -> None:
    """Remember to tell the person before the session opens."""
    checked = await _session_for_person(turn, tap.id)
    if checked is None:
        return
    room_session, room = checked
    if await turn.session.get(RoomReminder, (room_session.id, turn.source_id)) is None:
        turn.session.add(RoomReminder(session_id=room_session.id, user_id=turn.source_id))
    words = turn.content.rooms.words
    when = when_text(room_session.starts_at, turn.zone)
    turn.reply(texts(words.reminder_set.format(when=when, title=room.title, minutes=turn.content.rooms.remind_minutes_before)))


async def current_participant(turn: Turn) -> RoomParticipant | None:
    """The person's place in a session that is open now, if they are in one."""
    result = await turn.session.exec(
        select(RoomParticipant)
        .join(RoomSession, col(RoomSession.id) == RoomParticipant.session_id)
        .where(
            RoomParticipant.user_id == turn.source_id,
            RoomParticipant.state == ParticipantState.JOINED,
            RoomSession.status == RoomSessionStatus.OPEN,
        )
    )
    return result.first()


def relayed(nickname: str, text: str) -> str:
    """A participant's words as the others read them: by nickname only, never their LINE name."""
    return f"{nickname}: {text}"


async def room_text(turn: Turn, participant: RoomParticipant, message: UserMessage, level: RiskLevel) -> None:
    """A text from someone in a room: a command, a new nickname, or words for the others (checked first)."""
    words, text = turn.content.rooms.words, (message.text or "").strip()
    if level is RiskLevel.IMMINENT:
        # The screening has answered with the safety message and queued them first; the room must not see it.
        _keep(turn, participant, message, "risk")
        await leave(turn, participant, quiet=True)
        return
    if text in words.leave_words:
        await leave(turn, participant)
        return
    if text in words.report_words:
        await _offer_reports(turn, participant)
        return
    if text in words.rename_words:
        _start_rename(turn, participant)
        return
    if participant.renaming:
        await _rename(turn, participant, text)
        return
    if participant.muted_until and participant.muted_until > utcnow():
        _keep(turn, participant, message, "muted")
        turn.reply(texts(words.muted.format(until=when_text(participant.muted_until, turn.zone))))
        return
    if findings := find_contact_details(text):
        _keep(turn, participant, message, "contact")
        turn.reply(texts(words.held_contact.format(what=describe(findings))))
        return
    if level.rank >= HOLD_FROM.rank:
        _keep(turn, participant, message, "risk")
        offer = postback_item(words.consult_button, RoomTap(do="consult", id=participant.session_id).pack())
        turn.reply(texts(words.held_risk, quick_reply=[offer]))
        announce(turn.session, ROOMS_TOPIC)  # facilitators and moderators see the held message at once
        return
    _keep(turn, participant, message, None)
    await broadcast(turn.session, participant.session_id, texts(relayed(participant.nickname, message.text)), leave_out=turn.source_id)


async def room_media(turn: Turn, participant: RoomParticipant, message: UserMessage) -> None:
    """A sticker reaches the room as a word; images, video, audio and files do not reach it at all."""
    words = turn.content.rooms.words
    await turn.session.flush()  # the room's record refers to the stored message
    if message.kind != "sticker":
        _keep(turn, participant, message, "media")
        turn.reply(texts(words.image_not_relayed))
        return
    _keep(turn, participant, message, None)
    await broadcast(turn.session, participant.session_id, texts(relayed(participant.nickname, words.sticker_word)), leave_out=turn.source_id)


async def leave(turn: Turn, participant: RoomParticipant, *, quiet: bool = False) -> None:
    """Out of the room, now; the others hear it. `quiet` leaves the person's own goodbye out."""
    words = turn.content.rooms.words
    participant.state, participant.left_at, participant.renaming = ParticipantState.LEFT, utcnow(), False
    turn.session.add(participant)
    await turn.session.flush()
    if not quiet:
        turn.reply(texts(words.left))
    await broadcast(turn.session, participant.session_id, texts(words.announce_leave.format(nickname=participant.nickname)))
    announce(turn.session, room_topic(participant.session_id), ROOMS_TOPIC)


async def leave_any_room(turn: Turn) -> None:
    """The person went to a one-to-one consultation: a room no longer hears from them."""
    participant = await current_participant(turn)
    if participant is not None:
        await leave(turn, participant, quiet=True)


@router.tap(RoomTap, do="consult")
async def consult_from_room(turn: Turn, _tap: RoomTap) -> None:
    """The tap after a held-back message: out of the room and into the queue at the level screened."""
    words = turn.content.rooms.words
    consultation = await crisis_consultation(turn)
    level = await turn.session.exec(
        select(RiskFlag.level)
        .join(RoomMessage, col(RoomMessage.user_message_id) == RiskFlag.message_id)
        .where(RiskFlag.user_id == turn.source_id, RoomMessage.held == "risk")
        .order_by(col(RiskFlag.id).desc())
    )
    raise_level(turn.session, consultation, RiskLevel(level.first() or RiskLevel.HIGH))
    await leave_any_room(turn)
    turn.reply(texts(words.consult_started))


@router.tap(RoomTap, do="report")
async def report(turn: Turn, tap: RoomTap) -> None:
    """A participant reports a message of their session; staff see the count in the console."""
    message = await turn.session.get(RoomMessage, tap.id)
    participant = await current_participant(turn)
    if message is None or participant is None or message.session_id != participant.session_id:
        turn.reply(texts(turn.content.messages.unknown_choice))
        return
    message.reports += 1
    turn.session.add(message)
    announce(turn.session, room_topic(message.session_id), ROOMS_TOPIC)
    turn.reply(texts(turn.content.rooms.words.report_done))


@router.tap(CheckinTap)
async def record_checkin(turn: Turn, tap: CheckinTap) -> None:
    """The one-tap answer at close (気持ちは少し楽になった?), for the person's own session."""
    participant = await _participant_row(turn, tap.id)
    if participant is None:
        turn.reply(texts(turn.content.messages.unknown_choice))
        return
    participant.checkin = tap.v
    turn.session.add(participant)
    turn.reply(texts(turn.content.rooms.words.checkin_thanks))


@router.tap(RoomTap, do="decline")
async def declined(turn: Turn, _tap: RoomTap) -> None:
    """The person would rather not join: fine, said kindly."""
    turn.reply(texts(turn.content.rooms.words.declined))


def _keep(turn: Turn, participant: RoomParticipant, message: UserMessage, held: str | None) -> None:
    turn.session.add(
        RoomMessage(session_id=participant.session_id, participant_id=participant.id, user_message_id=message.id, kind=message.kind, text=message.text, held=held)
    )
    announce(turn.session, room_topic(participant.session_id))


def _start_rename(turn: Turn, participant: RoomParticipant) -> None:
    words = turn.content.rooms.words
    if participant.renamed:
        turn.reply(texts(words.rename_used))
        return
    participant.renaming = True
    turn.session.add(participant)
    turn.reply(texts(words.rename_prompt))


async def _rename(turn: Turn, participant: RoomParticipant, nickname: str) -> None:
    words = turn.content.rooms.words
    taken = set(await turn.session.exec(select(RoomParticipant.nickname).where(RoomParticipant.session_id == participant.session_id)))
    if not 0 < len(nickname) <= NICKNAME_MAX or nickname in taken or find_contact_details(nickname) or words.staff_mark.strip("【】") in nickname:
        turn.reply(texts(words.rename_invalid))
        return
    old, participant.nickname = participant.nickname, nickname
    participant.renamed, participant.renaming = True, False
    turn.session.add(participant)
    turn.reply(texts(words.rename_done.format(nickname=nickname)))
    await broadcast(turn.session, participant.session_id, texts(words.announce_rename.format(old=old, nickname=nickname)), leave_out=turn.source_id)
    announce(turn.session, room_topic(participant.session_id))


async def _offer_reports(turn: Turn, participant: RoomParticipant) -> None:
    """The last few messages of others, as buttons: a tap reports one."""
    words = turn.content.rooms.words
    recent = await turn.session.exec(
        select(RoomMessage, RoomParticipant.nickname)
        .join(RoomParticipant, col(RoomParticipant.id) == RoomMessage.participant_id)
        .where(RoomMessage.session_id == participant.session_id, col(RoomMessage.held).is_(None), RoomMessage.participant_id != participant.id)
        .order_by(col(RoomMessage.id).desc())
        .limit(REPORTABLE_MESSAGES)
    )
    items = [
        postback_item(f"{nickname}: {message.text or words.sticker_word}"[:20], RoomTap(do="report", id=message.id).pack())
        for message, nickname in recent
    ]
    turn.reply(texts(words.report_prompt if items else words.report_none, quick_reply=items or None))


async def _upcoming(turn: Turn) -> list[tuple[RoomSession, Room]]:
    """Open and coming sessions, soonest first, whose room is still in content."""
    now = utcnow()
    sessions = await turn.session.exec(
        select(RoomSession)
        .where(col(RoomSession.status).in_(UNFINISHED), RoomSession.ends_at > now, RoomSession.starts_at < now + PLAN_AHEAD)
        .order_by(RoomSession.starts_at)
    )
    rooms = await rooms_in_effect(turn.session, turn.content.rooms)
    return [(s, room) for s in sessions if (room := rooms.room(s.room_id)) is not None]


async def _session_for_person(turn: Turn, session_id: int) -> tuple[RoomSession, Room] | None:
    """The session a button names, if it exists and is for the person's age band; else they are told why."""
    words = turn.content.rooms.words
    room_session = await turn.session.get(RoomSession, session_id)
    room = (await rooms_in_effect(turn.session, turn.content.rooms)).room(room_session.room_id) if room_session else None
    if room_session is None or room is None:
        turn.reply(texts(turn.content.messages.unknown_choice))
        return None
    user = await get_or_create_user(turn.session, turn.source_id)
    if user.age_band is None:
        await show_rooms(turn)  # asks their age band first
        return None
    if user.age_band not in room.age_bands:
        await _sorry(turn, words.other_band.format(title=room.title), None)
        return None
    if room_session.status not in UNFINISHED or room_session.ends_at <= utcnow():
        await _sorry(turn, words.closed.format(title=room.title), room)
        return None
    return room_session, room


async def _may_join(turn: Turn, session_id: int) -> tuple[RoomSession, Room] | None:
    """The session if the person may join it now; otherwise they are told why, kindly, with the next one."""
    checked = await _session_for_person(turn, session_id)
    if checked is None:
        return None
    room_session, room = checked
    words = turn.content.rooms.words
    if await open_consultation(turn.session, turn.source_id) is not None:
        turn.reply(texts(words.in_consultation))
        return None
    current = await current_participant(turn)
    if current is not None:
        in_room = (await rooms_in_effect(turn.session, turn.content.rooms)).room((await turn.session.get(RoomSession, current.session_id)).room_id)
        turn.reply(texts(words.already_in.format(title=in_room.title if in_room else "")))
        return None
    if room_session.status != RoomSessionStatus.OPEN:
        await _sorry(turn, words.not_open.format(title=room.title), room, after=room_session.starts_at)
        return None
    previous = await _participant_row(turn, room_session.id)
    if previous is not None and previous.state == ParticipantState.REMOVED:
        await _sorry(turn, words.closed.format(title=room.title), room, after=room_session.starts_at)
        return None
    present = await turn.session.exec(
        select(func.count()).where(RoomParticipant.session_id == room_session.id, RoomParticipant.state == ParticipantState.JOINED)
    )
    if present.one() >= room.capacity:
        await _sorry(turn, words.full.format(title=room.title), room, after=room_session.starts_at)
        return None
    return room_session, room


async def _sorry(turn: Turn, text: str, room: Room | None, after: datetime | None = None) -> None:
    """Say why not, and offer the next session of the same room (or the person's list of rooms)."""
    words = turn.content.rooms.words
    later = [s for s, r in await _upcoming(turn) if room is not None and r.id == room.id and s.starts_at > (after or utcnow())]
    buttons = None
    if later:
        text += "\n" + words.next_session.format(title=room.title, when=when_text(later[0].starts_at, turn.zone))
        buttons = [postback_item(words.remind, RoomTap(do="remind", id=later[0].id).pack())]
    turn.reply(texts(text, quick_reply=buttons))


async def _participant_row(turn: Turn, session_id: int) -> RoomParticipant | None:
    result = await turn.session.exec(
        select(RoomParticipant).where(RoomParticipant.session_id == session_id, RoomParticipant.user_id == turn.source_id)
    )
    return result.first()


def _new_nickname(taken: set[str]) -> str:
    while True:
        nickname = f"{secrets.choice(NICKNAME_WORDS)}{secrets.choice(NICKNAME_ANIMALS)}{secrets.randbelow(9) + 1}"
        if nickname not in taken:
            return nickname


def _session_bubble(turn: Turn, room_session: RoomSession, room: Room) -> dict[str, Any]:
    words = turn.content.rooms.words
    is_open = room_session.status == RoomSessionStatus.OPEN
    when = words.open_now if is_open else words.starts_at.format(when=when_text(room_session.starts_at, turn.zone), minutes=room.duration_minutes)
    action = join_button(turn.content, room_session.id) if is_open else postback_item(words.remind, RoomTap(do="remind", id=room_session.id).pack())
    return {
        "type": "bubble",
        "body": {
            "type": "box",
            "layout": "vertical",
            "spacing": "sm",
            "contents": [
                {"type": "text", "text": room.title, "weight": "bold", "wrap": True},
                {"type": "text", "text": when, "size": "sm", "color": "#1a7f37" if is_open else "#555555", "wrap": True},
                {"type": "text", "text": room.theme, "size": "sm", "wrap": True},
                {"type": "text", "text": room.description, "size": "xs", "color": "#666666", "wrap": True},
            ],
        },
        "footer": {"type": "box", "layout": "vertical", "contents": [{"type": "button", "style": "primary" if is_open else "secondary", "action": action["action"]}]},
    }
