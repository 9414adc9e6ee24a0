"""The guidance menu as a LINE user meets it, through the emulator over real HTTP."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import Service, run_service, settle
from sqlmodel import select

from bot.appkeys import SESSIONS
from bot.storage.models import Consultation, ConsultationStatus, OutboxMessage, UserMessage


def quick_labels(message: dict) -> list[str]:
    return [item["action"]["label"] for item in message.get("quickReply", {}).get("items", [])]


async def test_follow_greets_with_the_menu_from_content(service: Service, content) -> None:
    user = service.line.add_user().user_id
    assert await service.line.follow(user) == 200
    [greeting] = await service.line.wait_for_messages(user, 1)
    assert greeting["via"] == "reply"
    # The first greeting carries the privacy notice, with the periods of retention.yaml filled in.
    notice = content.messages.privacy_notice.format(**content.retention.model_dump())
    assert greeting["message"]["text"] == f"{content.menu.greeting}\n\n{notice}"
    assert f"{content.retention.consultation_text_days}日" in notice and "わたしの記録" in notice
    expected = [c.label for c in content.menu.categories] + [link.label for link in content.menu.links]
    assert quick_labels(greeting["message"]) == expected + ["English"]
    # Shown once: after blocking and unblocking, the greeting comes alone.
    await service.line.unfollow(user)
    await service.line.follow(user)
    [_, again] = await service.line.wait_for_messages(user, 2)
    assert again["message"]["text"] == content.menu.greeting


async def test_choosing_a_category_records_it_with_what_was_typed_before(service: Service, content) -> None:
    line = service.line
    user = line.add_user().user_id
    # A friend from before the bot kept records: their first message is greeted like a follow.
    line.add_user(user).following = True
    await line.send_text(user, "最近ずっと眠れなくて")
    [greeting] = await line.wait_for_messages(user, 1)
    assert greeting["message"]["text"].startswith(content.menu.greeting)
    await line.send_postback(user, "a=category&id=suicidal", "死にたいほどつらい気持ち")
    replies = await line.wait_for_messages(user, 3)
    accepted = replies[1]["message"]["text"]
    assert accepted.startswith(content.menu.category("suicidal").accepted)
    assert "119" in accepted and "0120-279-338" in accepted  # emergency numbers and a 24-hour line
    assert replies[2]["via"] == "loading"
    await line.send_text(user, "まだ起きてる")  # within a burst: kept, not answered again
    await settle(service)
    async with service.app[SESSIONS]() as session:
        [consultation] = list(await session.exec(select(Consultation)))
        texts = [m.text for m in await session.exec(select(UserMessage).where(UserMessage.consultation_id == consultation.id))]
    assert consultation.category == "suicidal" and consultation.status == ConsultationStatus.REQUESTED
    assert texts == ["最近ずっと眠れなくて", "まだ起きてる"]
    assert len(line.messages_for(user)) == 3


async def test_menu_keyword_reopens_the_menu(service: Service, content) -> None:
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await service.line.send_text(user, "メニュー")
    messages = await service.line.wait_for_messages(user, 2)
    assert messages[1]["message"]["text"] == content.menu.prompt
    assert len(quick_labels(messages[1]["message"])) == len(content.menu.categories) + len(content.menu.links) + len(content.translations)


async def test_unknown_or_tampered_postback_reshows_the_menu(service: Service, content) -> None:
    user = service.line.add_user().user_id
    await service.line.follow(user)
    for data in ("a=category&id=nonexistent", "a=category&id=suicidal&admin=1", "x" * 300):
        await service.line.send_postback(user, data)
    messages = await service.line.wait_for_messages(user, 4)
    assert [m["message"]["text"] for m in messages[1:]] == [content.messages.unknown_choice] * 3
    async with service.app[SESSIONS]() as session:
        assert list(await session.exec(select(Consultation))) == []


async def test_stickers_images_and_files_get_a_kind_answer(service: Service, content) -> None:
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.send_sticker(user)
    await line.send_image(user)
    await line.send_events([line.event("message", user, message={"id": "f1", "type": "file", "fileName": "a.pdf", "fileSize": 10})])
    messages = await line.wait_for_messages(user, 4)
    assert [m["message"]["text"] for m in messages[1:]] == [
        content.messages.received_sticker,
        content.messages.received_image,
        content.messages.received_media,
    ]
    assert all(quick_labels(m["message"]) for m in messages[1:]), "the menu stays one tap away"


async def test_ibasho_link_asks_the_age_band_once(service: Service, content) -> None:
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await service.line.send_postback(user, "a=link&id=ibasho")
    messages = await service.line.wait_for_messages(user, 2)
    assert messages[1]["message"]["text"] == content.rooms.words.ask_age_band
    assert quick_labels(messages[1]["message"]) == [band.label for band in content.rooms.age_bands]
    await service.line.send_postback(user, "a=band&id=age30_plus")
    await service.line.send_postback(user, "a=link&id=ibasho")
    await settle(service)
    asked = [m for m in service.line.messages_for(user) if m["message"].get("text") == content.rooms.words.ask_age_band]
    assert len(asked) == 1


async def test_out_of_hours_request_is_recorded_and_offers_24_hour_lines(service: Service, content) -> None:
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.wait_for_messages(user, 1)
    sunday_night = datetime(2026, 11, 22, 3, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    event = line.event("postback", user, postback={"data": "a=category&id=foreign"})
    event["timestamp"] = int(sunday_night.timestamp() * 1000)
    await line.send_events([event])
    messages = await line.wait_for_messages(user, 2)
    text = messages[1]["message"]["text"]
    assert "受付時間外" in text and "平日 10:00〜17:00" in text
    assert "0120-279-338" in text, "a 24-hour crisis line is offered"
    assert "https://www.moj.go.jp/isa/guidebook_all.html" not in text, "a web page is not a line open now"
    assert "0120-007-110" not in text, "a line closed on Sunday night is not offered"
    assert messages[1]["via"] == "push", "the event is old, so its reply token is not trusted"
    async with service.app[SESSIONS]() as session:
        [consultation] = list(await session.exec(select(Consultation)))
    assert consultation.status == ConsultationStatus.UNSERVED and not consultation.arrived_in_hours


@pytest.mark.parametrize(
    ("language", "words", "crisis_label"),
    [("ja", "死にたい。毎日死ぬことばかり考えてる", "死にたいほどつらい気持ち"), ("en", "I want to die. I think about killing myself every day", "Thoughts of suicide")],
)
async def test_a_person_at_high_risk_who_chooses_a_closed_category_is_offered_the_24_hour_one(
    database_url: str, content, language: str, words: str, crisis_label: str
) -> None:
    async with run_service(database_url, content) as service:
        line = service.line
        at_risk, calm = line.add_user().user_id, line.add_user().user_id
        for user, text in ((at_risk, words), (calm, "最近ずっと眠れなくて")):
            await line.follow(user)
            await line.send_postback(user, f"a=lang&id={language}")
            await line.send_text(user, text)
        await settle(service)
        sunday_night = datetime(2026, 11, 22, 3, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
        for user in (at_risk, calm):
            event = line.event("postback", user, postback={"data": "a=category&id=foreign"})
            event["timestamp"] = int(sunday_night.timestamp() * 1000)
            await line.send_events([event])
        await settle(service)
        offered, not_offered = (line.messages_for(user)[-1]["message"] for user in (at_risk, calm))
    words = content.in_language(language).messages
    offer = words.crisis_offer.format(category=crisis_label)
    assert offer in offered["text"] and quick_labels(offered)[0] == crisis_label, "the open 24-hour category comes first"
    assert offered["text"].startswith(words.out_of_hours.split("{")[0]), "in the same answer as the closed notice"
    assert offer not in not_offered["text"] and quick_labels(not_offered)[0] != crisis_label


async def test_unsend_deletes_the_stored_text(service: Service) -> None:
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.send_text(user, "やっぱり消したい")
    message_id = line.add_user(user).timeline[-1]["message"]["id"]
    await line.unsend(user, message_id)
    await settle(service)
    async with service.app[SESSIONS]() as session:
        [stored] = list(await session.exec(select(UserMessage)))
    assert stored.text is None and stored.unsent_at is not None


async def test_unfollow_stops_all_sending(service: Service) -> None:
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.wait_for_messages(user, 1)
    line.fail("reply", 500, times=1)  # the next answer has to wait for a retry...
    await line.send_text(user, "メニュー")
    await line.unfollow(user)  # ...and the person blocks the bot meanwhile
    await settle(service)
    async with service.app[SESSIONS]() as session:
        rows = list(await session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert rows[-1].status == "cancelled"
    assert len(line.messages_for(user)) == 1
