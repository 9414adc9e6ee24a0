"""Shared fixtures: migrated databases (SQLite and PostgreSQL) and the bot running against the LINE emulator."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.app import init_app
from bot.appkeys import INBOX_WORKER, OUTBOX_SENDER, SESSIONS
from bot.consultation.staff import add_staff
from bot.devtools.emulator import LineEmulator
from bot.guidance.content import Content, load_content
from bot.runner import running
from bot.settings import load_settings
from bot.storage.crypto import KeyRing, generate_key, use_keys
from bot.storage.db import create_engine, upgrade_to_head
from bot.storage.models import Availability, Consultation, StaffRole, StaffUser

REPO = Path(__file__).resolve().parents[1]

# A key made for this test run, in the environment so that every `tsunagi` process a test starts has it
# too; installed here for the tests that use the database without starting the service.
os.environ.setdefault("ENCRYPTION_KEYS", generate_key("test"))
TEST_KEYS = os.environ["ENCRYPTION_KEYS"]
use_keys(KeyRing.parse(TEST_KEYS))
SHARED = REPO.parent / "shared"


def shared_file(*parts: str) -> Path:
    """A file from LINE's reference data beside the repository (`../shared/`), or a clear skip."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not beside this clone; these checks need the project's shared/ folder")
    return path


POSTGRES_URL = os.environ.get("TSUNAGI_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def content() -> Content:
    """The repository's real content files."""
    return load_content(REPO / "content")


async def _fresh_postgres_database() -> tuple[str, str]:
    """Create an empty database beside the configured one; returns (url, name)."""
    admin_dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = f"tsunagi_test_{uuid.uuid4().hex[:12]}"
    try:
        connection = await asyncpg.connect(admin_dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI and is not reachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL} ({exc}); set TSUNAGI_TEST_POSTGRES_URL to run these")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}", name


async def _drop_postgres_database(name: str) -> None:
    admin_dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind, migrated to head by the real migrations."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'tsunagi.db'}"
        name = None
    else:
        url, name = await _fresh_postgres_database()
    await _migrate(url)
    yield url
    if name is not None:
        await _drop_postgres_database(name)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database migrated to head (required under CI, skipped elsewhere without one)."""
    url, name = await _fresh_postgres_database()
    await _migrate(url)
    yield url
    await _drop_postgres_database(name)


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    await upgrade_to_head(engine)
    await engine.dispose()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh, migrated database."""
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


SECRET = "test-channel-secret"
TOKEN = "test-channel-access-token"


@dataclass
class Service:
    """The bot running over real HTTP against the LINE emulator."""

    line: LineEmulator
    line_url: str
    app: web.Application
    url: str
    #: The emulator's data host (LINE's api-data.line.me).
    line_data_url: str = ""


@asynccontextmanager
async def run_service(
    database_url: str,
    content: Content,
    second_factor: frozenset[StaffRole] = frozenset(),
    keys: str = TEST_KEYS,
    **emulator_options: object,
) -> AsyncIterator[Service]:
    """Start the emulator and the bot pointed at each other (the bot encrypting with `keys`); stop both afterwards."""
    emulator = LineEmulator(SECRET, TOKEN, **emulator_options)
    async with running(emulator.app, "127.0.0.1", 0) as line_url, running(emulator.data_app, "127.0.0.1", 0) as line_data_url:
        settings = load_settings(
            line_channel_secret=SECRET,
            line_channel_access_token=TOKEN,
            line_api_base=line_url,
            line_data_base=line_data_url,
            database_url=database_url,
            console_secure_cookies=False,  # tests talk plain HTTP to 127.0.0.1
            # The keyword floor screens alone: service tests stay fast and do not depend on a trained model.
            risk_model_dir="no-risk-model-in-tests",
            # Log-in by password alone except in the tests of the second factor (tests/console/test_accounts.py).
            console_second_factor_roles=second_factor,
            encryption_keys=keys,
        )
        app = init_app(settings, content)
        async with running(app, "127.0.0.1", 0) as bot_url:
            emulator.webhook_url = f"{bot_url}/callback"
            yield Service(emulator, line_url, app, bot_url, line_data_url)


async def settle(service: Service) -> None:
    """Let the workers finish what is in the inbox and the outbox."""
    await service.app[INBOX_WORKER].drain()
    await service.app[OUTBOX_SENDER].drain()


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database migrated to head."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    await _migrate(url)
    return url


@pytest.fixture
async def service(sqlite_url: str, content: Content) -> AsyncIterator[Service]:
    """The bot and the emulator on SQLite."""
    async with run_service(sqlite_url, content) as running_service:
        yield running_service


TSUNAGI = str(Path(sys.executable).parent / "tsunagi")


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start_serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([TSUNAGI, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    async with aiohttp.ClientSession() as client:
        # Up to 2 minutes: importing torch alone takes several seconds on a 2-core machine, far more when it is busy.
        for _ in range(2400):
            try:
                async with client.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    process.kill()
    raise RuntimeError("tsunagi serve did not come up")


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    """Debian's Chromium driven by Playwright (Playwright cannot download browsers here)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required under CI; `make test` installs Debian's chromium")
        pytest.skip("no /usr/bin/chromium; `make browser` installs it")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        yield chromium
        await chromium.close()


# Console helpers: staff accounts and a logged-in HTTP client with a cookie jar.

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


async def held_chat(service: Service, console, login: str = "aoi") -> tuple[str, int, Console]:
    """A LINE user in a chat with a newly made counselor; returns the user, the consultation and the counselor's client."""
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.send_postback(user, "a=category&id=suicidal")
    await settle(service)
    async with service.app[SESSIONS]() as session:
        consultation = (await session.exec(select(Consultation).where(Consultation.user_id == user))).one()
    await add_account(service, login)
    counselor = console()
    await counselor.login(login)
    status, _, _ = await counselor.post(f"/console/c/{consultation.id}/take")
    assert status == 303
    await settle(service)
    return user, consultation.id, counselor


async def log_in(browser, service: Service, login: str, size: dict[str, int] | None = None):
    """A browser page logged in to the console as `login` (an account made by `add_account`)."""
    page = await browser.new_page(viewport=size or {"width": 1366, "height": 768})
    await page.goto(f"{service.url}/console/login")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", PASSWORD)
    await page.get_by_role("button", name="ログイン").click()
    await page.wait_for_load_state("load")
    return page
