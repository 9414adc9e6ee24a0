"""Staff accounts over their life: disabling, one-time codes, sessions, a second factor, parallel guessing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pyotp
import pytest
from conftest import PASSWORD, Console, Service, add_account, run_service
from sqlmodel import select

from bot.appkeys import SESSIONS
from bot.consultation.staff import LOCKED, MAX_FAILED_LOGINS, WRONG, LoginRefused, add_staff, log_in
from bot.storage.db import create_engine, session_factory
from bot.storage.models import AuditEntry, StaffRole, StaffSession, StaffUser


async def account_id(service: Service, login: str) -> int:
    async with service.app[SESSIONS]() as session:
        return (await session.exec(select(StaffUser).where(StaffUser.login == login))).one().id


async def stream_ends(client: Console, then: Callable[[], object], within: float) -> bool:
    """Open the event stream, do `then`, and tell whether the server closed the stream within `within` seconds."""
    async with client.http.get(f"{client.base_url}/console/events") as response:
        assert response.status == 200
        await response.content.readline()  # the stream is open
        await then()
        try:
            async with asyncio.timeout(within):
                while await response.content.readline():
                    pass
        except TimeoutError:
            return False
        return True


async def test_a_disabled_counselor_is_logged_out_everywhere_at_once(service: Service, console) -> None:
    await add_account(service, "aoi")
    await add_account(service, "root", StaffRole.ADMIN)
    counselor, admin = console(), console()
    await counselor.login("aoi")
    await admin.login("root")
    aoi = await account_id(service, "aoi")

    async def disable() -> None:
        await admin.get("/console/admin")
        assert (await admin.post(f"/console/admin/staff/{aoi}/disabled", {"disabled": "yes"}))[0] == 303

    # Well inside the stream's 15-second keepalive: the end is heard, not waited for.
    assert await stream_ends(counselor, disable, within=3), "the open console stops receiving events at once"
    assert (await counselor.get("/console/queue"))[0] == 303
    assert await counselor.login("aoi") == 401, "a disabled account cannot log in"
    await admin.get("/console/admin")
    await admin.post(f"/console/admin/staff/{aoi}/disabled", {"disabled": "no"})
    assert await counselor.login("aoi") == 303
    async with service.app[SESSIONS]() as session:
        # The detail is encrypted: it is compared here, not in SQL.
        audit = [a.action for a in await session.exec(select(AuditEntry).order_by(AuditEntry.id)) if a.detail == "aoi"]
    assert audit == ["account_disabled", "account_enabled"]


async def test_a_reset_password_is_a_one_time_code_then_a_password_of_their_own(service: Service, console) -> None:
    await add_account(service, "aoi")
    await add_account(service, "root", StaffRole.ADMIN)
    counselor, admin = console(), console()
    await counselor.login("aoi")
    await admin.login("root")
    status, page, _ = await admin.post(f"/console/admin/staff/{await account_id(service, 'aoi')}/password")
    assert status == 200
    code = page.split('class="one-time-code">')[1].split("<")[0]
    assert (await counselor.get("/console/queue"))[0] == 303, "the reset ends the sessions the old password opened"
    assert await counselor.login("aoi") == 401, "the old password is gone"
    assert await counselor.login("aoi", code) == 303
    assert (await counselor.get("/console/queue"))[0] == 303, "nothing opens before a new password is chosen"
    status, _ = await counselor.get("/console/password")
    assert status == 200
    assert (await counselor.post("/console/password", {"password": "new password 1", "again": "new password 2"}))[0] == 422
    assert (await counselor.post("/console/password", {"password": code, "again": code}))[0] == 422, "not the code itself"
    assert (await counselor.post("/console/password", {"password": "my own password", "again": "my own password"}))[0] == 303
    assert (await counselor.get("/console/queue"))[0] == 200
    assert await console().login("aoi", code) == 401, "the code worked once"
    assert await console().login("aoi", "my own password") == 303


async def test_an_admin_sees_and_ends_one_session(service: Service, console) -> None:
    await add_account(service, "aoi")
    await add_account(service, "root", StaffRole.ADMIN)
    laptop, tablet, admin = console(), console(), console()
    await laptop.login("aoi")
    await tablet.login("aoi")
    await admin.login("root")
    async with service.app[SESSIONS]() as session:
        first = (await session.exec(select(StaffSession).order_by(StaffSession.created_at))).first()
    _, page = await admin.get("/console/admin")
    assert page.count("/end") == 3 and "127.0.0.1" in page
    assert (await admin.post(f"/console/admin/sessions/{first.token_hash}/end"))[0] == 303
    assert [(await laptop.get("/console/queue"))[0], (await tablet.get("/console/queue"))[0]] == [303, 200]


@pytest.fixture
async def second_factor_service(sqlite_url: str, content) -> AsyncIterator[Service]:
    async with run_service(sqlite_url, content, second_factor=frozenset({StaffRole.COUNSELOR})) as running:
        yield running


async def test_a_counselor_enrols_a_second_factor_and_each_code_works_once(second_factor_service: Service) -> None:
    service = second_factor_service
    await add_account(service, "aoi")
    await add_account(service, "root", StaffRole.ADMIN)
    counselor = Console(service.url)
    admin = Console(service.url)
    try:
        assert await counselor.login("aoi") == 303
        assert (await counselor.get("/console/queue"))[0] == 303, "the password alone opens nothing"
        status, page = await counselor.get("/console/two-factor")
        assert status == 200 and "<svg" in page, "first time: the QR code to enrol"
        secret = page.split('name="secret" value="')[1].split('"')[0]
        totp = pyotp.TOTP(secret)
        assert (await counselor.post("/console/two-factor", {"secret": secret, "code": "000000" if totp.now() != "000000" else "111111"}))[0] == 422
        code = totp.now()
        assert (await counselor.post("/console/two-factor", {"secret": secret, "code": code}))[0] == 303
        assert (await counselor.get("/console/queue"))[0] == 200
        await counselor.post("/console/logout")

        assert await counselor.login("aoi") == 303
        _, page = await counselor.get("/console/two-factor")
        assert "<svg" not in page, "enrolled: only the code is asked"
        assert (await counselor.post("/console/two-factor", {"code": code}))[0] == 422, "a code works once"
        next_code = totp.at(time.time() + totp.interval)  # the next 30-second step, within the allowed drift
        assert (await counselor.post("/console/two-factor", {"code": next_code}))[0] == 303
        assert (await counselor.get("/console/queue"))[0] == 200

        assert await admin.login("root") == 303, "admins are not in this service's second-factor roles"
        await admin.get("/console/admin")
        assert (await admin.post(f"/console/admin/staff/{await account_id(service, 'aoi')}/two-factor"))[0] == 303
        assert (await counselor.get("/console/queue"))[0] == 303, "a lost phone: sessions end"
        await counselor.login("aoi")
        _, page = await counselor.get("/console/two-factor")
        assert "<svg" in page, "and the account enrols again"
    finally:
        await counselor.close()
        await admin.close()


async def test_parallel_wrong_passwords_lock_the_account_after_exactly_the_allowed_number(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            await add_staff(session, "aoi", PASSWORD, StaffRole.COUNSELOR)
            await session.commit()

        async def attempt(password: str) -> str:
            async with sessions() as session:
                try:
                    await log_in(session, "aoi", password, None, ())
                    result = "in"
                except LoginRefused as refused:
                    result = str(refused)
                await session.commit()
                return result

        answers = await asyncio.gather(*(attempt("wrong password") for _ in range(3 * MAX_FAILED_LOGINS)))
        assert answers.count(WRONG) == MAX_FAILED_LOGINS, "exactly the allowed number were checked"
        assert answers.count(LOCKED) == 2 * MAX_FAILED_LOGINS
        assert await attempt(PASSWORD) == LOCKED, "locked even with the right password"
    finally:
        await engine.dispose()
