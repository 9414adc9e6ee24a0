"""The service reads each text in its window of the person's recent messages: a sequence raises the level,
a flag the reader finds defused in context is noted for moderators, who may lower it with one audited click."""

from __future__ import annotations

import traceback

import pytest
from conftest import Console, Service, add_account, run_service, settle
from moderation.screener import ModelResult, Screener
from moderation.screening import SEPARATOR
from sqlmodel import select

import bot.app
from bot.appkeys import SESSIONS
from bot.storage.models import AuditEntry, Consultation, FlagState, RiskFlag, RiskLevel, StaffRole

GOODBYE = ["今まで本当に楽しかったよ", "みんなのこと好きだった", "じゃ、行ってくる"]


class ReadingModel(Screener):
    """A model that reads conversations as a counselor would these: a goodbye before 「行ってくる」 is high,
    every other window and every message alone is low (the keyword floor still screens messages)."""

    # For each window read, whether it was read ahead of the handler (in `ScreenedAhead.ahead`).
    windows_read: list[bool] = []

    async def read(self, conversations: list[list[str]]) -> ModelResult:
        ReadingModel.windows_read += ["ahead" in [frame.name for frame in traceback.extract_stack()]] * len(conversations)
        return await super().read(conversations)

    def _infer(self, texts: list[str]) -> ModelResult:
        return [("high", 0.9) if SEPARATOR in text and "楽しかった" in text and "行ってくる" in text
                else ("high", 0.8) if SEPARATOR not in text and "全部ええわ" in text else ("low", 0.8) for text in texts]

    async def _drivers(self, rated: list[tuple[str, str]]) -> list[list[tuple[int, int]]]:
        # What the n-gram model would point at: the words the stand-in rates on.
        return [[(text.index("全部ええわ"), text.index("全部ええわ") + 5)] if "全部ええわ" in text else [] for text, _ in rated]


@pytest.fixture(autouse=True)
def reading_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.app, "Screener", ReadingModel)


async def waiting(service: Service, category: str) -> str:
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await service.line.send_postback(user, f"a=category&id={category}")
    await settle(service)
    return user


async def test_a_goodbye_then_going_raises_the_level_though_no_line_alone_would(database_url: str, content) -> None:
    async with run_service(database_url, content) as service:
        user = await waiting(service, "suicidal")  # open day and night; its floor is medium
        ReadingModel.windows_read = []
        for text in GOODBYE:
            await service.line.send_text(user, text)
            await settle(service)
        async with service.app[SESSIONS]() as session:
            [consultation] = list(await session.exec(select(Consultation)))
            [flag] = list(await session.exec(select(RiskFlag)))
    assert consultation.risk_level == RiskLevel.HIGH, "the window raised what each message alone left low"
    assert (flag.level, flag.source, flag.context_level) == (RiskLevel.HIGH, "conversation", RiskLevel.HIGH)
    assert flag.consultation_id == consultation.id
    assert ReadingModel.windows_read == [True, True], "each window is read once, before the handler's transaction opens"


async def test_the_queue_row_and_the_chat_header_show_the_words_that_drove_the_model(service: Service, console) -> None:
    user = await waiting(service, "suicidal")
    await service.line.send_text(user, "もう全部ええわ、ほんまに")
    await settle(service)
    async with service.app[SESSIONS]() as session:
        [flag] = list(await session.exec(select(RiskFlag)))
    assert flag.drivers == [{"span": [2, 7], "text": "全部ええわ"}] and flag.source == "model"
    await add_account(service, "aoi", StaffRole.COUNSELOR)
    counselor = console()
    await counselor.login("aoi")
    _, queue = await counselor.get("/console/queue")
    row = queue.split(f'data-consultation="{flag.consultation_id}"')[1].split("</tr>")[0]
    assert "高" in row and 'モデルが重く見た言葉 「<mark class="driver">全部ええわ</mark>」' in row
    assert (await counselor.post(f"/console/c/{flag.consultation_id}/take"))[0] == 303
    _, chat = await counselor.get(f"/console/c/{flag.consultation_id}")
    assert 'もう<mark class="driver">全部ええわ</mark>、ほんまに' in chat, "the words are marked in the message that raised the level"


