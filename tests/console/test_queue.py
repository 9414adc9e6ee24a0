"""The consultation queue through the console and LINE, over real HTTP: order, taking, chatting, ending."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from conftest import Service, add_account, settle
from sqlmodel import select

from bot.appkeys import CONTENT, SESSIONS
from bot.consultation.queue import priority, sweep
from bot.storage.models import AuditEntry, Consultation, ConsultationStatus, RiskLevel, StaffRole, utcnow


async def person_waiting(service: Service, category: str = "suicidal") -> tuple[str, int]:
    """A LINE user who followed and chose a category; returns their id and the consultation's."""
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.send_postback(user, f"a=category&id={category}")
    await settle(service)
    async with service.app[SESSIONS]() as session:
        consultation = (await session.exec(select(Consultation).where(Consultation.user_id == user))).one()
    return user, consultation.id


async def load(service: Service, consultation_id: int) -> Consultation:
    async with service.app[SESSIONS]() as session:
        return await session.get(Consultation, consultation_id)


def texts_for(service: Service, user: str) -> list[str]:
    return [m["message"].get("text", "") for m in service.line.messages_for(user) if m["via"] != "loading"]


def test_order_is_imminent_first_then_head_start_plus_waiting() -> None:
    now = utcnow()

    def waiting(level: RiskLevel, minutes: float) -> Consultation:
        return Consultation(user_id="U", category="c", arrived_in_hours=True, risk_level=level, queued_at=now - timedelta(minutes=minutes))

    fresh_imminent, old_low = waiting(RiskLevel.IMMINENT, 0), waiting(RiskLevel.LOW, 600)
    fresh_medium, fresh_high = waiting(RiskLevel.MEDIUM, 0), waiting(RiskLevel.HIGH, 0)
    assert priority(fresh_imminent, now) > priority(old_low, now), "imminent is first whatever the others waited"
    assert priority(fresh_high, now) > priority(fresh_medium, now) > priority(waiting(RiskLevel.LOW, 1), now)
    assert priority(waiting(RiskLevel.LOW, 25), now) > priority(fresh_medium, now), "a low-risk person is not starved"


async def test_a_person_is_told_their_place_then_meets_a_counselor(service: Service, console, content) -> None:
    user, consultation_id = await person_waiting(service)
    accepted = texts_for(service, user)[-1]
    assert "1 番目" in accepted and "まだわかりません" in accepted and "119" in accepted
    last = service.line.messages_for(user)[-2]["message"]  # before the loading animation
    assert [i["action"]["label"] for i in last["quickReply"]["items"]] == ["順番を確認", "キャンセル"]
    # A second person waits behind; checking their place says so, without a push to anyone else.
    second, _ = await person_waiting(service)
    await service.line.send_postback(second, "a=queue&do=status")
    await settle(service)
    assert "2 番目" in texts_for(service, second)[-1]

    await add_account(service, "aoi")
    counselor = console()
    await counselor.login("aoi")
    status, page = await counselor.get("/console/queue/live")
    assert status == 200 and f'data-consultation="{consultation_id}"' in page
    status, _, location = await counselor.post(f"/console/c/{consultation_id}/take")
    assert (status, location) == (303, f"/console/c/{consultation_id}")
    await settle(service)
    assert texts_for(service, user)[-1].startswith("相談員の aoiさん です。")
    status, _, _ = await counselor.post(f"/console/c/{consultation_id}/send", {"text": "こんばんは。話してくれてありがとう。"})
    assert status == 303
    await settle(service)
    pushed = service.line.messages_for(user)[-1]
    assert (pushed["via"], pushed["message"]["text"]) == ("push", "こんばんは。話してくれてありがとう。")
    # While with a counselor the bot stays quiet: the person's words go to the console only.
    before = len(service.line.messages_for(user))
    await service.line.send_text(user, "<script>alert(1)</script>眠れない")
    await settle(service)
    assert len(service.line.messages_for(user)) == before
    _, fragment = await counselor.get(f"/console/c/{consultation_id}/live")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;眠れない" in fragment and "<script>" not in fragment
    # The end: a closing message and the one-tap question; the answer is kept.
    status, _, location = await counselor.post(f"/console/c/{consultation_id}/end")
    assert (status, location) == (303, f"/console/c/{consultation_id}/record")
    await settle(service)
    question = service.line.messages_for(user)[-1]["message"]
    assert question["text"] == content.messages.helped_question
    await service.line.send_postback(user, question["quickReply"]["items"][0]["action"]["data"])
    await settle(service)
    ended = await load(service, consultation_id)
    assert ended.status == ConsultationStatus.ENDED and ended.helped is True
    assert texts_for(service, user)[-1] == content.messages.helped_thanks


