"""The online ibasho end to end: the scheduler opens a session, people talk through the emulator over real HTTP."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

from conftest import Service, add_account, run_service, settle
from sqlmodel import select

from bot.appkeys import ROOM_SCHEDULER, SESSIONS, SETTINGS
from bot.storage.models import (
    Consultation,
    ConsultationStatus,
    ParticipantState,
    RiskLevel,
    RoomChange,
    RoomMessage,
    RoomParticipant,
    RoomReminder,
    RoomSession,
    RoomSessionStatus,
    StaffRole,
    utcnow,
)

ADULT_ROOM, TEEN_ROOM = "young_adult_night", "teen_evening"
_accounts = itertools.count()


async def scheduled_session(
    service: Service, room_id: str = ADULT_ROOM, *, starts_in: float = 0.3, lasts: float = 120, facilitator: bool = True
) -> int:
    """A session of a content room starting in a moment, handed to the running scheduler (which opens it)."""
    staff = await add_account(service, f"facilitator{next(_accounts)}", StaffRole.FACILITATOR) if facilitator else None
    now = utcnow()
    async with service.app[SESSIONS]() as session:
        row = RoomSession(room_id=room_id, starts_at=now + timedelta(seconds=starts_in), ends_at=now + timedelta(seconds=lasts), facilitator_id=staff.id if staff else None)
        session.add(row)
        await session.commit()
        session_id = row.id
    await service.app[ROOM_SCHEDULER].plan()
    return session_id


async def status_of(service: Service, session_id: int) -> RoomSessionStatus:
    async with service.app[SESSIONS]() as session:
        return (await session.get(RoomSession, session_id)).status


async def wait_for_status(service: Service, session_id: int, status: RoomSessionStatus, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while await status_of(service, session_id) != status:
            await asyncio.sleep(0.05)


async def enter(service: Service, session_id: int, band: str = "age18_29") -> str:
    """A new LINE user who gives their age band, asks to join, reads the rules and agrees."""
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.send_postback(user, f"a=band&id={band}")
    await line.send_postback(user, f"a=room&do=join&id={session_id}")
    await line.send_postback(user, f"a=room&do=agree&id={session_id}")
    await settle(service)
    return user


def texts_of(service: Service, user: str) -> list[str]:
    return [m["message"].get("text", m["message"].get("altText", "")) for m in service.line.messages_for(user)]


async def participant(service: Service, session_id: int, user: str) -> RoomParticipant:
    async with service.app[SESSIONS]() as session:
        return (await session.exec(select(RoomParticipant).where(RoomParticipant.session_id == session_id, RoomParticipant.user_id == user))).one()


async def say(service: Service, user: str, text: str) -> None:
    await service.line.send_text(user, text)
    await settle(service)


async def test_three_people_talk_under_nicknames_and_a_phone_number_or_high_risk_is_held_back(service: Service, content: Any) -> None:
    words = content.rooms.words
    session_id = await scheduled_session(service)
    await wait_for_status(service, session_id, RoomSessionStatus.OPEN)
    a, b, c = [await enter(service, session_id) for _ in range(3)]
    names = {user: (await participant(service, session_id, user)).nickname for user in (a, b, c)}
    assert len(set(names.values())) == 3
    # c, the last in, read the rules and then their nickname; a heard b and c come in.
    assert content.rooms.room(ADULT_ROOM).rules in texts_of(service, c)[-2]
    assert texts_of(service, c)[-1] == words.joined.format(title=content.rooms.room(ADULT_ROOM).title, nickname=names[c])
    assert texts_of(service, a)[-2:] == [words.announce_join.format(nickname=names[user]) for user in (b, c)]

    before = {user: len(texts_of(service, user)) for user in (a, b, c)}
    await say(service, a, "こんばんは、今日はちょっと疲れた")
    line = f"{names[a]}: こんばんは、今日はちょっと疲れた"
    assert texts_of(service, b)[-1] == line and texts_of(service, c)[-1] == line
    assert line not in texts_of(service, a)  # never to oneself
    assert service.line.messages_for(b)[-1]["via"] == "multicast"

    await say(service, b, "よかったら電話して ０９０ー１２３４ー５６７８")
    assert texts_of(service, b)[-1] == words.held_contact.format(what="電話番号")
    assert not any("1234" in text for text in texts_of(service, a) + texts_of(service, c))

    await say(service, c, "死にたい")
    reply = service.line.messages_for(c)[-1]["message"]
    assert reply["text"] == words.held_risk
    assert reply["quickReply"]["items"][0]["action"]["data"] == f"a=room&do=consult&id={session_id}"
    assert not any("死にたい" in text for text in texts_of(service, a) + texts_of(service, b))
    assert len(texts_of(service, a)) == before[a]  # a heard nothing of what was held back
    async with service.app[SESSIONS]() as session:
        held = {m.held for m in await session.exec(select(RoomMessage).where(RoomMessage.session_id == session_id))}
    assert held == {None, "contact", "risk"}

    # The tap opens a one-to-one consultation at the screened level, and c is out of the room.
    await service.line.send_postback(c, f"a=room&do=consult&id={session_id}")
    await settle(service)
    async with service.app[SESSIONS]() as session:
        [consultation] = list(await session.exec(select(Consultation).where(Consultation.user_id == c)))
    assert consultation.status == ConsultationStatus.REQUESTED and consultation.risk_level == RiskLevel.HIGH
    assert (await participant(service, session_id, c)).state == ParticipantState.LEFT
    assert texts_of(service, a)[-1] == words.announce_leave.format(nickname=names[c])


async def test_imminent_in_a_room_gets_the_safety_message_and_never_reaches_the_room(service: Service, content: Any) -> None:
    session_id = await scheduled_session(service)
    await wait_for_status(service, session_id, RoomSessionStatus.OPEN)
    a, b = await enter(service, session_id), await enter(service, session_id)
    await say(service, a, "今から飛び降りる")
    assert content.messages.imminent_safety in texts_of(service, a)[-1]
    assert not any("飛び降りる" in text for text in texts_of(service, b))
    async with service.app[SESSIONS]() as session:
        [consultation] = list(await session.exec(select(Consultation).where(Consultation.user_id == a)))
    assert consultation.risk_level == RiskLevel.IMMINENT
    assert (await participant(service, session_id, a)).state == ParticipantState.LEFT


async def test_stickers_reach_the_room_as_a_word_and_images_not_at_all(service: Service, content: Any) -> None:
    words = content.rooms.words
    session_id = await scheduled_session(service)
    await wait_for_status(service, session_id, RoomSessionStatus.OPEN)
    a, b = await enter(service, session_id), await enter(service, session_id)
    name = (await participant(service, session_id, a)).nickname
    await service.line.send_sticker(a)
    await settle(service)
    assert texts_of(service, b)[-1] == f"{name}: {words.sticker_word}"
    count = len(texts_of(service, b))
    await service.line.send_image(a)
    await settle(service)
    assert texts_of(service, a)[-1] == words.image_not_relayed
    assert len(texts_of(service, b)) == count


async def test_a_removed_participant_receives_nothing_more_and_cannot_come_back(service: Service, content: Any, console: Any) -> None:
    words = content.rooms.words
    session_id = await scheduled_session(service)
    await wait_for_status(service, session_id, RoomSessionStatus.OPEN)
    a, b = await enter(service, session_id), await enter(service, session_id)
    await add_account(service, "mod", StaffRole.MODERATOR)
    moderator = console()
    await moderator.login("mod")
    status, page = await moderator.get(f"/console/rooms/{session_id}")
    assert status == 200
    target = await participant(service, session_id, b)
    assert target.nickname in page
    status, _, _ = await moderator.post(f"/console/rooms/participants/{target.id}/remove", {"reason": ""})
    assert status == 400  # a reason is required
    status, _, _ = await moderator.post(f"/console/rooms/participants/{target.id}/remove", {"reason": "連絡先の交換を何度も求めた"})
    assert status == 303
    await settle(service)
    assert texts_of(service, b)[-1] == words.removed
    heard = len(texts_of(service, b))
    await say(service, a, "まだいる？")
    await moderator.post(f"/console/rooms/{session_id}/post", {"text": "スタッフです。みなさん無理せずに。"})
    await settle(service)
    assert len(texts_of(service, b)) == heard
    assert texts_of(service, a)[-1].endswith("スタッフです。みなさん無理せずに。") and words.staff_mark in texts_of(service, a)[-1]
    await service.line.send_postback(b, f"a=room&do=join&id={session_id}")
    await settle(service)
    assert texts_of(service, b)[-1].startswith(words.closed.format(title=content.rooms.room(ADULT_ROOM).title))


async def test_under_18_and_adult_bands_stay_apart(service: Service, content: Any) -> None:
    adult_session = await scheduled_session(service, ADULT_ROOM)
    teen_session = await scheduled_session(service, TEEN_ROOM)
    await wait_for_status(service, adult_session, RoomSessionStatus.OPEN)
    await wait_for_status(service, teen_session, RoomSessionStatus.OPEN)
    teen = await enter(service, adult_session, band="under18")
    adult = await enter(service, teen_session, band="age18_29")
    rooms = content.rooms
    assert texts_of(service, teen)[-1].startswith(rooms.words.other_band.format(title=rooms.room(ADULT_ROOM).title))
    assert texts_of(service, adult)[-1].startswith(rooms.words.other_band.format(title=rooms.room(TEEN_ROOM).title))
    async with service.app[SESSIONS]() as session:
        assert list(await session.exec(select(RoomParticipant))) == []
    # Each sees only the rooms of their band in the list.
    await service.line.send_postback(teen, "a=link&id=ibasho")
    await settle(service)
    listing = service.line.messages_for(teen)[-1]["message"]
    titles = [bubble["body"]["contents"][0]["text"] for bubble in listing["contents"]["contents"]]
    assert rooms.room(TEEN_ROOM).title in titles and rooms.room(ADULT_ROOM).title not in titles


async def test_the_session_closes_on_time_with_a_check_in(service: Service, content: Any) -> None:
    words = content.rooms.words
    session_id = await scheduled_session(service, lasts=2.5)
    await wait_for_status(service, session_id, RoomSessionStatus.OPEN)
    a = await enter(service, session_id)
    await wait_for_status(service, session_id, RoomSessionStatus.CLOSED)
    await settle(service)
    closing, question = service.line.messages_for(a)[-2:]
    assert closing["message"]["text"] == words.closing.format(title=content.rooms.room(ADULT_ROOM).title)
    assert question["message"]["text"] == words.checkin_question
    await service.line.send_postback(a, f"a=rcheck&id={session_id}&v=better")
    await settle(service)
    assert (await participant(service, session_id, a)).checkin == "better"
    # After the close, words go to the menu, not to a room.
    await say(service, a, "まだ話したい")
    async with service.app[SESSIONS]() as session:
        assert len(list(await session.exec(select(RoomMessage).where(RoomMessage.session_id == session_id)))) == 0


async def test_without_a_facilitator_the_session_waits_and_a_claim_opens_it(service: Service, console: Any) -> None:
    session_id = await scheduled_session(service, facilitator=False)
    await asyncio.sleep(0.8)
    await settle(service)
    assert await status_of(service, session_id) == RoomSessionStatus.SCHEDULED
    await add_account(service, "keeper", StaffRole.FACILITATOR)
    keeper = console()
    await keeper.login("keeper")
    status, page = await keeper.get("/console/rooms")
    assert status == 200 and "ファシリテーター待ち" in page
    status, _, _ = await keeper.post(f"/console/rooms/{session_id}/claim")
    assert status == 303
    assert await status_of(service, session_id) == RoomSessionStatus.OPEN


async def test_a_restart_during_a_session_keeps_it_open_and_closes_it_on_time(sqlite_url: str, content: Any) -> None:
    async with run_service(sqlite_url, content) as first:
        session_id = await scheduled_session(first, lasts=4)
        await wait_for_status(first, session_id, RoomSessionStatus.OPEN)
        user = await enter(first, session_id)
    async with run_service(sqlite_url, content) as second:
        assert await status_of(second, session_id) == RoomSessionStatus.OPEN
        second.line.add_user(user).following = True
        other = await enter(second, session_id)
        await say(second, other, "再起動のあとも話せる")
        assert len(second.line.messages_for(user)) >= 2  # the join announcement and the words
        await wait_for_status(second, session_id, RoomSessionStatus.CLOSED)


async def test_a_reminder_goes_out_before_the_session_opens(service: Service, content: Any) -> None:
    words = content.rooms.words
    now = utcnow()
    async with service.app[SESSIONS]() as session:
        row = RoomSession(room_id=ADULT_ROOM, starts_at=now + timedelta(minutes=content.rooms.remind_minutes_before, seconds=1), ends_at=now + timedelta(hours=1))
        session.add(row)
        await session.commit()
        session_id = row.id
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.send_postback(user, "a=band&id=age18_29")
    await line.send_postback(user, f"a=room&do=join&id={session_id}")  # not open yet: told when, offered a reminder
    await settle(service)
    assert texts_of(service, user)[-1].startswith(words.not_open.format(title=content.rooms.room(ADULT_ROOM).title))
    await line.send_postback(user, f"a=room&do=remind&id={session_id}")
    await settle(service)
    async with service.app[SESSIONS]() as session:
        assert await session.get(RoomReminder, (session_id, user)) is not None
    await service.app[ROOM_SCHEDULER].plan()
    await asyncio.sleep(1.5)
    await settle(service)
    reminder = service.line.messages_for(user)[-1]
    assert reminder["message"]["text"].startswith(words.reminder.split("{")[0])
    assert reminder["message"]["quickReply"]["items"][0]["action"]["data"] == f"a=room&do=join&id={session_id}"


async def test_a_nickname_changes_once_and_leaving_is_announced(service: Service, content: Any) -> None:
    words = content.rooms.words
    session_id = await scheduled_session(service)
    await wait_for_status(service, session_id, RoomSessionStatus.OPEN)
    a, b = await enter(service, session_id), await enter(service, session_id)
    old = (await participant(service, session_id, a)).nickname
    await say(service, a, words.rename_words[0])
    await say(service, a, "line id教えて")
    assert texts_of(service, a)[-1] == words.rename_invalid
    await say(service, a, "そら")
    assert texts_of(service, a)[-1] == words.rename_done.format(nickname="そら")
    assert texts_of(service, b)[-1] == words.announce_rename.format(old=old, nickname="そら")
    await say(service, a, words.rename_words[0])
    assert texts_of(service, a)[-1] == words.rename_used
    await say(service, a, "退室")
    assert texts_of(service, a)[-1] == words.left
    assert texts_of(service, b)[-1] == words.announce_leave.format(nickname="そら")


async def test_a_participant_reports_a_message_and_staff_see_the_count(service: Service, content: Any) -> None:
    session_id = await scheduled_session(service)
    await wait_for_status(service, session_id, RoomSessionStatus.OPEN)
    a, b = await enter(service, session_id), await enter(service, session_id)
    await say(service, a, "いやなこと言うね")
    await say(service, b, content.rooms.words.report_words[0])
    offer = service.line.messages_for(b)[-1]["message"]
    [item] = offer["quickReply"]["items"]
    await service.line.send_postback(b, item["action"]["data"])
    await settle(service)
    assert texts_of(service, b)[-1] == content.rooms.words.report_done
    async with service.app[SESSIONS]() as session:
        [message] = list(await session.exec(select(RoomMessage).where(RoomMessage.reports > 0)))
    assert message.text == "いやなこと言うね"
    # A report for a message of another session is refused.
    await service.line.send_postback(b, "a=room&do=report&id=999999")
    await settle(service)
    assert texts_of(service, b)[-1] == content.messages.unknown_choice


async def test_an_admin_changes_a_room_and_its_coming_sessions_follow(service: Service, content: Any, console: Any) -> None:
    zone = service.app[SETTINGS].timezone
    await add_account(service, "boss", StaffRole.ADMIN)
    admin = console()
    await admin.login("boss")
    status, page = await admin.get("/console/admin/rooms")
    assert status == 200 and content.rooms.room(ADULT_ROOM).title in page
    fields = {
        "title": "夜ふかし部屋", "theme": "眠れない夜に", "description": "18〜29歳の人の部屋です。", "age_bands": "age18_29",
        "schedule": "30 22 * * mon,wed", "duration_minutes": "45", "capacity": "12", "facilitator_required": "yes",
        "rules": content.rooms.rules,
    }
    status, body, _ = await admin.post(f"/console/admin/rooms/{ADULT_ROOM}", {**fields, "schedule": "30 25 * * mon"})
    assert status == 400 and "schedule" in body
    status, _, _ = await admin.post(f"/console/admin/rooms/{ADULT_ROOM}", fields)
    assert status == 303
    now = utcnow()
    async with service.app[SESSIONS]() as session:
        coming = list(await session.exec(select(RoomSession).where(RoomSession.room_id == ADULT_ROOM, RoomSession.starts_at > now)))
    kept = [s for s in coming if s.status == RoomSessionStatus.SCHEDULED]
    assert kept and all(s.starts_at.astimezone(zone).strftime("%a %H:%M") in ("Mon 22:30", "Wed 22:30") for s in kept)
    assert all(s.ends_at - s.starts_at == timedelta(minutes=45) for s in kept)
    assert all(s.close_reason == "schedule changed" for s in coming if s.status == RoomSessionStatus.CANCELLED)
    # People on LINE see the room as changed.
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await service.line.send_postback(user, "a=band&id=age18_29")
    await settle(service)
    listing = service.line.messages_for(user)[-1]["message"]
    assert "夜ふかし部屋" in [bubble["body"]["contents"][0]["text"] for bubble in listing["contents"]["contents"]]
    # Back to the file's definition.
    status, _, _ = await admin.post(f"/console/admin/rooms/{ADULT_ROOM}", {"reset": "yes"})
    assert status == 303
    _, page = await admin.get("/console/admin/rooms")
    assert content.rooms.room(ADULT_ROOM).title in page and "夜ふかし部屋" not in page


async def test_staff_mute_and_close_early_and_a_full_room_offers_the_next_session(service: Service, content: Any, console: Any) -> None:
    words = content.rooms.words
    title = content.rooms.room(ADULT_ROOM).title
    session_id = await scheduled_session(service)
    await wait_for_status(service, session_id, RoomSessionStatus.OPEN)
    async with service.app[SESSIONS]() as session:  # as an admin's change in the console would set it
        session.add(RoomChange(room_id=ADULT_ROOM, values={"capacity": 2}, staff_id=(await session.get(RoomSession, session_id)).facilitator_id))
        await session.commit()
    a, b = await enter(service, session_id), await enter(service, session_id)
    late = await enter(service, session_id)
    assert texts_of(service, late)[-1].startswith(words.full.format(title=title))
    await add_account(service, "mod", StaffRole.MODERATOR)
    moderator = console()
    await moderator.login("mod")
    await moderator.get(f"/console/rooms/{session_id}")
    target = await participant(service, session_id, a)
    status, _, _ = await moderator.post(f"/console/rooms/participants/{target.id}/mute", {"minutes": "7"})
    assert status == 400  # only the offered lengths
    status, _, _ = await moderator.post(f"/console/rooms/participants/{target.id}/mute", {"minutes": "5"})
    assert status == 303
    heard = len(texts_of(service, b))
    await say(service, a, "聞こえてる？")
    assert texts_of(service, a)[-1].startswith(words.muted.split("{")[0])
    assert len(texts_of(service, b)) == heard
    status, _, _ = await moderator.post(f"/console/rooms/{session_id}/close", {"reason": "荒れてしまったため"})
    assert status == 303
    await settle(service)
    assert await status_of(service, session_id) == RoomSessionStatus.CLOSED
    assert words.closing.format(title=title) in texts_of(service, b)
    async with service.app[SESSIONS]() as session:
        assert (await session.get(RoomSession, session_id)).close_reason == "荒れてしまったため"
