"""Live updates (Server-Sent Events) within one process on SQLite and across processes on PostgreSQL,
and taking a chat exactly once when two server processes share PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import asyncpg
import pytest
from conftest import PASSWORD, REPO, SECRET, TOKEN, Console, Service, add_account, free_port, run_service, start_serve
from sqlmodel import select

from bot.app import init_app
from bot.appkeys import SESSIONS
from bot.consultation.staff import add_staff
from bot.devtools.emulator import LineEmulator
from bot.runner import running
from bot.settings import load_settings
from bot.storage.db import create_engine, session_factory
from bot.storage.live import CHANNEL, RESYNC, Hub, postgres_listener
from bot.storage.models import Availability, Consultation, StaffRole


@asynccontextmanager
async def topics(client: Console) -> AsyncIterator[asyncio.Queue[str]]:
    """The topics a logged-in console page hears, as they arrive."""
    heard: asyncio.Queue[str] = asyncio.Queue()
    async with client.http.get(f"{client.base_url}/console/events") as response:
        assert response.status == 200 and response.content_type == "text/event-stream"

        async def read() -> None:
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    heard.put_nowait(line[6:])

        reader = asyncio.create_task(read())
        try:
            yield heard
        finally:
            reader.cancel()


async def hear(heard: asyncio.Queue[str], topic: str, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while await heard.get() != topic:
            pass


async def test_a_console_hears_a_new_request_and_a_new_message_live(service: Service, console) -> None:
    await add_account(service, "aoi")
    counselor = console()
    await counselor.login("aoi")
    async with topics(counselor) as heard:
        user = service.line.add_user().user_id
        await service.line.follow(user)
        await service.line.send_postback(user, "a=category&id=suicidal")
        await hear(heard, "queue")
        async with service.app[SESSIONS]() as session:
            consultation = (await session.exec(select(Consultation))).one()
        await counselor.post(f"/console/c/{consultation.id}/take")
        await service.line.send_text(user, "まだ起きてます")
        await hear(heard, f"consultation:{consultation.id}")


async def test_events_need_a_log_in(service: Service, console) -> None:
    status, _ = await console().get("/console/events")
    assert status == 303


async def test_postgres_processes_hear_each_other(postgres_url: str, content, console) -> None:
    """A request handled by one app reaches a console connected to another, through LISTEN/NOTIFY."""
    async with run_service(postgres_url, content) as first:
        settings = load_settings(line_channel_secret=SECRET, line_channel_access_token=TOKEN, line_api_base=first.line_url, database_url=postgres_url, console_secure_cookies=False, console_second_factor_roles=frozenset())
        async with running(init_app(settings, content), "127.0.0.1", 0) as second_url:
            await add_account(first, "aoi")
            counselor = Console(second_url)
            try:
                await counselor.login("aoi")
                async with topics(counselor) as heard:
                    user = first.line.add_user().user_id
                    await first.line.follow(user)
                    await first.line.send_postback(user, "a=category&id=suicidal")
                    await hear(heard, "queue")
            finally:
                await counselor.close()
        async with aiohttp.ClientSession() as client, client.get(f"{first.url}/healthz") as response:
            assert (await response.json())["live"] == "listening"


@pytest.mark.postgres
async def test_twenty_takes_across_two_server_processes_give_it_to_one(postgres_url: str, content) -> None:
    engine = create_engine(postgres_url)
    async with session_factory(engine)() as session:
        for n in range(20):
            staff = await add_staff(session, f"c{n}", PASSWORD, StaffRole.COUNSELOR)
            staff.availability = Availability.AVAILABLE
        consultation = Consultation(user_id="U" + "0" * 32, category="suicidal", arrived_in_hours=True)
        session.add(consultation)
        await session.commit()
        consultation_id = consultation.id
    line = LineEmulator(SECRET, TOKEN)
    async with running(line.app, "127.0.0.1", 0) as line_url:
        env = {**os.environ, "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN, "LINE_API_BASE": line_url,
               "DATABASE_URL": postgres_url, "CONTENT_DIR": str(REPO / "content"), "CONSOLE_SECURE_COOKIES": "false",
               "CONSOLE_SECOND_FACTOR_ROLES": "[]"}
        ports = [free_port(), free_port()]
        servers = [await start_serve(env, port) for port in ports]
        clients = [Console(f"http://127.0.0.1:{ports[n % 2]}") for n in range(20)]
        try:
            for n, client in enumerate(clients):
                assert await client.login(f"c{n}") == 303
            results = await asyncio.gather(*(c.post(f"/console/c/{consultation_id}/take") for c in clients))
        finally:
            for client in clients:
                await client.close()
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
    assert sorted(status for status, _, _ in results) == [303] + [409] * 19
    async with session_factory(engine)() as session:
        taken = await session.get(Consultation, consultation_id)
    await engine.dispose()
    winner = next(n for n, (status, _, _) in enumerate(results) if status == 303)
    assert taken.counselor_id is not None and taken.status == "active"
    assert f"c{winner}" == (await _login_of(postgres_url, taken.counselor_id))


async def _login_of(url: str, staff_id: int) -> str:
    from bot.storage.models import StaffUser

    engine = create_engine(url)
    async with session_factory(engine)() as session:
        staff = await session.get(StaffUser, staff_id)
    await engine.dispose()
    return staff.login


@pytest.mark.postgres
async def test_the_listen_connection_comes_back_after_the_database_cuts_it(postgres_url: str) -> None:
    hub = Hub()
    admin = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    database = postgres_url.rsplit("/", 1)[1]
    try:
        async with hub.listen() as heard, postgres_listener(postgres_url, hub, check_every=0.5) as listening:
            await admin.execute("SELECT pg_notify($1, 'before')", CHANNEL)
            assert await asyncio.wait_for(heard.get(), 5) == "before"
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
            assert cut == 1, "the LISTEN connection was the only other one"
            for _ in range(100):
                if not listening.up:
                    break
                await asyncio.sleep(0.02)
            assert not listening.up and listening.down_since is not None, "the loss is seen (healthz reports it)"
            assert await asyncio.wait_for(heard.get(), 10) == RESYNC, "pages are told to fetch what they missed"
            assert listening.up
            await admin.execute("SELECT pg_notify($1, 'after')", CHANNEL)
            assert await asyncio.wait_for(heard.get(), 5) == "after"
    finally:
        await admin.close()
