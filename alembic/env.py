"""Alembic environment: the schema is SQLModel's metadata; runs on a given or a new connection."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from sqlalchemy import Connection
from sqlmodel import SQLModel

from alembic import context
from bot.storage import models  # noqa: F401  (registers every table on SQLModel.metadata)
from bot.storage.db import create_engine

target_metadata = SQLModel.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations should not import application code: the UTC wrapper is a plain
    # timezone-aware timestamp at the database level.
    if type_ == "type" and isinstance(obj, models.UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_new_engine() -> None:
    from bot.settings import Settings

    url = os.environ.get("DATABASE_URL") or Settings.model_fields["database_url"].default.get_secret_value()
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_with_new_engine())
