"""Unsend and deletion mean gone: from every table, with the report's counts unchanged."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

from conftest import REPO, TSUNAGI, run_service, settle
from rooms.test_rooms import enter, participant, say, scheduled_session, wait_for_status
from sqlmodel import select
from traces import everything, report, simulated_period_with_words

from bot.appkeys import HUB, SESSIONS
from bot.privacy.erasure import export_person, forget_person, forget_unsent
from bot.rooms.participants import relayed
from bot.storage.db import create_engine, session_factory
from bot.storage.models import (
    AuditEntry,
    Consultation,
    ConsultationStatus,
    EmergencyResponse,
    LineUser,
    OutboxMessage,
    OutboxStatus,
    RiskFlag,
    RoomMessage,
    RoomParticipant,
    RoomSession,
    RoomSessionStatus,
    UserMessage,
    utcnow,
)

WORRY = "もう消えたいと思う夜がある"


def last_message_id(service, user: str) -> str:
    return [entry for entry in service.line.add_user(user).timeline if entry["from"] == "user" and "id" in entry.get("message", {})][-1]["message"]["id"]


def drain(topics: asyncio.Queue[str]) -> set[str]:
    seen = set()
    while not topics.empty():
        seen.add(topics.get_nowait())
    return seen


async def test_an_unsent_message_is_gone_from_every_table_and_the_console_hears_it(database_url: str, content) -> None:
    async with run_service(database_url, content) as service:
        session_id = await scheduled_session(service)
        await wait_for_status(service, session_id, RoomSessionStatus.OPEN)
        a, b = await enter(service, session_id), await enter(service, session_id)
        await say(service, a, WORRY)
        nickname = (await participant(service, session_id, a)).nickname
        assert service.line.messages_for(b)[-1]["message"]["text"] == relayed(nickname, WORRY)
        in_room = last_message_id(service, a)
        # Someone else, in a consultation, writes the same worry.
        c = service.line.add_user().user_id
        await service.line.follow(c)
        await service.line.send_postback(c, "a=category&id=suicidal")
        await service.line.send_text(c, WORRY)
        await settle(service)
        in_chat = last_message_id(service, c)
        async with service.app[SESSIONS]() as session:
            held = await everything(session)
            [consultation] = list(await session.exec(select(Consultation)))
            assert len(list(await session.exec(select(RiskFlag)))) == 2
        # Both messages and the room's transcript held it; both flags quote the words that raised them.
        assert held.count(WORRY) == 3 and held.count("消えたい") == 5

        async with service.app[HUB].listen() as topics:
            await service.line.unsend(a, in_room)
            await service.line.unsend(c, in_chat)
            await settle(service)
            await asyncio.sleep(0.2)  # on PostgreSQL the topics arrive through LISTEN
            heard = drain(topics)
        async with service.app[SESSIONS]() as session:
            assert WORRY not in await everything(session)
            assert "消えたい" not in await everything(session)
            unsent = list(await session.exec(select(UserMessage).where(UserMessage.unsent_at.is_not(None))))
            assert len(unsent) == 2, "that they were sent stays"
            assert len(list(await session.exec(select(RiskFlag)))) == 2, "the flags stay, for the counts"
        assert {f"room:{session_id}", "flags", f"consultation:{consultation.id}"} <= heard


async def test_a_relayed_line_not_yet_sent_is_withdrawn(engine) -> None:
    now = utcnow()
    async with session_factory(engine)() as session:
        room = RoomSession(room_id="young_adult_night", starts_at=now, ends_at=now, status=RoomSessionStatus.OPEN)
        session.add(room)
        await session.flush()
        person = RoomParticipant(session_id=room.id, user_id="U" + "a" * 32, nickname="そら")
        message = UserMessage(user_id=person.user_id, line_message_id="42", kind="text", text=WORRY, sent_at=now)
        session.add_all([person, message])
        await session.flush()
        session.add(RoomMessage(session_id=room.id, participant_id=person.id, user_message_id=message.id, kind="text", text=WORRY))
        other = {"type": "text", "text": "ほかの人: こんばんは"}
        mixed = OutboxMessage(to=f"room:{room.id}", recipients=["U" + "b" * 32], messages=[{"type": "text", "text": relayed("そら", WORRY)}, other])
        alone = OutboxMessage(to=f"room:{room.id}", recipients=["U" + "c" * 32], messages=[{"type": "text", "text": relayed("そら", WORRY)}])
        session.add_all([mixed, alone])
        await session.commit()
        await forget_unsent(session, person.user_id, "42")
        await session.commit()
        assert WORRY not in await everything(session)
        await session.refresh(mixed)
        await session.refresh(alone)
    assert mixed.messages == [other] and mixed.status == OutboxStatus.PENDING
    assert alone.messages == [] and alone.status == OutboxStatus.CANCELLED


async def test_forget_leaves_no_trace_of_the_person_and_the_report_is_unchanged(database_url: str, content) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    async with sessions() as session:
        await simulated_period_with_words(session, content)
    async with sessions() as session:
        before = await report(session)
        ended = (await session.exec(select(Consultation).where(Consultation.status == ConsultationStatus.ENDED))).first()
        regular = (await session.exec(select(RoomParticipant))).first()
        session.expunge(regular)  # as it was before: the deletion rewrites the row
        people = {ended.user_id: f"相談者の言葉{ended.id}。", regular.user_id: f"居場所での言葉{regular.id}。"}
        for user_id, words in people.items():
            disclosed = json.dumps(await export_person(session, user_id, asked_by="test"), ensure_ascii=False)
            assert words in disclosed
        assert f"記録票の自由記述{ended.id}。" in disclosed or f"相談員の返事{ended.id}。" in json.dumps(await export_person(session, ended.user_id, asked_by="test"), ensure_ascii=False)
        for user_id in people:
            await forget_person(session, user_id, asked_by="test")
        await session.commit()
    async with sessions() as session:
        after = await everything(session)
        assert await report(session) == before
        actions = [entry.action for entry in await session.exec(select(AuditEntry))]
    for user_id, words in people.items():
        assert user_id not in after and words not in after
    for gone in (f"相談員の返事{ended.id}。", f"相談員のメモ{ended.id}。", f"記録票の自由記述{ended.id}。"):
        assert gone not in after
    assert f"roomparticipant: ({regular.id}, {regular.session_id}, 'forgotten-" in after
    assert f"'#{regular.id}'" in after, "a nickname may be a real name: it became the participation's number"
    assert "相談者の言葉" in after, "everyone else's words are untouched"
    assert actions.count("person_forgotten") == 2 and actions.count("person_exported") == 3
    await engine.dispose()


async def test_on_line_my_records_shows_what_is_kept_and_deletes_only_when_nothing_is_open(database_url: str, content) -> None:
    words = content.messages
    async with run_service(database_url, content) as service:
        line = service.line
        user = line.add_user().user_id
        await line.follow(user)
        await line.send_postback(user, "a=category&id=suicidal")  # open 24 hours
        await line.send_text(user, "ひとりでいるのがつらい")
        await line.send_postback(user, "a=link&id=records")
        await settle(service)
        summary = line.messages_for(user)[-1]["message"]
        assert summary["text"].startswith(words.records_intro)
        assert words.records_messages.format(count=1) in summary["text"] and words.records_consultations.format(count=1) in summary["text"]
        assert [item["action"]["label"] for item in summary["quickReply"]["items"]] == [words.records_forget_label]

        await line.send_postback(user, "a=mine&do=ask")
        await settle(service)
        assert line.messages_for(user)[-1]["message"]["text"] == words.records_refused_open

        await line.send_postback(user, "a=queue&do=cancel")
        await settle(service)
        async with service.app[SESSIONS]() as session:
            [consultation] = list(await session.exec(select(Consultation)))
            emergency = EmergencyResponse(consultation_id=consultation.id, opened_by=(await _staff(session)).id)
            session.add(emergency)
            await session.commit()
        await line.send_postback(user, "a=mine&do=ask")
        await settle(service)
        assert line.messages_for(user)[-1]["message"]["text"] == words.records_refused_emergency
        async with service.app[SESSIONS]() as session:
            emergency = await session.get(EmergencyResponse, emergency.id)
            emergency.closed_at = utcnow()
            session.add(emergency)
            await session.commit()

        await line.send_postback(user, "a=mine&do=ask")
        await settle(service)
        question = line.messages_for(user)[-1]["message"]
        assert question["text"] == words.records_forget_question
        await line.send_postback(user, "a=mine&do=keep")
        await settle(service)
        assert line.messages_for(user)[-1]["message"]["text"] == words.records_kept
        async with service.app[SESSIONS]() as session:
            assert await session.get(LineUser, user) is not None

        await line.send_postback(user, "a=mine&do=ask")
        await line.send_postback(user, "a=mine&do=forget")
        await settle(service)
        assert line.messages_for(user)[-1]["message"]["text"] == words.records_forgotten
        async with service.app[SESSIONS]() as session:
            kept = await everything(session)
            sent_to_them = list(await session.exec(select(OutboxMessage).where(OutboxMessage.to == user)))
            [consultation] = list(await session.exec(select(Consultation)))
        # Only the address of what was sent to them stays, without words, until sent messages are deleted.
        assert all(row.status == OutboxStatus.SENT and row.messages == [] for row in sent_to_them)
        assert user not in "\n".join(line for line in kept.splitlines() if not line.startswith("outboxmessage:"))
        assert "ひとりでいるのがつらい" not in kept
        assert consultation.status == ConsultationStatus.CANCELLED and consultation.category == "suicidal", "the count stays"


async def _staff(session):
    from bot.consultation.staff import add_staff
    from bot.storage.models import StaffRole

    return await add_staff(session, "supervisor", "correct horse battery", StaffRole.SUPERVISOR)


def test_the_operator_commands_export_and_forget_a_person_and_both_are_audited(tmp_path: Path, sqlite_url: str) -> None:
    user = "U" + "1" * 32
    env = {**os.environ, "DATABASE_URL": sqlite_url, "CONTENT_DIR": str(REPO / "content")}

    async def person() -> None:
        engine = create_engine(sqlite_url)
        async with session_factory(engine)() as session:
            session.add(LineUser(user_id=user, school_year="high1"))
            session.add(UserMessage(user_id=user, line_message_id="7", kind="text", text="開示してほしい言葉", sent_at=utcnow()))
            await session.commit()
        await engine.dispose()

    asyncio.run(person())
    exported = subprocess.run([TSUNAGI, "person", "export", user], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert data["person"]["school_year"] == "high1" and data["messages"][0]["text"] == "開示してほしい言葉"
    forgotten = subprocess.run([TSUNAGI, "person", "forget", user], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert forgotten.returncode == 0, forgotten.stderr
    again = json.loads(subprocess.run([TSUNAGI, "person", "export", user], env=env, capture_output=True, text=True, timeout=120, check=False).stdout)
    assert again["person"] is None and again["messages"] == []

    async def audit() -> list[str]:
        engine = create_engine(sqlite_url)
        async with session_factory(engine)() as session:
            actions = [entry.action for entry in await session.exec(select(AuditEntry).order_by(AuditEntry.id))]
        await engine.dispose()
        return actions

    assert asyncio.run(audit()) == ["person_exported", "person_forgotten", "person_exported"]


async def test_my_records_speaks_the_persons_language(service, content) -> None:
    english = content.in_language("en").messages
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await service.line.send_postback(user, "a=lang&id=en")
    await service.line.send_postback(user, "a=link&id=records")
    await settle(service)
    [*_, language_chosen, summary] = service.line.messages_for(user)
    assert "My records" in [item["action"]["label"] for item in language_chosen["message"]["quickReply"]["items"]]
    assert summary["message"]["text"].startswith(english.records_intro)
    assert english.records_settings.format(settings="English") in summary["message"]["text"]
    assert f"{content.retention.consultation_text_days} days after your consultation ends" in summary["message"]["text"]
