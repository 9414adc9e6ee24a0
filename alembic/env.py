"""Alembic environment: the schema is SQLModel's metadata; runs on a given or a new connection."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Connection
from sqlmodel import SQLModel

from alembic import context
from bot.storage import models  # noqa: F401  (registers every table on SQLModel.metadata)
from bot.storage.crypto import EncryptedBytes, EncryptedJSON, EncryptedText, use_keys
from bot.storage.db import create_engine

target_metadata = SQLModel.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations should not import application code: the UTC wrapper is a plain
    # timezone-aware timestamp at the database level.
    if type_ == "type" and isinstance(obj, models.UTCDateTime):
        return "sa.DateTime(timezone=True)"
    # Encrypted columns hold ciphertext: text or bytes at the database level.
    if type_ == "type" and isinstance(obj, (EncryptedText, EncryptedJSON)):
        return "sa.Text()"
    if type_ == "type" and isinstance(obj, EncryptedBytes):
        return "sa.LargeBinary()"
    return False


def _compare_type(context: Any, inspected: Any, metadata: Any, inspected_type: Any, metadata_type: Any) -> bool | None:
    # SQLite kept the declared types of the columns that became encrypted (migration 22dd41476156):
    # its declared type does not limit what a column stores, and changing it would rebuild tables.
    if context.dialect.name == "sqlite" and isinstance(metadata_type, (EncryptedText, EncryptedJSON)):
        return False
    return None


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        compare_type=_compare_type,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_new_engine() -> None:
    # `alembic` run by hand: the database and keys as the service reads them.
    from bot.settings import StorageSettings

    settings = StorageSettings()
    if settings.encryption_keys is not None:
        use_keys(settings.key_ring())
    engine = create_engine(settings.database)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_with_new_engine())
