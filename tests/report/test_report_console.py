"""The report in the console: the same figures and charts, for supervisors and admins only."""

from __future__ import annotations

from report_sample import fill

from bot.db import create_engine
from bot.models import StaffRole
from conftest import Service, add_account


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
        assert "img-src data:" in response.headers["Content-Security-Policy"]
    assert page.count('src="data:image/png;base64,') >= 4
    assert "2026-11-23" in page
    assert (await supervisor.get("/console/report?from=2026-11-26&to=2026-11-23"))[0] == 400
    assert (await supervisor.get("/console/report?from=yesterday"))[0] == 400
    assert (await supervisor.get("/console/report"))[0] == 200, "today by default"
    assert (await counselor.get("/console/report?from=2026-11-23&to=2026-11-26"))[0] == 403
