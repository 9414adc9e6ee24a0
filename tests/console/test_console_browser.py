"""A counselor and a person on LINE, each in a real browser: the queue, the chat and the end, all live."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PASSWORD, Service, add_account
from sqlmodel import select

from bot.appkeys import SESSIONS
from bot.storage.models import ConsultationRecord

pytestmark = pytest.mark.browser


async def test_a_counselor_meets_a_person_from_the_phone_page(service: Service, browser, content, tmp_path: Path) -> None:
    await add_account(service, "aoi")
    console = await browser.new_page(viewport={"width": 1100, "height": 800})
    await console.goto(f"{service.url}/console/login")
    await console.fill("input[name=login]", "aoi")
    await console.fill("input[name=password]", PASSWORD)
    await console.click("button[type=submit]")
    await console.wait_for_url("**/console/queue")

    phone = await browser.new_page(viewport={"width": 420, "height": 820})
    await phone.goto(f"{service.line_url}/")
    await phone.get_by_text(content.menu.greeting.splitlines()[0]).wait_for(timeout=10_000)
    await phone.locator("#quick button", has_text=content.menu.category("suicidal").label).click()

    # The request appears in the open console without a reload.
    row = console.locator("tr[data-consultation]")
    await row.wait_for(timeout=10_000)
    await row.get_by_role("button", name="対応する").click()
    await console.wait_for_url("**/console/c/*")
    await phone.get_by_text("相談員の aoiさん です。", exact=False).wait_for(timeout=10_000)

    await console.fill("form.compose:not(.note) textarea[name=text]", "こんばんは。ゆっくりで大丈夫です。")
    await console.click("form.compose:not(.note) button[type=submit]")
    await phone.get_by_text("こんばんは。ゆっくりで大丈夫です。").wait_for(timeout=10_000)

    # What the person writes shows up in the console live, as text: markup and scripts do nothing.
    hostile = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">ありがとう"
    await phone.fill("#text", hostile)
    await phone.press("#text", "Enter")
    await console.locator(".messages .line-person .text", has_text="ありがとう").last.wait_for(timeout=10_000)
    shown = await console.locator(".messages .line-person .text").last.inner_text()
    assert shown == hostile
    assert await console.evaluate("window.pwned") is None
    assert await console.locator(".messages script, .messages img").count() == 0
    await console.screenshot(path=str(tmp_path / "console-chat.png"))

    await console.get_by_role("button", name="相談を終える").click()
    await console.wait_for_url("**/record")
    await phone.get_by_text(content.messages.helped_question).wait_for(timeout=10_000)
    # The record (相談記録票): filed once the questions the report needs are answered.
    await console.check("input[name=age_band][value=teens_late]")
    await console.check(f"input[name=worries][value={content.records.worries[0].id}]")
    await console.check(f"input[name=responses][value={content.records.responses[0].id}]")
    await console.fill("textarea[name=note]", "眠れない日が続いている。次回も話したいとのこと。")
    await console.get_by_role("button", name="記録を提出").click()
    await console.get_by_text("記録を提出しました。").wait_for(timeout=10_000)
    async with service.app[SESSIONS]() as session:
        [record] = list(await session.exec(select(ConsultationRecord)))
    assert record.filed_at is not None and record.age_band == "teens_late"
