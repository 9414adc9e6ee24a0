"""Risk screening in the service: queue order, the safety message, live alerts, moderator review, export."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime
from zoneinfo import ZoneInfo

from conftest import TSUNAGI, Service, add_account, run_service, settle
from sqlmodel import select
from test_live import hear, topics

from bot.appkeys import SESSIONS
from bot.consultation.queue import waiting
from bot.storage.models import AuditEntry, Consultation, EmergencyResponse, FlagState, RiskFlag, RiskLevel, StaffRole


async def waiting_person(service: Service, category: str = "suicidal") -> str:
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await service.line.send_postback(user, f"a=category&id={category}")
    await settle(service)
    return user


async def test_an_imminent_message_jumps_the_queue_answers_at_once_and_alerts_live(service: Service, console, content) -> None:
    first = await waiting_person(service)
    second = await waiting_person(service)
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    supervisor = console()
    await supervisor.login("boss")
    async with topics(supervisor) as heard:
        await service.line.send_text(second, "もう無理。今から飛び降りる")
        await hear(heard, "alerts")
    await settle(service)
    safety = service.line.messages_for(second)[-1]["message"]["text"]
    assert safety.startswith(content.messages.imminent_safety) and "119" in safety and "0120-279-338" in safety
    async with service.app[SESSIONS]() as session:
        order = [c.user_id for c in await waiting(session)]
        [flag] = list(await session.exec(select(RiskFlag)))
    assert order == [second, first], "the person in danger is served first although they came later"
    assert flag.level == RiskLevel.IMMINENT and flag.source == "lexicon (model unavailable)"
    _, page = await supervisor.get("/console/supervisor/live")
    assert "リスク判定モデルが使えません" in page, "supervisors see that only the keyword floor is screening"
    alerts = page.split('class="list alerts"')[1].split("</ul>")[0]
    assert "level-imminent" in alerts and "緊急対応記録" in alerts


async def test_imminent_before_choosing_opens_a_crisis_consultation(service: Service, content) -> None:
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await service.line.send_text(user, "薬を全部飲んだ")
    await settle(service)
    async with service.app[SESSIONS]() as session:
        [consultation] = list(await session.exec(select(Consultation)))
    assert (consultation.category, consultation.risk_level) == (content.menu.crisis_category, RiskLevel.IMMINENT)
    assert consultation.escalated_at is not None


async def test_what_was_written_before_choosing_carries_its_level_into_the_queue(database_url: str, content) -> None:
    async with run_service(database_url, content) as service:
        user = service.line.add_user().user_id
        await service.line.follow(user)
        await service.line.send_text(user, "死にたい。毎日死ぬことばかり考えてる")
        await settle(service)
        await service.line.send_postback(user, "a=category&id=suicidal")
        await settle(service)
        async with service.app[SESSIONS]() as session:
            [consultation] = await waiting(session)
            [flag] = list(await session.exec(select(RiskFlag)))
    assert consultation.user_id == user and consultation.category == "suicidal"
    assert consultation.risk_level == RiskLevel.HIGH, "the level of the first words reaches the queue"
    assert flag.consultation_id == consultation.id, "the earlier flag belongs to the consultation it raised"


async def test_a_category_with_a_risk_floor_starts_there_and_others_start_low(database_url: str, content) -> None:
    assert content.menu.category("suicidal").risk_floor == "medium"
    async with run_service(database_url, content) as service:
        chose_suicidal, chose_other = service.line.add_user().user_id, service.line.add_user().user_id
        # A Tuesday afternoon, when every category is open.
        in_hours = datetime(2026, 11, 24, 14, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
        for user, category in ((chose_suicidal, "suicidal"), (chose_other, "other")):
            await service.line.follow(user)
            event = service.line.event("postback", user, postback={"data": f"a=category&id={category}"})
            event["timestamp"] = int(in_hours.timestamp() * 1000)
            await service.line.send_events([event])
        await settle(service)
        async with service.app[SESSIONS]() as session:
            levels = {c.user_id: c.risk_level for c in await waiting(session)}
    assert levels == {chose_suicidal: RiskLevel.MEDIUM, chose_other: RiskLevel.LOW}


async def test_hyperbole_is_not_flagged_and_a_level_never_drops(service: Service) -> None:
    user = await waiting_person(service)
    await service.line.send_text(user, "消えたい")
    await service.line.send_text(user, "テスト死んだ笑 推しが尊すぎて死ねる")
    await settle(service)
    async with service.app[SESSIONS]() as session:
        flags = list(await session.exec(select(RiskFlag)))
        [consultation] = list(await session.exec(select(Consultation)))
    assert [f.level for f in flags] == [RiskLevel.MEDIUM]
    assert consultation.risk_level == RiskLevel.MEDIUM


async def test_moderators_review_flags_in_context_and_the_export_has_them(service: Service, console, sqlite_url: str, tmp_path) -> None:
    user = await waiting_person(service)
    await service.line.send_text(user, "眠れない日が続いてる")
    await service.line.send_text(user, "リスカしちゃった")
    await service.line.send_text(user, "首吊りのロープ買った")
    await settle(service)
    await add_account(service, "mod", StaffRole.MODERATOR)
    moderator = console()
    await moderator.login("mod")
    status, page = await moderator.get("/console/flags")
    assert status == 200 and "眠れない日が続いてる" in page, "each flag is shown with the messages around it"
    async with service.app[SESSIONS]() as session:
        flags = {f.id: f for f in await session.exec(select(RiskFlag))}
    first, second = sorted(flags)
    assert (await moderator.post(f"/console/flags/{first}/review", {"decision": "dismiss"}))[0] == 400, "a dismissal needs a reason"
    assert (await moderator.post(f"/console/flags/{first}/review", {"decision": "relabel", "level": "medium", "reason": "過去のこと"}))[0] == 303
    assert (await moderator.post(f"/console/flags/{second}/review", {"decision": "confirm"}))[0] == 303
    _, filtered = await moderator.get("/console/flags?state=open")
    assert "該当するフラグはありません" in filtered
    async with service.app[SESSIONS]() as session:
        reviewed = {f.id: f for f in await session.exec(select(RiskFlag))}
        audit = [a.action for a in await session.exec(select(AuditEntry))]
    assert reviewed[first].state == FlagState.RELABELLED and reviewed[first].reviewed_level == RiskLevel.MEDIUM
    assert reviewed[second].state == FlagState.CONFIRMED
    assert "flag_relabelled" in audit and "flag_confirmed" in audit
    out = tmp_path / "reviewed.jsonl"
    export = await asyncio.create_subprocess_exec(
        TSUNAGI, "risk", "export-reviews", "--out", str(out), env={**os.environ, "DATABASE_URL": sqlite_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await export.communicate()
    assert export.returncode == 0, stderr.decode()
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    async with service.app[SESSIONS]() as session:
        [exported] = list(await session.exec(select(AuditEntry).where(AuditEntry.action == "exported_reviews")))
    assert exported.detail.startswith("2 example(s)"), "people's words leaving the database are audited"
    assert {(e["text"], e["level"]) for e in lines} == {("リスカしちゃった", "medium"), ("首吊りのロープ買った", str(reviewed[second].level))}


async def test_a_counselor_reports_a_missed_risk(service: Service, console) -> None:
    user = await waiting_person(service)
    await add_account(service, "aoi")
    counselor = console()
    await counselor.login("aoi")
    async with service.app[SESSIONS]() as session:
        [consultation] = list(await session.exec(select(Consultation)))
    await counselor.post(f"/console/c/{consultation.id}/take")
    await service.line.send_text(user, "もう全部どうでもいいかな、今日で終わりにする")
    await settle(service)
    _, page = await counselor.get(f"/console/c/{consultation.id}/live")
    message_id = page.split("/console/messages/")[1].split("/")[0]
    status, _, _ = await counselor.post(f"/console/messages/{message_id}/report", {"level": "imminent", "reason": "今日で終わり＝時期"})
    assert status == 303
    async with service.app[SESSIONS]() as session:
        reported = (await session.exec(select(RiskFlag).where(RiskFlag.source == "counselor report"))).one()
        raised = await session.get(Consultation, consultation.id)
    assert reported.level == RiskLevel.IMMINENT and raised.risk_level == RiskLevel.IMMINENT
    other = console()
    await add_account(service, "midori")
    await other.login("midori")
    assert (await other.post(f"/console/messages/{message_id}/report", {"level": "high"}))[0] == 404


async def test_supervisors_keep_an_emergency_response_record(service: Service, console) -> None:
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await service.line.send_text(user, "今殴られてる")
    await settle(service)
    async with service.app[SESSIONS]() as session:
        [consultation] = list(await session.exec(select(Consultation)))
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    await add_account(service, "aoi")
    supervisor, counselor = console(), console()
    await supervisor.login("boss")
    await counselor.login("aoi")
    assert (await counselor.get(f"/console/c/{consultation.id}/emergency"))[0] == 403
    path = f"/console/c/{consultation.id}/emergency"
    await supervisor.get(path)
    form = {"thoughts": "ある", "plan": "なし", "means": "なし", "timeframe": "今", "contact_who": "110", "contact_reached": "yes", "contact_note": "住所を伝えた"}
    assert (await supervisor.post(path, form))[0] == 303
    assert (await supervisor.post(path, {**form, "contact_who": "", "closing_note": "警察が保護"}))[0] == 303
    async with service.app[SESSIONS]() as session:
        record = (await session.exec(select(EmergencyResponse))).one()
        audit = [a.action for a in await session.exec(select(AuditEntry).where(AuditEntry.consultation_id == consultation.id))]
    assert record.assessment["timeframe"] == "今" and [c["who"] for c in record.contacts] == ["110"] and record.contacts[0]["reached"]
    assert record.closing_note == "警察が保護" and record.closed_at is not None
    assert audit.count("saved_emergency_record") == 2 and "opened_emergency_record" in audit
