"""The admin's list of helplines due to be checked against their source again, over real HTTP."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import REPO, Service, add_account

from bot.guidance.content import STALE_AFTER_DAYS, Content, load_content
from bot.storage.models import StaffRole

OLD = "nenkin_dial"


@pytest.fixture(scope="module")
def content() -> Content:
    """The repository's content with one helpline last checked long ago."""
    base = load_content(REPO / "content")
    resources = [r.model_copy(update={"checked": date(2020, 4, 1)}) if r.id == OLD else r for r in base.resources]
    return base.model_copy(update={"resources": resources})


async def test_the_admin_sees_the_helplines_due_to_be_checked_again(service: Service, console, content: Content) -> None:
    await add_account(service, "root", StaffRole.ADMIN)
    admin = console()
    await admin.login("root")
    _, page = await admin.get("/console/admin")
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    stale = content.stale_resources(today, STALE_AFTER_DAYS)
    assert OLD in {r.id for r in stale}
    assert all(f"<td>{r.id}</td>" in page for r in stale)
    assert f"<td>{(today - date(2020, 4, 1)).days}日</td>" in page
    assert not any(f"<td>{r.id}</td>" in page for r in content.all_resources() if r not in stale)
    await add_account(service, "coord", StaffRole.COORDINATOR)
    coordinator = console()
    await coordinator.login("coord")
    assert (await coordinator.get("/console/admin"))[0] == 403
