"""The consultation record (相談記録票) and canned phrases, through the console over real HTTP."""

from __future__ import annotations

from conftest import Console, Service, add_account, held_chat
from sqlmodel import select

from bot.appkeys import SESSIONS
from bot.storage.models import AuditEntry, ConsultationRecord, StaffRole


async def post_fields(client: Console, path: str, fields: list[tuple[str, str]]) -> tuple[int, str, str]:
    """POST a form that repeats names (multi-selects), with the CSRF token."""
    async with client.http.post(client.base_url + path, data=[*fields, ("csrf", client.csrf)], allow_redirects=False) as response:
        return response.status, await response.text(), response.headers.get("Location", "")


async def stored_record(service: Service, consultation_id: int) -> ConsultationRecord | None:
    async with service.app[SESSIONS]() as session:
        return await session.get(ConsultationRecord, consultation_id)


async def test_a_half_filled_record_survives_as_a_draft(service: Service, console, content) -> None:
    _, consultation_id, counselor = await held_chat(service, console)
    status, _, location = await counselor.post(f"/console/c/{consultation_id}/end")
    assert (status, location) == (303, f"/console/c/{consultation_id}/record")
    status, page = await counselor.get(location)
    assert status == 200 and 'href="/console/queue"' in page
    assert all(choice.label in page for choice in content.records.worries + content.records.responses + content.records.age_bands)
    draft = [("age_band", "twenties"), ("worries", "family"), ("worries", "not_an_option"), ("note", "母親との関係で眠れない"), ("action", "draft")]
    status, _, location = await post_fields(counselor, f"/console/c/{consultation_id}/record", draft)
    assert (status, location) == (303, f"/console/c/{consultation_id}/record?saved=draft")
    record = await stored_record(service, consultation_id)
    assert record.filed_at is None and record.age_band == "twenties" and record.worries == ["family"] and record.responses == []
    # Shown again as it was left.
    status, page = await counselor.get(location)
    assert status == 200 and "下書きを保存しました" in page and "母親との関係で眠れない" in page
    assert 'value="twenties" checked' in page and 'value="family" checked' in page and 'value="work" checked' not in page
    async with service.app[SESSIONS]() as session:
        opened = list(await session.exec(select(AuditEntry).where(AuditEntry.action == "opened_record")))
    assert len(opened) == 2 and {a.consultation_id for a in opened} == {consultation_id}


async def test_filing_with_missing_answers_shows_errors_keeps_values_and_saves_a_draft(service: Service, console) -> None:
    _, consultation_id, counselor = await held_chat(service, console)
    await counselor.post(f"/console/c/{consultation_id}/end")
    await counselor.get(f"/console/c/{consultation_id}/record")
    incomplete = [("gender", "unknown"), ("worries", "work"), ("serious", "yes"), ("note", "夜勤が続いている"), ("action", "file")]
    status, page, _ = await post_fields(counselor, f"/console/c/{consultation_id}/record", incomplete)
    assert status == 422
    assert "推定年代を選んでください" in page and "対応の種類を1つ以上選んでください" in page and "相談内容を1つ以上" not in page
    assert 'value="unknown" checked' in page and 'value="work" checked' in page and "夜勤が続いている" in page
    assert 'name="serious" value="yes" checked' in page
    record = await stored_record(service, consultation_id)
    assert record.filed_at is None and record.worries == ["work"] and record.serious, "nothing typed is lost"

    complete = [("age_band", "teens_late"), ("worries", "work"), ("worries", "suicidal"), ("responses", "listening"), ("referral_needed", "yes"), ("action", "file")]
    status, _, location = await post_fields(counselor, f"/console/c/{consultation_id}/record", complete)
    assert location.endswith("?saved=filed")
    filed = await stored_record(service, consultation_id)
    assert filed.filed_at is not None and filed.worries == ["suicidal", "work"] and filed.referral_needed
    _, page = await counselor.get(location)
    assert "提出済み" in page and "下書き保存" not in page and "修正を提出" in page

    # A filed record is corrected only into another complete one.
    status, page, _ = await post_fields(counselor, f"/console/c/{consultation_id}/record", [("age_band", "teens_late"), ("action", "file")])
    assert status == 422 and "相談内容を1つ以上選んでください" in page
    assert (await stored_record(service, consultation_id)).worries == ["suicidal", "work"]
    async with service.app[SESSIONS]() as session:
        saves = [a.action for a in await session.exec(select(AuditEntry).where(AuditEntry.action.startswith("record_")))]
    assert saves == ["record_draft", "record_filed"], "a refused correction changes nothing, so it audits nothing"
    corrected = [*complete[:3], ("responses", "information"), ("action", "file")]
    status, _, location = await post_fields(counselor, f"/console/c/{consultation_id}/record", corrected)
    assert location.endswith("?saved=corrected")
    record = await stored_record(service, consultation_id)
    assert record.responses == ["information"] and record.filed_at == filed.filed_at and record.updated_at > filed.updated_at
    async with service.app[SESSIONS]() as session:
        actions = [a.action for a in await session.exec(select(AuditEntry).where(AuditEntry.consultation_id == consultation_id).order_by(AuditEntry.id))]
    assert [a for a in actions if a.startswith("record_")] == ["record_draft", "record_filed", "record_corrected"]


async def test_only_the_consultations_counselor_or_a_supervisor_opens_its_record(service: Service, console) -> None:
    _, consultation_id, holder = await held_chat(service, console)
    await holder.post(f"/console/c/{consultation_id}/end")
    await add_account(service, "other")
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    await add_account(service, "coord", StaffRole.COORDINATOR)
    other, boss, coordinator = console(), console(), console()
    await other.login("other")
    await boss.login("boss")
    await coordinator.login("coord")
    assert (await other.get(f"/console/c/{consultation_id}/record"))[0] == 404
    assert (await other.post(f"/console/c/{consultation_id}/record", {"age_band": "twenties", "action": "draft"}))[0] == 404
    for garbage in ("not-a-number", "9" * 40, "²"):
        assert (await other.get(f"/console/c/{garbage}/record"))[0] == 404
    assert (await coordinator.get(f"/console/c/{consultation_id}/record"))[0] == 403
    assert await stored_record(service, consultation_id) is None
    assert (await boss.get(f"/console/c/{consultation_id}/record"))[0] == 200
    status, page = await holder.get(f"/console/c/{consultation_id}")
    assert status == 200 and f'href="/console/c/{consultation_id}/record"' in page, "the ended chat links to its record"


async def test_canned_phrases_are_offered_in_the_reply_box(service: Service, console, content) -> None:
    _, consultation_id, counselor = await held_chat(service, console)
    _, page = await counselor.get(f"/console/c/{consultation_id}")
    assert 'data-canned data-src="/console/canned"' in page
    status, options = await counselor.get("/console/canned")
    assert status == 200
    for phrase in content.canned:
        assert f'<option value="{phrase.text}">{phrase.label}</option>' in options
    await add_account(service, "coord", StaffRole.COORDINATOR)
    coordinator = console()
    await coordinator.login("coord")
    assert (await coordinator.get("/console/canned"))[0] == 403
