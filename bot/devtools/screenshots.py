"""Screenshots of the console for the README, taken from the demo so they stay current.

    python -m bot.devtools.screenshots [OUT_DIR]     # default docs/screenshots

Starts the demo's service and LINE emulator on a throw-away SQLite file, plays a short evening (people
write and choose categories on the emulated phone, a counselor answers one), then drives Debian's
Chromium (`make browser`; Playwright comes with the test extras) through the queue, a chat, the
supervisor's page and the flags page at 1366×768. Nothing here touches a real database.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

from playwright.async_api import Page, async_playwright

from bot.app import init_app
from bot.appkeys import INBOX_WORKER, OUTBOX_SENDER
from bot.devtools.demo import DEMO_PASSWORD, seed_demo_staff
from bot.devtools.emulator import LineEmulator
from bot.guidance.content import load_content
from bot.runner import running
from bot.settings import load_settings
from bot.storage.crypto import DEMO_KEYS
from bot.storage.db import create_engine, upgrade_to_head

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1366, "height": 768}
# (what the person writes first, or nothing; the category they choose: the 24-hour one, open whenever this runs)
EVENING = [
    ("死にたい。毎日死ぬことばかり考えてる", "suicidal"),
    ("", "suicidal"),
    ("最近眠れなくて、誰かと話したい", "suicidal"),
    ("バイト代が入らなくて家賃が払えない。もう消えたい", "suicidal"),
    ("もう無理。今から飛び降りる", "suicidal"),
]


async def _log_in(page: Page, url: str, login: str) -> None:
    await page.goto(f"{url}/console/login")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", DEMO_PASSWORD)
    await page.get_by_role("button", name="ログイン").click()
    await page.wait_for_load_state("load")


async def shoot(out: Path) -> list[Path]:
    """Play the evening and save the four pictures into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        database_url = f"sqlite+aiosqlite:///{scratch}/screenshots.db"
        engine = create_engine(database_url)
        await upgrade_to_head(engine)
        await engine.dispose()
        settings = load_settings(
            line_channel_secret="demo-channel-secret",
            line_channel_access_token="demo-token",
            console_secure_cookies=False,
            database_url=database_url,
            # As in `tsunagi demo`: no second factor for the demo's accounts, the public demo key for made-up people.
            console_second_factor_roles=frozenset(),
            encryption_keys=DEMO_KEYS,
        )
        emulator = LineEmulator(settings.line_channel_secret.get_secret_value(), settings.line_channel_access_token.get_secret_value())
        async with AsyncExitStack() as stack:
            line_url = await stack.enter_async_context(running(emulator.app, "127.0.0.1", 0))
            data_url = await stack.enter_async_context(running(emulator.data_app, "127.0.0.1", 0))
            app = init_app(settings.model_copy(update={"line_api_base": line_url, "line_data_base": data_url}), load_content(settings.content_dir))
            url = await stack.enter_async_context(running(app, "127.0.0.1", 0))
            emulator.webhook_url = f"{url}/callback"
            await seed_demo_staff(settings)

            async def settle() -> None:
                await app[INBOX_WORKER].drain()
                await app[OUTBOX_SENDER].drain()

            people = []
            for text, category in EVENING:
                user = emulator.add_user().user_id
                await emulator.follow(user)
                if text:
                    await emulator.send_text(user, text)
                await emulator.send_postback(user, f"a=category&id={category}")
                await settle()
                people.append(user)

            playwright = await stack.enter_async_context(async_playwright())
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            stack.push_async_callback(browser.close)
            # Each staff member has answered the one-time question about desktop notifications.
            context = await browser.new_context(viewport=VIEWPORT)
            await context.add_init_script("localStorage.setItem('tsunagi-notify-asked', 'yes')")
            counselor = await context.new_page()
            await _log_in(counselor, url, "counselor")
            await counselor.get_by_role("button", name="対応可").click()
            # The counselor answers the third person and the second; the first (high risk) still waits.
            for name in ("#3 に対応する", "#2 に対応する"):
                await counselor.goto(f"{url}/console/queue")
                await counselor.get_by_role("button", name=name).click()
                await counselor.wait_for_url("**/console/c/*")
            await counselor.goto(f"{url}/console/c/3")
            await counselor.fill("#reply-3", "こんばんは、相談員のあおいです。眠れない夜が続いているんですね。")
            await counselor.press("#reply-3", "Control+Enter")
            await settle()
            await emulator.send_text(people[2], "はい。布団に入っても考えごとが止まらなくて")
            await emulator.send_text(people[1], "こんばんは")
            await settle()
            await counselor.fill("#reply-3", "考えごとが止まらないと、つらいですよね。どんなことが浮かんできますか。")
            await counselor.wait_for_timeout(800)
            pictures = [out / "console-chat.png"]
            await counselor.screenshot(path=str(pictures[-1]))
            await counselor.goto(f"{url}/console/queue")
            await counselor.wait_for_timeout(800)
            pictures.append(out / "console-queue.png")
            await counselor.screenshot(path=str(pictures[-1]))

            for login, path, name in (("supervisor", "/console/supervisor", "console-supervisor.png"), ("moderator", "/console/flags", "console-flags.png")):
                page = await context.new_page()
                await page.context.clear_cookies()
                await _log_in(page, url, login)
                await page.goto(url + path)
                await page.wait_for_timeout(800)
                pictures.append(out / name)
                await page.screenshot(path=str(pictures[-1]))
    return pictures


def main() -> None:
    """Entry point: `python -m bot.devtools.screenshots [OUT_DIR]`."""
    for picture in asyncio.run(shoot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))):
        print(picture)


if __name__ == "__main__":
    main()
