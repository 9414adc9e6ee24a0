"""Database engine, sessions and Alembic migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from alembic import command
from bot.storage.after_commit import AfterCommit
from bot.storage.live import Hub

ALEMBIC_DIR = Path(__file__).resolve().parents[2] / "alembic"
UPGRADE_COMMAND = "tsunagi db upgrade"


def create_engine(database_url: str) -> AsyncEngine:
    """Create the async engine, with SQLite tuned for one process with many tasks.

    SQL errors name the statement but never its bound parameters (`hide_parameters`): those are
    what people wrote.

    Args:
        database_url: `sqlite+aiosqlite:///FILE` or `postgresql+asyncpg://...`.
    """
    if database_url.startswith("sqlite"):
        # One connection per process: SQLite has one writer anyway, and tasks queueing for the pool
        # in order is far fairer than SQLite's busy handler, which sleeps in coarse steps under contention.
        engine = create_async_engine(
            database_url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=60, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    return create_async_engine(database_url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun by `_begin_immediate`, not by the driver.
    dbapi_connection.isolation_level = None
    # WAL lets the webhook commit while workers read; NORMAL sync is durable in WAL mode
    # against process crashes, which is what "durable before acknowledged" needs.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    # Other processes (a CLI command, a second server) may share the file. A deferred transaction that
    # reads and then writes fails at once with "database is locked" when another connection wrote in
    # between; taking the write lock up front makes it wait instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(
    engine: AsyncEngine, hub: Hub | None = None, wake_sender: Callable[[], None] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (handlers read them after saving).

    What a transaction `announce`s reaches the console's live pages when it commits (on PostgreSQL
    through NOTIFY, so every process hears it; on SQLite through `hub`); with `wake_sender`, what it
    queued in the outbox is sent at once. The listeners live on a session class of this factory's own.
    """
    session_class = type("TsunagiSession", (Session,), {})
    AfterCommit(hub, wake_sender).install(session_class)
    return async_sessionmaker(engine, class_=AsyncSession, sync_session_class=session_class, expire_on_commit=False)


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Apply every migration not yet applied (Alembic `upgrade head`)."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))


async def pending_migrations(engine: AsyncEngine) -> bool:
    """Whether the database is behind the newest migration (or has none applied)."""
    heads = set(ScriptDirectory.from_config(_alembic_config()).get_heads())
    async with engine.connect() as connection:
        current = await connection.run_sync(
            lambda sync: set(MigrationContext.configure(sync).get_current_heads())
        )
    return current != heads
