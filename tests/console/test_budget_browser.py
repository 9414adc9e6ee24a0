"""The month's message budget on the supervisor's page, in a real browser (the README's picture)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Service, add_account, log_in

from bot.storage.models import StaffRole

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def test_supervisors_see_the_month_s_budget_and_its_alert(service: Service, browser) -> None:
    service.line.quota, service.line.consumption = 5000, 4120
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    page = await log_in(browser, service, "boss", {"width": 1366, "height": 768})
    await page.goto(f"{service.url}/console/supervisor")
    budget = page.locator("[data-budget]")
    await budget.wait_for(timeout=10_000)
    assert "4120 / 5000 通（82.4%）。80% を超えました" in await budget.inner_text()
    assert await budget.get_by_role("alert").count() == 1
    await budget.scroll_into_view_if_needed()
    await page.screenshot(path=str(SCREENSHOTS / "console-budget.png"))