async def test_twenty_simultaneous_takes_give_it_to_one(service: Service, console) -> None:
    _, consultation_id = await person_waiting(service)
    clients = []
    for n in range(20):
        await add_account(service, f"c{n}")
        clients.append(console())
        await clients[-1].login(f"c{n}")
    results = await asyncio.gather(*(c.post(f"/console/c/{consultation_id}/take") for c in clients))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [303] + [409] * 19
    winner = next(i for i, (status, _, _) in enumerate(results) if status == 303)
    assert "ほかの相談員が対応を始めた" in next(body for status, body, _ in results if status == 409)
    taken = await load(service, consultation_id)
    async with service.app[SESSIONS]() as session:
        from bot.storage.models import StaffUser

        holder = await session.get(StaffUser, taken.counselor_id)
    assert taken.status == ConsultationStatus.ACTIVE and holder.login == f"c{winner}"


async def test_a_counselor_cannot_open_another_counselors_consultation(service: Service, console) -> None:
    _, consultation_id = await person_waiting(service)
    await add_account(service, "holder")
    await add_account(service, "other")
    holder, other = console(), console()
    await holder.login("holder")
    await other.login("other")
    await holder.post(f"/console/c/{consultation_id}/take")
    for path in (f"/console/c/{consultation_id}", f"/console/c/{consultation_id}/live"):
        status, body = await other.get(path)
        assert status == 404 and "眠れない" not in body
    status, _, _ = await other.post(f"/console/c/{consultation_id}/send", {"text": "なりすまし"})
    assert status == 404
    assert (await holder.get(f"/console/c/{consultation_id}"))[0] == 200
    async with service.app[SESSIONS]() as session:
        opened = list(await session.exec(select(AuditEntry).where(AuditEntry.action == "opened_consultation")))
    assert [(a.consultation_id, a.staff_id is not None) for a in opened] == [(consultation_id, True)]


async def test_capacity_cancel_offline_and_transfer(service: Service, console, content) -> None:
    first_user, first = await person_waiting(service)
    second_user, second = await person_waiting(service)
    await add_account(service, "solo", max_chats=1)
    solo = console()
    await solo.login("solo")
    assert (await solo.post(f"/console/c/{first}/take"))[0] == 303
    status, body, _ = await solo.post(f"/console/c/{second}/take")
    assert status == 409 and "1 件まで" in body
    # The second person cancels while waiting: out of the queue, told so.
    await service.line.send_postback(second_user, "a=queue&do=cancel")
    await settle(service)
    assert (await load(service, second)).status == ConsultationStatus.CANCELLED
    assert texts_for(service, second_user)[-1] == content.messages.queue_cancelled
    # Going offline with a chat open puts it back in line, at its old place.
    assert (await solo.post("/console/availability", {"availability": "offline"}))[0] == 303
    back = await load(service, first)
    assert back.status == ConsultationStatus.REQUESTED and back.counselor_id is None
    # Transfer: to another counselor keeps it active; to a category puts it back in that queue.
    await solo.post("/console/availability", {"availability": "available"})
    await solo.post(f"/console/c/{first}/take")
    other = await add_account(service, "midori")
    assert (await solo.post(f"/console/c/{first}/transfer", {"to": f"counselor:{other.id}", "note": "夜勤に引き継ぎ"}))[0] == 303
    assert (await load(service, first)).counselor_id == other.id
    midori = console()
    await midori.login("midori")
    assert (await midori.post(f"/console/c/{first}/transfer", {"to": "category:nowhere"}))[0] == 400
    assert (await midori.post(f"/console/c/{first}/transfer", {"to": "category:loneliness", "note": ""}))[0] == 303
    moved = await load(service, first)
    assert (moved.status, moved.category, moved.counselor_id) == (ConsultationStatus.REQUESTED, "loneliness", None)
    assert (await midori.post(f"/console/c/{first}/send", {"text": "まだいますか"}))[0] == 404, "no longer hers"


