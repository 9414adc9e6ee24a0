"""The committed migrations build exactly the schema `bot/storage/models.py` describes, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from bot.storage import models  # noqa: F401  (registers the tables)


async def test_no_model_change_is_missing_a_migration(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": False}), SQLModel.metadata)
        )
    assert differences == []