async def test_a_defused_flag_is_noted_and_lowered_by_one_audited_click_never_by_itself(database_url: str, content) -> None:
    async with run_service(database_url, content) as service:
        user = await waiting(service, "suicidal")
        await service.line.send_text(user, "死にたい")
        await settle(service)
        await service.line.send_text(user, "って主人公が言う映画、泣いた")
        await settle(service)
        async with service.app[SESSIONS]() as session:
            [consultation] = list(await session.exec(select(Consultation)))
            [flag] = list(await session.exec(select(RiskFlag)))
        assert consultation.risk_level == RiskLevel.HIGH, "the level never drops by itself"
        assert (flag.level, flag.context_level, flag.state) == (RiskLevel.HIGH, RiskLevel.LOW, FlagState.OPEN)

        await add_account(service, "mod", StaffRole.MODERATOR)
        moderator = Console(service.url)
        try:
            await moderator.login("mod")
            _, page = await moderator.get("/console/flags")
            assert "文脈では低" in page and f'action="/console/flags/{flag.id}/lower"' in page
            assert (await moderator.post(f"/console/flags/{flag.id}/lower", csrf=False))[0] == 403, "a forged click lowers nothing"
            status, _, location = await moderator.post(f"/console/flags/{flag.id}/lower")
            assert status == 303 and location.endswith(f"#flag-{flag.id}")
            assert (await moderator.post(f"/console/flags/{flag.id}/lower"))[0] == 409, "a reviewed flag is not lowered twice"
        finally:
            await moderator.close()
        async with service.app[SESSIONS]() as session:
            lowered = await session.get(Consultation, consultation.id)
            reviewed = await session.get(RiskFlag, flag.id)
            audit = list(await session.exec(select(AuditEntry).where(AuditEntry.action == "flag_lowered_in_context")))
    assert lowered.risk_level == RiskLevel.MEDIUM, "down to the floor of the category chosen, no further"
    assert (reviewed.state, reviewed.reviewed_level) == (FlagState.RELABELLED, RiskLevel.LOW) and reviewed.reviewed_by is not None
    [entry] = audit
    assert entry.consultation_id == consultation.id and "high → low" in entry.detail


async def test_lowering_one_flag_in_context_leaves_the_level_another_flag_holds(service: Service, console) -> None:
    user = await waiting(service, "suicidal")
    for text in ("死にたい", "って主人公が言う映画、泣いた", "リスカしちゃった"):
        await service.line.send_text(user, text)
        await settle(service)
    async with service.app[SESSIONS]() as session:
        first, second = sorted(await session.exec(select(RiskFlag)), key=lambda f: f.id)
    await add_account(service, "mod", StaffRole.MODERATOR)
    moderator = console()
    await moderator.login("mod")
    await moderator.get("/console/flags")
    assert (await moderator.post(f"/console/flags/{second.id}/review", {"decision": "confirm"}))[0] == 303
    assert (await moderator.post(f"/console/flags/{first.id}/lower"))[0] == 303
    async with service.app[SESSIONS]() as session:
        [consultation] = list(await session.exec(select(Consultation)))
    assert consultation.risk_level == RiskLevel.HIGH, "the confirmed self-harm flag still holds the level"


@pytest.mark.browser
async def test_a_moderator_sees_the_defused_note_beside_the_flag_and_lowers_it_in_chromium(service: Service, browser) -> None:
    from test_console_pages_browser import log_in

    user = await waiting(service, "suicidal")
    for text in ("死にたい", "って主人公が言う映画、泣いた"):
        await service.line.send_text(user, text)
        await settle(service)
    await add_account(service, "mod", StaffRole.MODERATOR)
    page = await log_in(browser, service, "mod")
    await page.goto(f"{service.url}/console/flags")
    card = page.locator("article.flag")
    note = card.get_by_role("note")
    assert "文脈では低" in await note.inner_text()
    assert await note.is_visible() and await card.locator("header .level-high").is_visible(), "the note sits beside the flag's level"
    async with page.expect_navigation():
        await note.get_by_role("button", name="文脈の判定（低）に下げる").click()
    assert "→ 低" in await card.locator("header").inner_text()
    assert not await card.get_by_role("button", name="文脈の判定（低）に下げる").count(), "a lowered flag offers no second click"
    async with service.app[SESSIONS]() as session:
        [consultation] = list(await session.exec(select(Consultation)))
    assert consultation.risk_level == RiskLevel.MEDIUM