async def test_silence_closes_a_chat_kindly_but_escalates_high_risk(service: Service, console, content) -> None:
    quiet_user, quiet = await person_waiting(service)
    _, serious = await person_waiting(service)
    _, waiting_serious = await person_waiting(service)
    await add_account(service, "aoi")
    counselor = console()
    await counselor.login("aoi")
    await counselor.post(f"/console/c/{quiet}/take")
    await counselor.post(f"/console/c/{serious}/take")
    async with service.app[SESSIONS]() as session:
        for consultation_id in (serious, waiting_serious):
            row = await session.get(Consultation, consultation_id)
            row.risk_level = RiskLevel.HIGH
            row.taken_at = row.taken_at and row.taken_at - timedelta(hours=1)
            row.queued_at -= timedelta(hours=1)
            session.add(row)
        row = await session.get(Consultation, quiet)
        row.taken_at -= timedelta(hours=1)
        session.add(row)
        await session.commit()
    async with service.app[SESSIONS]() as session:
        await sweep(session, service.app[CONTENT], timedelta(minutes=30), timedelta(minutes=2))
        await session.commit()
    await settle(service)
    assert (await load(service, quiet)).status == ConsultationStatus.CLOSED_IDLE
    assert texts_for(service, quiet_user)[-1] == content.messages.consultation_idle_closed
    for consultation_id in (serious, waiting_serious):
        escalated = await load(service, consultation_id)
        assert escalated.status in (ConsultationStatus.ACTIVE, ConsultationStatus.REQUESTED)
        assert escalated.escalated_at is not None
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    supervisor = console()
    await supervisor.login("boss")
    _, page = await supervisor.get("/console/supervisor/live")
    assert f"#{serious} " in page and f"#{waiting_serious} " in page and "高リスクで待機中: <strong>1</strong>" in page


async def test_a_supervisor_watches_silently_and_can_take_over(service: Service, console) -> None:
    user, consultation_id = await person_waiting(service)
    await add_account(service, "aoi")
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    counselor, supervisor = console(), console()
    await counselor.login("aoi")
    await supervisor.login("boss")
    await counselor.post(f"/console/c/{consultation_id}/take")
    await settle(service)
    told = len(service.line.messages_for(user))
    status, page = await supervisor.get(f"/console/c/{consultation_id}")
    assert status == 200 and "引き継いで対応する" in page
    await settle(service)
    assert len(service.line.messages_for(user)) == told, "watching sends nothing to the person"
    assert (await supervisor.post(f"/console/c/{consultation_id}/takeover"))[0] == 303
    async with service.app[SESSIONS]() as session:
        [took] = list(await session.exec(select(AuditEntry).where(AuditEntry.action == "took_over")))
    assert took.consultation_id == consultation_id, "a take-over is audited"
    assert (await supervisor.post(f"/console/c/{consultation_id}/send", {"text": "スーパーバイザーです。"}))[0] == 303
    assert (await counselor.post(f"/console/c/{consultation_id}/send", {"text": "まだ私です"}))[0] == 404
    await settle(service)
    assert texts_for(service, user)[-1] == "スーパーバイザーです。"


async def test_control_characters_and_markup_in_a_message_show_literally(service: Service, console) -> None:
    user, consultation_id = await person_waiting(service)
    await add_account(service, "aoi")
    counselor = console()
    await counselor.login("aoi")
    await counselor.post(f"/console/c/{consultation_id}/take")
    await service.line.send_text(user, "a\x1b[31mb\u202ec<b>d</b>")
    await settle(service)
    _, fragment = await counselor.get(f"/console/c/{consultation_id}/live")
    assert "a\\x1b[31mb\\u202ec&lt;b&gt;d&lt;/b&gt;" in fragment
