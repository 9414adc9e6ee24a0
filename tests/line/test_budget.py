"""The month's message budget over the emulator: read from LINE (cached), shown to supervisors and admins
with alerts at 80% and 95%, and a 429 for the quota: shown at once, every message kept, replies going on,
and what waits sent once LINE accepts again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from conftest import Service, add_account, held_chat, settle
from sqlmodel import select

from bot.appkeys import BUDGET, OUTBOX_SENDER, SESSIONS, SETTINGS
from bot.storage.models import OutboxMessage, StaffRole


async def health(service: Service) -> dict:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(f"{service.url}/healthz") as response:
        return await response.json()


async def test_the_budget_is_read_once_per_while_and_shown_with_its_alerts(service: Service, console) -> None:
    line = service.line
    line.quota, line.consumption = 1000, 790
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    supervisor = console()
    await supervisor.login("boss")
    _, page = await supervisor.get("/console/supervisor/live")
    assert "790 / 1000 通（79.0%）" in page and "を超えました" not in page
    reads = len([r for r in line.requests if r["endpoint"] == "quota"])
    line.consumption = 960
    _, page = await supervisor.get("/console/supervisor/live")
    assert "790 / 1000" in page, "read from the cache, not from LINE every time"
    assert len([r for r in line.requests if r["endpoint"] == "quota"]) == reads
    budget = await service.app[BUDGET].read(fresh=True)
    assert budget.alert == 0.95
    _, page = await supervisor.get("/console/supervisor/live")
    assert "960 / 1000 通（96.0%）。95% を超えました" in page
    await add_account(service, "root", StaffRole.ADMIN)
    admin = console()
    await admin.login("root")
    _, page = await admin.get("/console/admin")
    assert "960 / 1000 通" in page


async def test_a_spent_quota_holds_pushes_shows_at_once_and_they_go_when_it_is_raised(service: Service, console) -> None:
    line = service.line
    sender = service.app[OUTBOX_SENDER]
    sender._probe_interval = timedelta(seconds=0.2)  # probe often instead of every 30 s
    user, consultation_id, counselor = await held_chat(service, console)
    line.quota = line.consumption  # the month's quota is spent from here
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    supervisor = console()
    await supervisor.login("boss")

    status, _, _ = await counselor.post(f"/console/c/{consultation_id}/send", {"text": "待っていてくれてありがとう。"})
    assert status == 303
    await settle(service)
    assert sender.quota_spent is not None and "monthly limit" in sender.quota_spent
    _, live = await supervisor.get("/console/supervisor/live")
    assert "上限に達し" in live and "保たれ" in live
    assert (await health(service))["outbox_sender"].startswith("pushes held: LINE 429")
    async with service.app[SESSIONS]() as session:
        waiting = [r for r in await session.exec(select(OutboxMessage).where(OutboxMessage.to == user)) if r.status == "pending"]
    assert [r.messages[0]["text"] for r in waiting] == ["待っていてくれてありがとう。"], "kept, words and all"
    # Replies are free: another person is still answered while pushes wait.
    other = line.add_user().user_id
    await line.follow(other)
    await settle(service)
    assert line.messages_for(other)[0]["via"] == "reply"

    line.quota += 100
    async with asyncio.timeout(10):  # until the next probe finds the budget back
        while sender.quota_spent is not None:
            await asyncio.sleep(0.1)
            await settle(service)
    assert line.messages_for(user)[-1]["message"]["text"] == "待っていてくれてありがとう。"
    _, live = await supervisor.get("/console/supervisor/live")
    assert "上限に達し" not in live


async def test_the_report_shares_free_replies_and_counted_pushes_per_category(service: Service, console, content) -> None:
    from datetime import datetime

    from bot.reporting.figures import Deliveries, Period, build_report
    from bot.reporting.html import labels_from_content, report_tables

    line = service.line
    # The greeting and the accepted request go as replies; the counselor's "this is aoi" as a push.
    _, consultation_id, counselor = await held_chat(service, console)
    await counselor.post(f"/console/c/{consultation_id}/send", {"text": "こんばんは。"})  # a push
    await settle(service)
    zone = service.app[SETTINGS].timezone
    today = datetime.now(zone).date()
    async with service.app[SESSIONS]() as session:
        report = await build_report(session, Period(today, today + timedelta(days=1), zone))
    assert report.deliveries == {"guidance": Deliveries(free=2, charged=0), "suicidal": Deliveries(free=0, charged=2)}
    assert line.consumption == 2, "the counted pushes are what LINE counted"
    [table] = [t for t in report_tables(report, labels_from_content(content)) if t.name == "deliveries"]
    assert [row[:4] for row in table.rows] == [["guidance", "ボットの案内", 2, 0], ["suicidal", content.menu.category("suicidal").label, 0, 2]]
    assert str(table.rows[0][4]) == "100.0%"
