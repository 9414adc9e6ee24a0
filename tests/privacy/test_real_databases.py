"""No demo data in a real database; secrets never printed; SQL errors without what people wrote."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest
from conftest import REPO, TSUNAGI
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.consultation.staff import add_staff
from bot.settings import Settings, load_settings
from bot.storage.db import create_engine, session_factory
from bot.storage.demo_guard import RealDatabaseError, claim_for_demo
from bot.storage.models import DemoDatabase, LineUser, StaffRole, UserMessage, utcnow


async def test_demo_and_simulate_claim_an_empty_database_and_refuse_one_with_real_people(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    async with sessions() as session:
        await claim_for_demo(session, "simulate")
        await add_staff(session, "sim-counselor-1", "simulated counselor", StaffRole.COUNSELOR)
        await session.commit()
    async with sessions() as session:
        await claim_for_demo(session, "demo")  # theirs: marked when it was empty
        assert [mark.claimed_by for mark in await session.exec(select(DemoDatabase))] == ["simulate"]

    # Without the mark (a database the service ran on), the staff account and a LINE user are real people.
    async with sessions() as session:
        await session.exec(delete(DemoDatabase))
        await session.commit()
    async with sessions() as session:
        session.add(LineUser(user_id="U" + "9" * 32))
        await session.commit()
        with pytest.raises(RealDatabaseError, match=r"holds 1 LINE user\(s\) and 1 staff account\(s\) it did not create; nothing was written"):
            await claim_for_demo(session, "demo")
        await session.rollback()
        assert (await session.exec(select(DemoDatabase))).all() == []
    await engine.dispose()


def test_the_simulate_command_says_why_it_refuses_a_real_database(sqlite_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": sqlite_url, "CONTENT_DIR": str(REPO / "content")}

    async def real_counselor() -> None:
        engine = create_engine(sqlite_url)
        async with session_factory(engine)() as session:
            await add_staff(session, "aoi", "a real password", StaffRole.COUNSELOR)
            await session.commit()
        await engine.dispose()

    asyncio.run(real_counselor())
    refused = subprocess.run([TSUNAGI, "simulate", "--days", "1", "--per-day", "5"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 2
    assert "this database holds 0 LINE user(s) and 1 staff account(s) it did not create" in refused.stderr


def test_secrets_are_hidden_and_no_command_prints_the_database_password() -> None:
    settings = load_settings(
        Settings, line_channel_secret="channel-secret-value", line_channel_access_token="token-value",
        database_url="postgresql+asyncpg://tsunagi:pass-word-value@127.0.0.1:1/nowhere",
    )
    shown = f"{settings!r} {settings.model_dump()} {settings.database_shown}"
    assert not any(secret in shown for secret in ("channel-secret-value", "token-value", "pass-word-value"))
    assert settings.database == "postgresql+asyncpg://tsunagi:pass-word-value@127.0.0.1:1/nowhere"
    env = {**os.environ, "DATABASE_URL": settings.database}
    upgrade = subprocess.run([TSUNAGI, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert upgrade.returncode == 2 and "tsunagi:***@127.0.0.1:1/nowhere" in upgrade.stderr
    assert "pass-word-value" not in upgrade.stdout + upgrade.stderr


async def test_sql_errors_do_not_carry_what_people_wrote(database_url: str) -> None:
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        for _ in range(2):
            session.add(UserMessage(user_id="U" + "1" * 32, line_message_id="same", kind="text", text="誰にも見せない言葉", sent_at=utcnow()))
        with pytest.raises(IntegrityError) as error:
            await session.commit()
    assert "誰にも見せない言葉" not in str(error.value) and "hidden" in str(error.value)
    await engine.dispose()
