"""The admin's page over real HTTP: accounts, chat capacity, unlocking and the audit log."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from conftest import Console, Service, add_account, held_chat
from sqlmodel import select

from bot.appkeys import SESSIONS
from bot.storage.models import AuditEntry, StaffRole, StaffUser


async def admin_client(service: Service, console) -> Console:
    await add_account(service, "root", StaffRole.ADMIN)
    admin = console()
    await admin.login("root")
    return admin


async def account(service: Service, login: str) -> StaffUser:
    async with service.app[SESSIONS]() as session:
        return (await session.exec(select(StaffUser).where(StaffUser.login == login))).one()


async def test_the_admin_reads_the_audit_log_in_tokyo_time_and_others_are_refused(service: Service, console) -> None:
    _, consultation_id, counselor = await held_chat(service, console)
    await counselor.get(f"/console/c/{consultation_id}")
    _, other_consultation, _ = await held_chat(service, console, login="midori")
    admin = await admin_client(service, console)
    status, page = await admin.get("/console/admin")
    assert status == 200 and 'data-account="aoi"' in page and 'data-account="midori"' in page
    async with service.app[SESSIONS]() as session:
        opened = (await session.exec(select(AuditEntry).where(AuditEntry.action == "opened_consultation"))).one()
    tokyo = opened.at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y/%m/%d %H:%M:%S")
    assert tokyo in page and "相談を開いた" in page and "aoiさん（aoi）" in page

    aoi = await account(service, "aoi")
    _, filtered = await admin.get(f"/console/admin?consultation={consultation_id}")
    assert "相談を開いた" in filtered and f"#{other_consultation}<" not in filtered
    _, filtered = await admin.get(f"/console/admin?staff={aoi.id}&consultation={other_consultation}")
    assert "記録はありません" in filtered
    _, filtered = await admin.get("/console/admin?staff=x&consultation=%3Cscript%3E")
    assert filtered.count("ログイン</td>") >= 3, "a filter that is not a number narrows nothing"

    assert (await counselor.get("/console/admin"))[0] == 403
    await add_account(service, "coord", StaffRole.COORDINATOR)
    coordinator = console()
    await coordinator.login("coord")
    assert (await coordinator.get("/console/admin"))[0] == 403
    assert (await counselor.post(f"/console/admin/staff/{aoi.id}/max-chats", {"max_chats": "9"}))[0] == 403
    assert (await account(service, "aoi")).max_chats == 3


async def test_the_admin_changes_capacity_and_unlocks_an_account(service: Service, console) -> None:
    await add_account(service, "aoi")
    await add_account(service, "coord", StaffRole.COORDINATOR)
    admin = await admin_client(service, console)
    aoi, coordinator = await account(service, "aoi"), await account(service, "coord")
    assert (await admin.post(f"/console/admin/staff/{aoi.id}/max-chats", {"max_chats": "5"}))[0] == 303
    assert (await account(service, "aoi")).max_chats == 5
    for bad in ("0", "11", "three"):
        assert (await admin.post(f"/console/admin/staff/{aoi.id}/max-chats", {"max_chats": bad}))[0] == 400
    assert (await admin.post(f"/console/admin/staff/{coordinator.id}/max-chats", {"max_chats": "2"}))[0] == 400
    assert (await admin.post("/console/admin/staff/999/max-chats", {"max_chats": "2"}))[0] == 404
    assert (await admin.post(f"/console/admin/staff/{aoi.id}/max-chats", {"max_chats": "4"}, csrf=False))[0] == 403

    intruder = console()
    for _ in range(5):
        assert await intruder.login("aoi", "wrong password") == 401
    assert await console().login("aoi") == 401, "locked"
    _, page = await admin.get("/console/admin")
    assert "ロック中" in page and f"/console/admin/staff/{aoi.id}/unlock" in page
    assert (await admin.post(f"/console/admin/staff/{aoi.id}/unlock"))[0] == 303
    assert await console().login("aoi") == 303
    async with service.app[SESSIONS]() as session:
        changes = [(a.action, a.detail) for a in await session.exec(select(AuditEntry).where(AuditEntry.staff_id != aoi.id).order_by(AuditEntry.id))]
    assert ("max_chats_changed", "aoi: 3 → 5") in changes and ("account_unlocked", "aoi") in changes
    _, page = await admin.get("/console/admin")
    assert "同時対応数を変更" in page and "アカウントのロックを解除" in page and "ログイン失敗によるロック" in page

