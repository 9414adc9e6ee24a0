"""Referrals (つなぎ) with consent: the directory, the proposal, the person's answer on LINE, the coordinator's work."""

from __future__ import annotations

import pytest
from conftest import PASSWORD, Console, Service, add_account, held_chat, settle
from sqlmodel import select
from test_records import post_fields

from bot.appkeys import SESSIONS
from bot.storage.models import AuditEntry, ChatEntry, Consultation, LineUser, Organisation, Referral, ReferralStatus, StaffRole


async def coordinator_with_organisation(service: Service, console, name: str = "ひらかた若者サポート") -> tuple[Console, int]:
    """A logged-in coordinator and an organisation they added through the directory."""
    await add_account(service, "coord", StaffRole.COORDINATOR)
    coordinator = console()
    await coordinator.login("coord")
    fields = {"name": name, "region": "大阪府枚方市", "fields": "若者、生活困窮", "contact": "072-000-0000（相談係）"}
    status, _, location = await coordinator.post("/console/organisations", fields)
    assert (status, location) == (303, "/console/organisations")
    async with service.app[SESSIONS]() as session:
        organisation = (await session.exec(select(Organisation).where(Organisation.name == name))).one()
    return coordinator, organisation.id


async def load_referral(service: Service, referral_id: int) -> Referral:
    async with service.app[SESSIONS]() as session:
        return await session.get(Referral, referral_id)


async def only_referral(service: Service) -> Referral:
    async with service.app[SESSIONS]() as session:
        [referral] = list(await session.exec(select(Referral)))
    return referral


def consent_data(message: dict) -> dict[str, str]:
    """The quick-reply labels of the consent question and the postback data behind them."""
    return {item["action"]["label"]: item["action"]["data"] for item in message["quickReply"]["items"]}


async def test_the_directory_is_kept_by_coordinators(service: Service, console) -> None:
    coordinator, organisation_id = await coordinator_with_organisation(service, console)
    status, page, _ = await coordinator.post("/console/organisations", {"name": "", "region": "京都市", "fields": "DV", "contact": "075-000-0000"})
    assert status == 422 and "名称を入力してください" in page and 'value="京都市"' in page
    edited = {"name": "ひらかた若者サポートセンター", "region": "大阪府枚方市", "fields": "若者 ひきこもり", "contact": "072-000-0001"}
    assert (await coordinator.post(f"/console/organisations/{organisation_id}", edited))[0] == 303
    _, page = await coordinator.get("/console/organisations")
    assert "ひらかた若者サポートセンター" in page and "若者、ひきこもり" in page
    # Taken off the list: counselors no longer see it to propose.
    _, consultation_id, counselor = await held_chat(service, console)
    _, part = await counselor.get(f"/console/c/{consultation_id}/referral")
    assert f'<option value="{organisation_id}">' in part
    assert (await coordinator.post(f"/console/organisations/{organisation_id}/active", {"active": "no"}))[0] == 303
    _, part = await counselor.get(f"/console/c/{consultation_id}/referral")
    assert f'<option value="{organisation_id}">' not in part
    status, body, _ = await counselor.post(f"/console/c/{consultation_id}/referral", {"organisation_id": str(organisation_id)})
    assert status == 409 and "一覧から外れています" in body
    assert (await counselor.get("/console/organisations"))[0] == 403
    assert (await counselor.post("/console/organisations", {"name": "x", "region": "x", "contact": "x"}))[0] == 403
    async with service.app[SESSIONS]() as session:
        actions = [a.action for a in await session.exec(select(AuditEntry).where(AuditEntry.action.startswith("organisation_")))]
    assert actions == ["organisation_added", "organisation_edited", "organisation_deactivated"]


