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
    assert [m["message"]["text"] for m in service.line.messages_for(user_id) if m["via"] != "loading"][0].startswith(content.menu.greeting)


async def test_the_finder_shows_tappable_cards(service: Service, browser, content, tmp_path: Path) -> None:
    page = await browser.new_page(viewport={"width": 420, "height": 820})
    await page.goto(f"{service.line_url}/")
    await page.get_by_text(content.menu.greeting.splitlines()[0]).wait_for(timeout=10_000)
    await page.locator("#quick button", has_text=content.menu.link("finder").label).click()
    # Asked once where they live; they may skip it.
    await page.locator("#quick button", has_text=content.finder.prefecture_skip).click()
    # The worries arrive as a Flex bubble of buttons; tapping one sends its postback.
    worry = content.finder.worry("under18")
    await page.locator(".card button", has_text=worry.label).click()
    await page.locator("#quick button", has_text="中学生").click()
    # The answer is a carousel of cards, each with a tap-to-call link.
    call = page.locator(".carousel a[href^='tel:']").first
    await call.wait_for(timeout=10_000)
    assert await page.locator(".carousel .card").count() >= 2
    await page.screenshot(path=str(tmp_path / "finder.png"))
    names = [r.name for r in content.resources if "junior_high" in r.school_years]
    shown = await page.locator(".carousel .card > div:first-child").all_inner_texts()
    assert shown and all(name in names for name in shown)


async def test_the_rich_menu_shows_and_its_tiles_tap(service: Service, browser, content) -> None:
    from bot.appkeys import SETTINGS
    from bot.conversation.richmenus import rich_menu_designs
    from bot.line.channel import set_up_channel
    from bot.line.richmenu import alias_id

    await set_up_channel(
        service.app[SETTINGS], rich_menu_designs(content), f"{service.url}/callback", default=alias_id("main", content.language), dry_run=False
    )
    page = await browser.new_page(viewport={"width": 420, "height": 820})
    await page.goto(f"{service.line_url}/")
    await page.get_by_text(content.menu.greeting.splitlines()[0]).wait_for(timeout=10_000)
    await page.locator("#richmenu-image").wait_for(timeout=10_000)
    assert await page.locator("#richmenu-panel button").count() == 4
    # The picture of the README: the phone with its rich menu.
    await page.screenshot(path=str(SCREENSHOTS / "phone-rich-menu.png"))
    await page.get_by_role("button", name=content.messages.rich_menu_consult_label).click()
    await page.locator(".bubble.bot", has_text=content.menu.prompt).wait_for(timeout=10_000)
    # Choosing a category swaps the menu for the consultation's two tiles.
    await page.locator("#quick button", has_text=content.menu.category("suicidal").label).click()
    await page.get_by_role("button", name=content.messages.rich_menu_end_label).wait_for(timeout=10_000)
    assert await page.locator("#richmenu-panel button").count() == 2


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
