"""A person chats with the bot on the emulator's phone page, in a real browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Service

pytestmark = pytest.mark.browser


async def test_a_person_follows_chooses_a_category_and_writes(service: Service, browser, content, tmp_path: Path) -> None:
    page = await browser.new_page(viewport={"width": 420, "height": 820})
    await page.goto(f"{service.line_url}/")
    # Opening the page adds a LINE user who follows the bot: the greeting and the menu appear.
    first_line = content.menu.greeting.splitlines()[0]
    await page.get_by_text(first_line).wait_for(timeout=10_000)
    label = content.menu.category("suicidal").label
    await page.locator("#quick button", has_text=label).click()
    await page.get_by_text(content.menu.category("suicidal").accepted.splitlines()[0], exact=False).wait_for(timeout=10_000)
    # What people type is shown as text, never as markup.
    await page.fill("#text", "<b>ねむれない</b>")
    await page.press("#text", "Enter")
    bubble = page.locator(".bubble.user", has_text="<b>ねむれない</b>")
    await bubble.wait_for(timeout=10_000)
    assert await page.locator(".bubble b").count() == 0
    await page.screenshot(path=str(tmp_path / "emulator.png"))
    user_id = next(iter(service.line.users))
    assert [m["message"]["text"] for m in service.line.messages_for(user_id) if m["via"] != "loading"][0] == content.menu.greeting