async def test_a_yes_shows_the_referral_to_the_coordinator_who_moves_it_on(service: Service, console, content) -> None:
    coordinator, organisation_id = await coordinator_with_organisation(service, console)
    user, consultation_id, counselor = await held_chat(service, console)
    await service.line.send_text(user, "家に帰りたくない")
    complete = [("age_band", "teens_late"), ("worries", "family"), ("responses", "listening"), ("serious", "yes"), ("action", "file")]
    await post_fields(counselor, f"/console/c/{consultation_id}/record", complete)
    before = len(service.line.messages_for(user))

    status, _, location = await counselor.post(f"/console/c/{consultation_id}/referral", {"organisation_id": str(organisation_id), "back": "chat"})
    assert (status, location) == (303, f"/console/c/{consultation_id}")
    messages = await service.line.wait_for_messages(user, before + 1)
    question = messages[-1]["message"]
    assert "ひらかた若者サポート" in question["text"] and "相談の内容" in question["text"] and "何も変わりません" in question["text"]
    buttons = consent_data(question)
    assert list(buttons) == [content.messages.referral_yes_label, content.messages.referral_no_label]
    referral = await only_referral(service)
    assert referral.status == ReferralStatus.PROPOSED and [h["status"] for h in referral.history] == ["proposed"]
    status, body, _ = await counselor.post(f"/console/c/{consultation_id}/referral", {"organisation_id": str(organisation_id)})
    assert status == 409 and "すでに提案" in body

    # Before the person's answer the coordinator sees nothing of it.
    _, page = await coordinator.get("/console/referrals")
    assert "ひらかた若者サポート" not in page
    assert (await coordinator.get(f"/console/referrals/{referral.id}"))[0] == 404
    assert (await coordinator.post(f"/console/referrals/{referral.id}/status", {"current": "proposed", "status": "contacted"}))[0] == 404

    await service.line.send_postback(user, buttons[content.messages.referral_yes_label])
    await settle(service)
    referral = await load_referral(service, referral.id)
    assert referral.status == ReferralStatus.CONSENTED and referral.consent_at is not None
    assert [h["status"] for h in referral.history] == ["proposed", "consented"] and referral.history[1]["staff_id"] is None
    assert service.line.messages_for(user)[-1]["message"]["text"] == content.messages.referral_consented.format(organisation="ひらかた若者サポート")
    _, part = await counselor.get(f"/console/c/{consultation_id}/referral")
    assert "同意あり" in part

    status, page = await coordinator.get("/console/referrals")
    assert status == 200 and "ひらかた若者サポート" in page and content.menu.category("suicidal").label in page
    assert "10代後半" in page and "家庭や家族" in page and "傾聴" in page
    assert "家に帰りたくない" not in page, "the record summary, never the chat"
    assert (await coordinator.get(f"/console/c/{consultation_id}"))[0] == 403
    assert (await coordinator.get(f"/console/c/{consultation_id}/live"))[0] == 403

    path = f"/console/referrals/{referral.id}/status"
    assert (await coordinator.post(path, {"current": "consented", "status": "connected"}))[0] == 400, "one step at a time"
    assert (await coordinator.post(path, {"current": "consented", "status": "contacted", "note": "担当の山田さんに電話"}))[0] == 303
    assert (await coordinator.post(path, {"current": "consented", "status": "connected"}))[0] == 409, "someone moved it already"
    assert (await coordinator.post(path, {"current": "contacted", "status": "connected"}))[0] == 303
    assert (await coordinator.post(path, {"current": "connected", "status": "closed", "note": "面談につながった"}))[0] == 303
    referral = await load_referral(service, referral.id)
    assert [h["status"] for h in referral.history] == ["proposed", "consented", "contacted", "connected", "closed"]
    coordinator_id = referral.history[2]["staff_id"]
    assert coordinator_id is not None and referral.history[2]["note"] == "担当の山田さんに電話"
    async with service.app[SESSIONS]() as session:
        changes = list(await session.exec(select(AuditEntry).where(AuditEntry.action == "referral_status_changed").order_by(AuditEntry.id)))
    assert [(a.staff_id, a.consultation_id) for a in changes] == [(coordinator_id, consultation_id)] * 3
    assert changes[0].detail == f"つなぎ #{referral.id}: consented → contacted"
    _, page = await coordinator.get("/console/referrals")
    assert "いま進めているつなぎはありません" in page and f'href="/console/referrals/{referral.id}"' in page
    status, page = await coordinator.get(f"/console/referrals/{referral.id}")
    assert status == 200 and "面談につながった" in page and "状態を更新" not in page


