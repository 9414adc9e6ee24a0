"""A counselor's shift in Chromium: several chats as tabs, drafts kept per chat, Ctrl+Enter, and attention drawn."""

from __future__ import annotations

import pytest
from conftest import PASSWORD, Service, add_account, settle
from test_attention import person

from bot.appkeys import SESSIONS
from bot.storage.models import Consultation, RiskLevel, StaffUser

pytestmark = pytest.mark.browser

# Every desktop notification the page raises is recorded (the permission is granted to the context).
RECORD_NOTIFICATIONS = """
window.__notified = [];
window.Notification = class extends window.Notification {
  constructor(title, options) { super(title, options); window.__notified.push({title, body: options.body}); }
};
"""


def said_to(service: Service, user: str) -> list[str]:
    return [m["message"].get("text", "") for m in service.line.messages_for(user)]


async def test_several_chats_drafts_keys_and_attention(service: Service, browser) -> None:
    aoi = await add_account(service, "aoi", max_chats=3)
    first, second = await person(service, category="suicidal"), await person(service, category="suicidal")
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, permissions=["notifications"])
    await context.add_init_script(RECORD_NOTIFICATIONS)
    page = await context.new_page()
    await page.goto(f"{service.url}/console/login")
    await page.fill("input[name=login]", "aoi")
    await page.fill("input[name=password]", PASSWORD)
    await page.get_by_role("button", name="ログイン").click()
    for consultation in (second, first):
        await page.goto(f"{service.url}/console/queue")
        await page.get_by_role("button", name=f"#{consultation} に対応する").click()
        await page.wait_for_url(f"**/console/c/{consultation}")
    async with service.app[SESSIONS]() as session:
        users = {c: (await session.get(Consultation, c)).user_id for c in (first, second)}

    # On the first chat, a draft; switching to the second keeps it, though nothing stores it.
    await page.fill(f"#reply-{first}", "下書き: 明日また話しましょう")
    await page.get_by_role("tab", name=f"#{second}").click()
    reply = page.locator(f"#reply-{second}")
    await reply.wait_for()
    assert await page.evaluate("location.pathname") == f"/console/c/{second}"
    await reply.fill("こんばんは。ここにいますよ。")
    await reply.press("Control+Enter")
    await page.locator(f"#pane-{second} .line-counselor .text", has_text="こんばんは。ここにいますよ。").wait_for(timeout=10_000)
    await settle(service)
    assert "こんばんは。ここにいますよ。" in said_to(service, users[second])
    assert await reply.input_value() == ""
    # A third person waits: taken from the chats column, without leaving the page.
    third = await person(service, category="suicidal")
    await page.get_by_role("button", name=f"#{third} に対応する").click()
    await page.locator(f"#reply-{third}").wait_for(timeout=10_000)
    assert await page.get_by_role("tab", name=f"#{third}").get_attribute("aria-selected") == "true"
    await page.get_by_role("tab", name=f"#{first}").click()
    assert await page.locator(f"#reply-{first}").input_value() == "下書き: 明日また話しましょう"
    stored = await page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie")
    assert "下書き" not in stored

    # While the counselor is on the first chat, the second person writes: the tab counts it, a notification says so.
    await service.line.send_text(users[second], "実は誰にも言えなかったことがあって")
    count = page.locator(f"#tab-{second} [data-unanswered]")
    await count.wait_for(timeout=10_000)
    assert await count.inner_text() == "1"
    # A new person at high risk arrives: notification and the count in the tab title.
    await person(service, "死にたい。毎日死ぬことばかり考えてる")
    for _ in range(100):  # wait_for_function would evaluate a string, which the console's CSP forbids
        notified = await page.evaluate("window.__notified")
        if any("待機中" in n["title"] for n in notified):
            break
        await page.wait_for_timeout(100)
    titles = [n["title"] for n in notified]
    assert f"相談 #{second} に新しいメッセージ" in titles and "待機中の相談者（リスク高）" in titles
    bodies = " ".join(n["title"] + n["body"] for n in notified)
    assert "毎日死ぬこと" not in bodies and "誰にも言えなかった" not in bodies, "a notification never carries the person's words"
    assert (await page.title()).startswith("(2) ")

    # The settings are the staff member's, kept on the server.
    await page.goto(f"{service.url}/console/attention/settings")
    await page.get_by_label("音で知らせる").uncheck()
    await page.get_by_label("待機列の新しい人を知らせる段階").select_option("imminent")
    await page.get_by_role("button", name="保存").click()
    await page.get_by_text("保存しました。").wait_for()
    async with service.app[SESSIONS]() as session:
        saved = await session.get(StaffUser, aoi.id)
    assert (saved.attention_sound, saved.attention_desktop, saved.attention_from_level) == (False, True, RiskLevel.IMMINENT)
    for _ in range(50):  # the count is asked for once the page's event stream is open
        if (await page.title()).startswith("(1) "):
            break
        await page.wait_for_timeout(100)
    assert (await page.title()).startswith("(1) "), "a high-risk person no longer counts once only imminent is asked for"
    await context.close()
