"""Helpers for console tests: staff accounts and a logged-in HTTP client with a cookie jar."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from bot.appkeys import SESSIONS
from bot.console.auth import add_staff
from bot.models import Availability, StaffRole, StaffUser
from conftest import Service

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


async def add_account(
    service: Service, login: str, role: StaffRole = StaffRole.COUNSELOR, *, max_chats: int = 3, available: bool = True
) -> StaffUser:
    """A console account (available to take chats unless told otherwise)."""
    async with service.app[SESSIONS]() as session:
        staff = await add_staff(session, login, PASSWORD, role, f"{login}さん", max_chats)
        if available:
            staff.availability = Availability.AVAILABLE
        await session.commit()
        return staff


class Console:
    """One browser-like client of the console: cookies kept, CSRF token read from the last page."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base_url + path, allow_redirects=False) as response:
            text = await response.text()
        if found := CSRF_FIELD.search(text):
            self.csrf = found.group(1)
        return response.status, text

    async def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True) -> tuple[int, str, str]:
        """POST a form (with the CSRF token unless told not to); returns status, body and redirect target."""
        form = {**(data or {}), **({"csrf": self.csrf} if csrf else {})}
        async with self.http.post(self.base_url + path, data=form, allow_redirects=False) as response:
            return response.status, await response.text(), response.headers.get("Location", "")

    async def login(self, login: str, password: str = PASSWORD) -> int:
        await self.get("/console/login")
        status, _, start_page = await self.post("/console/login", {"login": login, "password": password})
        if status == 303:
            await self.get(start_page)
        return status

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def console(service: Service) -> AsyncIterator[Callable[[], Console]]:
    """Make logged-out console clients for the running service; all closed afterwards."""
    made: list[Console] = []

    def make() -> Console:
        made.append(Console(service.url))
        return made[-1]

    yield make
    for client in made:
        await client.close()