async def test_a_no_keeps_it_hidden_in_the_persons_language(service: Service, console, content) -> None:
    coordinator, organisation_id = await coordinator_with_organisation(service, console)
    user, consultation_id, counselor = await held_chat(service, console)
    async with service.app[SESSIONS]() as session:
        person = await session.get(LineUser, user)
        person.language = "en"
        session.add(person)
        await session.commit()
    await counselor.post(f"/console/c/{consultation_id}/end")
    await settle(service)
    before = len(service.line.messages_for(user))
    await counselor.post(f"/console/c/{consultation_id}/referral", {"organisation_id": str(organisation_id), "back": "record"})
    question = (await service.line.wait_for_messages(user, before + 1))[-1]["message"]
    english = content.in_language("en").messages
    assert question["text"] == english.referral_question.format(organisation="ひらかた若者サポート")
    await service.line.send_postback(user, consent_data(question)[english.referral_no_label])
    await settle(service)
    referral = await only_referral(service)
    assert referral.status == ReferralStatus.DECLINED and referral.consent_at is None
    assert service.line.messages_for(user)[-1]["message"]["text"] == english.referral_declined.format(organisation="ひらかた若者サポート")
    _, page = await coordinator.get("/console/referrals")
    assert "ひらかた若者サポート" not in page
    assert (await coordinator.get(f"/console/referrals/{referral.id}"))[0] == 404
    async with service.app[SESSIONS]() as session:
        events = [e.text for e in await session.exec(select(ChatEntry).where(ChatEntry.consultation_id == consultation_id))]
    assert events[-1] == "相談者は「ひらかた若者サポート」へのつなぎを希望しませんでした"


async def test_tampered_or_stale_consent_postbacks_change_nothing(service: Service, console) -> None:
    _, organisation_id = await coordinator_with_organisation(service, console)
    user, consultation_id, counselor = await held_chat(service, console)
    await counselor.post(f"/console/c/{consultation_id}/referral", {"organisation_id": str(organisation_id)})
    await settle(service)
    referral = await only_referral(service)
    stranger = service.line.add_user().user_id
    await service.line.follow(stranger)
    for who, data in (
        (stranger, f"a=consent&id={referral.id}&v=yes"),  # someone else's referral
        (user, f"a=consent&id={referral.id}&v=maybe"),
        (user, "a=consent&id=abc&v=yes"),
        (user, "a=consent&id=99999&v=yes"),
        (user, f"a=consent&id={'9' * 40}&v=yes"),  # larger than any database integer
        (user, f"a=consent&id={referral.id}"),
        (user, f"a=consent&id={referral.id}&v=yes&v=no"),
    ):
        await service.line.send_postback(who, data)
    await settle(service)
    assert (await load_referral(service, referral.id)).status == ReferralStatus.PROPOSED
    await service.line.send_postback(user, f"a=consent&id={referral.id}&v=no")
    await service.line.send_postback(user, f"a=consent&id={referral.id}&v=yes")  # stale: already answered
    await settle(service)
    referral = await load_referral(service, referral.id)
    assert referral.status == ReferralStatus.DECLINED and [h["status"] for h in referral.history] == ["proposed", "declined"]


async def test_a_proposal_needs_a_conversation_and_access(service: Service, console) -> None:
    _, organisation_id = await coordinator_with_organisation(service, console)
    _, consultation_id, _ = await held_chat(service, console)
    await add_account(service, "other")
    other = console()
    await other.login("other")
    form = {"organisation_id": str(organisation_id)}
    assert (await other.post(f"/console/c/{consultation_id}/referral", form))[0] == 404
    assert (await other.get(f"/console/c/{consultation_id}/referral"))[0] == 404
    # A supervisor may open a waiting consultation, but nobody has talked with that person yet.
    line = service.line
    waiting_user = line.add_user().user_id
    await line.follow(waiting_user)
    await line.send_postback(waiting_user, "a=category&id=suicidal")
    await settle(service)
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    boss = console()
    await boss.login("boss")
    async with service.app[SESSIONS]() as session:
        waiting = (await session.exec(select(Consultation).where(Consultation.user_id == waiting_user))).one()
    status, body, _ = await boss.post(f"/console/c/{waiting.id}/referral", form)
    assert status == 409 and "話す前" in body
    assert (await boss.post(f"/console/c/{consultation_id}/referral", {"organisation_id": "nope"}))[0] == 400
    async with service.app[SESSIONS]() as session:
        assert list(await session.exec(select(Referral))) == []



