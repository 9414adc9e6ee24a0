"""Console log-in: passwords, cookies, CSRF, lock-out, roles, and `tsunagi user add`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from conftest import PASSWORD, Service, add_account
from sqlmodel import select

from bot.appkeys import SESSIONS
from bot.storage.models import AuditEntry, Availability, StaffRole, StaffSession, StaffUser

TSUNAGI = str(Path(sys.executable).parent / "tsunagi")


async def test_log_in_sets_a_strict_http_only_cookie_and_log_out_ends_it(service: Service, console) -> None:
    await add_account(service, "aoi")
    client = console()
    await client.get("/console/login")
    async with client.http.post(
        f"{service.url}/console/login", data={"login": "aoi", "password": PASSWORD, "csrf": client.csrf}, allow_redirects=False
    ) as response:
        assert response.status == 303 and response.headers["Location"] == "/console/queue"
        cookie = next(c for c in response.headers.getall("Set-Cookie") if c.startswith("tsunagi_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    status, page = await client.get("/console/queue")
    assert status == 200 and "aoiさん" in page
    async with service.app[SESSIONS]() as session:
        [stored] = list(await session.exec(select(StaffSession)))
    assert stored.token_hash not in cookie, "only the token's hash is stored"
    assert (await client.post("/console/logout"))[0] == 303
    assert (await client.get("/console/queue"))[0] == 303, "the old cookie no longer opens anything"


async def test_wrong_passwords_lock_the_name_whether_or_not_it_exists(service: Service, console) -> None:
    await add_account(service, "aoi")
    client = console()
    answers = {}
    for name in ("aoi", "nobody"):
        for _ in range(5):
            assert await client.login(name, "wrong password") == 401
        await client.get("/console/login")
        status, page, _ = await client.post("/console/login", {"login": name, "password": PASSWORD})
        assert status == 401
        answers[name] = page.split('role="alert">')[1].split("<")[0]
    assert "しばらくログインできません" in answers["aoi"], "locked even with the right password"
    assert answers["aoi"] == answers["nobody"], "the lock-out does not tell whether the account exists"
    async with service.app[SESSIONS]() as session:
        audit = [a.action for a in await session.exec(select(AuditEntry))]
    assert audit.count("locked_out") == 1


async def test_forms_without_the_csrf_token_are_refused(service: Service, console) -> None:
    await add_account(service, "aoi")
    client = console()
    await client.get("/console/login")
    status, _, _ = await client.post("/console/login", {"login": "aoi", "password": PASSWORD}, csrf=False)
    assert status == 403
    await client.login("aoi")
    status, body, _ = await client.post("/console/availability", {"availability": "offline"}, csrf=False)
    assert status == 403 and "有効期限" in body
    status, _, _ = await client.post("/console/availability", {"availability": "offline", "csrf": "forged"}, csrf=False)
    assert status == 403
    async with service.app[SESSIONS]() as session:
        staff = (await session.exec(select(StaffUser).where(StaffUser.login == "aoi"))).one()
    assert staff.availability == Availability.AVAILABLE, "nothing changed"


async def test_roles_are_checked_on_every_request(service: Service, console) -> None:
    await add_account(service, "aoi")
    await add_account(service, "coord", StaffRole.COORDINATOR)
    anonymous, counselor, coordinator = console(), console(), console()
    assert (await anonymous.get("/console/queue"))[0] == 303
    assert (await anonymous.post("/console/c/1/take", csrf=False))[0] == 401
    await counselor.login("aoi")
    assert (await counselor.get("/console/supervisor"))[0] == 403
    await coordinator.login("coord")
    assert (await coordinator.get("/console/queue"))[0] == 403
    assert (await coordinator.get("/console/c/1"))[0] == 403


def test_user_add_reads_the_password_from_stdin(sqlite_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": sqlite_url}
    added = subprocess.run(
        [TSUNAGI, "user", "add", "midori", "--role", "supervisor", "--display-name", "みどり"],
        input="a long enough password\nignored\n", env=env, capture_output=True, text=True, check=False,
    )
    assert added.returncode == 0, added.stderr
    again = subprocess.run([TSUNAGI, "user", "add", "midori", "--role", "counselor"], input="another password\n", env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    short = subprocess.run([TSUNAGI, "user", "add", "kai", "--role", "counselor"], input="short\n", env=env, capture_output=True, text=True, check=False)
    assert short.returncode == 2 and "8 characters" in short.stderr
    wrong_role = subprocess.run([TSUNAGI, "user", "add", "kai", "--role", "boss"], input="a long enough password\n", env=env, capture_output=True, text=True, check=False)
    assert wrong_role.returncode == 2


async def test_an_account_added_on_the_command_line_can_log_in(sqlite_url: str, service: Service, console) -> None:
    env = {**os.environ, "DATABASE_URL": sqlite_url}  # the database the running service uses
    # Not subprocess.run: the service runs on this event loop and must keep answering meanwhile.
    adding = await asyncio.create_subprocess_exec(
        TSUNAGI, "user", "add", "midori", "--role", "supervisor", env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await adding.communicate(b"a long enough password\n")
    assert adding.returncode == 0, stderr.decode()
    client = console()
    assert await client.login("midori", "a long enough password") == 303
    assert (await client.get("/console/supervisor"))[0] == 200
