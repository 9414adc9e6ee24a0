"""The flags page in Chromium: cards as tall as their content, neighbours folded, one key per decision."""

from __future__ import annotations

import pytest
from conftest import Service, add_account, settle
from sqlmodel import select
from test_attention import person
from test_console_pages_browser import log_in

from bot.appkeys import SESSIONS
from bot.storage.models import AuditEntry, FlagState, RiskFlag, RiskLevel, StaffRole

pytestmark = pytest.mark.browser


async def test_flags_are_compact_in_context_and_reviewed_by_keyboard(service: Service, browser) -> None:
    await add_account(service, "mod", StaffRole.MODERATOR)
    user = service.line.add_user().user_id
    await service.line.follow(user)
    for text in ("起きた", "今日は雨", "バイト行ってきた", "死にたい", "ごはん食べた", "ねる", "おはよう"):
        await service.line.send_text(user, text)
    await person(service, "もう消えたい")  # a second flag, on another person
    await settle(service)
    page = await log_in(browser, service, "mod")
    await page.goto(f"{service.url}/console/flags")
    cards = page.locator("article.flag")
    assert await cards.count() == 2
    lonely = cards.filter(has_text="もう消えたい")
    box = await lonely.bounding_box()
    assert box["height"] < 200, f"a one-line flag card is {box['height']} px tall"
    # The flagged message shows with its words marked; two neighbours on each side, folded.
    flagged = cards.filter(has_text="死にたい")
    assert await flagged.locator(".flagged mark").inner_text() == "死にたい"
    assert not await flagged.get_by_text("バイト行ってきた").is_visible()
    assert not await flagged.get_by_text("起きた").count(), "only two messages before"
    await flagged.get_by_text("前のメッセージ（2件）").click()
    await flagged.get_by_text("バイト行ってきた").wait_for()
    assert await flagged.get_by_text("ごはん食べた").count() == 1 and not await flagged.get_by_text("おはよう").count()

    # Keyboard: the first card (newest) is current; j moves on, 3 relabels it 高, then d + reason + Enter dismisses the other.
    first_id = await cards.first.get_attribute("data-flag")
    second_id = await cards.nth(1).get_attribute("data-flag")
    await page.keyboard.press("j")
    async with page.expect_navigation():
        await page.keyboard.press("3")
    await page.locator("article.flag.current").wait_for()
    await page.keyboard.press("d")
    await page.keyboard.type("冗談だと本人が説明")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    async with service.app[SESSIONS]() as session:
        first, second = await session.get(RiskFlag, int(first_id)), await session.get(RiskFlag, int(second_id))
        audited = list(await session.exec(select(AuditEntry.action).where(AuditEntry.action.like("flag_%"))))
    assert (second.state, second.reviewed_level) == (FlagState.RELABELLED, RiskLevel.HIGH)
    assert (first.state, first.review_reason) == (FlagState.DISMISSED, "冗談だと本人が説明")
    assert sorted(audited) == ["flag_dismissed", "flag_relabelled"]
