"""A `tsunagi serve` process killed with SIGKILL loses nothing and repeats nothing after a restart."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections import Counter
from pathlib import Path

from conftest import REPO, SECRET, TOKEN, free_port, start_serve

from bot.devtools.emulator import LineEmulator
from bot.runner import running


def inbox_states(database: Path) -> Counter[str]:
    with sqlite3.connect(database) as connection:
        return Counter(status for (status,) in connection.execute("SELECT status FROM inboxevent"))


async def test_kill_after_ack_and_before_send_loses_nothing(sqlite_url: str) -> None:
    database = Path(sqlite_url.split("///", 1)[1])
    line = LineEmulator(SECRET, TOKEN)
    async with running(line.app, "127.0.0.1", 0) as line_url:
        port = free_port()
        line.webhook_url = f"http://127.0.0.1:{port}/callback"
        env = {
            **os.environ,
            "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
            "LINE_API_BASE": line_url,
            "DATABASE_URL": sqlite_url,
            "CONTENT_DIR": str(REPO / "content"),
        }
        # LINE is down: whatever the bot processes stays in its outbox.
        line.fail("reply", 500, times=10_000)
        line.fail("push", 500, times=10_000)
        process = await start_serve(env, port)
        users = [line.add_user().user_id for _ in range(10)]
        events = []
        for user in users:
            line.add_user(user).following = True
            events.append(line.event("follow", user, follow={"isUnblocked": False}))
            events.append(line.event("message", user, message={"id": f"m-{user}", "type": "text", "text": "メニュー", "quoteToken": "q"}))
        assert await line.send_events(events) == 200
        process.send_signal(signal.SIGKILL)  # at once: most events are acknowledged but not processed
        process.wait()
        before = inbox_states(database)
        assert sum(before.values()) == len(events), "every acknowledged event was durable"
        assert before["pending"] > 0, "the kill landed between acknowledgement and processing"

        line.clear_faults()
        process = await start_serve(env, port)
        try:
            for user in users:
                await line.wait_for_messages(user, 2, timeout=30)
            await asyncio.sleep(1.5)  # time for any (wrong) second delivery to show
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        assert process.returncode == 0, "SIGTERM stops the service cleanly"
    assert inbox_states(database) == Counter({"done": len(events)})
    for user in users:
        texts = [m["message"]["text"] for m in line.messages_for(user)]
        assert len(texts) == 2, f"{user} got {texts}"
    with sqlite3.connect(database) as connection:
        unsent = connection.execute("SELECT count(*) FROM outboxmessage WHERE status != 'sent'").fetchone()[0]
    assert unsent == 0