@pytest.mark.browser
async def test_in_the_browser_a_phrase_fills_the_reply_box_and_a_yes_shows_live(service: Service, browser, console, content) -> None:
    _, organisation_id = await coordinator_with_organisation(service, console)
    await add_account(service, "aoi")
    page = await browser.new_page(viewport={"width": 1100, "height": 900})
    await page.goto(f"{service.url}/console/login")
    await page.fill("input[name=login]", "aoi")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/console/queue")
    phone = await browser.new_page(viewport={"width": 420, "height": 820})
    await phone.goto(f"{service.line_url}/")
    await phone.get_by_text(content.menu.greeting.splitlines()[0]).wait_for(timeout=10_000)
    await phone.locator("#quick button", has_text=content.menu.category("suicidal").label).click()
    row = page.locator("tr[data-consultation]")
    await row.wait_for(timeout=10_000)
    await row.get_by_role("button", name="対応する").click()
    await page.wait_for_url("**/console/c/*")

    # Chosen phrases go into the reply box, one after another, and nothing is sent by choosing.
    first, second = content.canned[0], content.canned[1]
    await page.locator(f"select[data-canned] option[value='{second.text}']").wait_for(state="attached", timeout=10_000)
    await page.select_option("select[data-canned]", label=first.label)
    await page.select_option("select[data-canned]", label=second.label)
    reply_box = page.locator("form.compose:not(.note) textarea[name=text]")
    assert await reply_box.input_value() == f"{first.text}\n{second.text}"
    assert await page.locator("form.compose.note textarea[name=text]").input_value() == ""

    # The referral part loads into the chat page; the person's yes shows there without a reload.
    await page.select_option("section.referral select[name=organisation_id]", value=str(organisation_id), timeout=10_000)
    await page.get_by_role("button", name="本人に同意をたずねる").click()
    await page.locator("section.referral", has_text="本人の返事待ち").wait_for(timeout=10_000)
    await phone.locator("#quick button", has_text=content.messages.referral_yes_label).click(timeout=10_000)
    await page.locator("section.referral", has_text="同意あり").wait_for(timeout=10_000)
    assert (await only_referral(service)).status == ReferralStatus.CONSENTED


async def test_the_directory_filters_by_the_prefecture_people_give_the_finder(service: Service, console) -> None:
    coordinator, osaka = await coordinator_with_organisation(service, console)
    fields = {"name": "やまがた若者相談", "region": "山形市", "fields": "若者", "contact": "023-000-0000", "prefecture": "yamagata"}
    assert (await coordinator.post("/console/organisations", fields))[0] == 303
    _, page = await coordinator.get("/console/organisations?prefecture=yamagata")
    assert "やまがた若者相談" in page and "ひらかた若者サポート" not in page and "<td>山形県</td>" in page
    _, page = await coordinator.get("/console/organisations?prefecture=osaka")
    assert "やまがた若者相談" not in page and "この都道府県の登録はありません" in page
    edited = {"name": "ひらかた若者サポート", "region": "大阪府枚方市", "fields": "若者", "contact": "072-000-0000", "prefecture": "osaka"}
    assert (await coordinator.post(f"/console/organisations/{osaka}", edited))[0] == 303
    _, page = await coordinator.get("/console/organisations?prefecture=osaka")
    assert "ひらかた若者サポート" in page and "やまがた若者相談" not in page
    _, page = await coordinator.get("/console/organisations?prefecture=%3Cscript%3E")
    assert "やまがた若者相談" in page and "ひらかた若者サポート" in page, "an unknown prefecture shows everything"
    status, page, _ = await coordinator.post("/console/organisations", {**fields, "name": "x", "prefecture": "atlantis"})
    assert status == 422 and "都道府県を一覧から選んでください" in page
