"""The report in the console: the same figures and charts, for supervisors and admins only, under the queue health."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from conftest import Service, add_account
from report_sample import fill

from bot.appkeys import SETTINGS
from bot.storage.db import create_engine
from bot.storage.models import StaffRole


async def test_supervisors_see_the_report_for_a_period(service: Service, console, sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    await fill(engine)
    await engine.dispose()
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    await add_account(service, "aoi")
    supervisor, counselor = console(), console()
    await supervisor.login("boss")
    await counselor.login("aoi")
    async with supervisor.http.get(f"{service.url}/console/report?from=2026-11-23&to=2026-11-26") as response:
        page = await response.text()
        assert response.status == 200
        policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert "data:" in policy["img-src"] and "script-src" not in policy and "'unsafe-inline'" not in policy["default-src"]
    assert page.count('src="data:image/png;base64,') >= 4
    assert 'id="chart-staffing"' in page and 'id="table-risk_flags"' in page
    assert "2026-11-23" in page
    assert (await supervisor.get("/console/report?from=2026-11-26&to=2026-11-23"))[0] == 400
    assert (await supervisor.get("/console/report?from=yesterday"))[0] == 400
    assert (await supervisor.get("/console/report"))[0] == 200, "today by default"
    assert (await counselor.get("/console/report?from=2026-11-23&to=2026-11-26"))[0] == 403
    assert (await counselor.get("/console/report/health"))[0] == 403


async def test_the_period_picker_and_the_live_queue_health(service: Service, console) -> None:
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    await add_account(service, "aoi")
    supervisor = console()
    await supervisor.login("boss")
    status, page = await supervisor.get("/console/report?from=2026-11-23&to=2026-11-26&category=poverty")
    assert status == 200
    # A plain GET form keeping what was chosen, and no inline script (the CSP would refuse it).
    assert '<form method="get" action="/console/report"' in page
    assert 'name="from" value="2026-11-23"' in page and 'name="to" value="2026-11-26"' in page
    assert '<option value="poverty" selected>生活困窮</option>' in page and '<option value="">すべて</option>' in page
    assert all('src="' in tag for tag in re.findall(r"<script[^>]*>", page))
    today = datetime.now(service.app[SETTINGS].timezone).date()
    tomorrow = today + timedelta(days=1)
    for name, first in (("今日", today), ("過去7日", today - timedelta(days=6)), ("過去30日", today - timedelta(days=29))):
        assert f'href="/console/report?from={first}&amp;to={tomorrow}&amp;category=poverty">{name}</a>' in page
    # The queue health box is the supervisor's, re-fetched live when the queue changes.
    assert 'data-live="queue" data-src="/console/report/health"' in page
    assert "対応可の相談員: 1" in page and "高リスクで待機中" in page
    status, box = await supervisor.get("/console/report/health")
    assert status == 200 and "最長の待ち: —" in box and "<html" not in box
