"""Key rotation: every encrypted value re-written under the ring's current key, while the service runs.

`rotate_keys` walks each encrypted column in primary-key order, a batch per short transaction, and
selects only values whose key prefix is not the current key's, so a second run finds nothing and an
interrupted run goes on where it stopped. Each value is replaced by a compare-and-set
(`UPDATE … WHERE id = ? AND value = <the ciphertext read>`): a row the service changed in the
meantime is left alone (the service wrote it under the current key already), so no lock is held
across batches and nothing the service writes is lost, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, LargeBinary, Table, Text, and_, bindparam, column, func, select, table, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from bot.storage import models  # noqa: F401  (registers every table)
from bot.storage.crypto import ENCRYPTED_TYPES, EncryptedBytes, KeyRing

BATCH = 200


@dataclass(frozen=True)
class EncryptedColumn:
    """One encrypted column, seen raw (its ciphertext, not through the decrypting type)."""

    table: str
    key: str
    column: str
    binary: bool

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


def encrypted_columns() -> list[EncryptedColumn]:
    """Every column of the schema whose type encrypts, in a fixed order."""
    found = []
    for model_table in SQLModel.metadata.sorted_tables:
        for model_column in model_table.columns:
            if isinstance(model_column.type, ENCRYPTED_TYPES):
                (key,) = model_table.primary_key.columns
                found.append(EncryptedColumn(model_table.name, key.name, model_column.name, isinstance(model_column.type, EncryptedBytes)))
    return found


def _raw(target: EncryptedColumn) -> tuple[Table, Column, Column]:
    raw = table(target.table, column(target.key), column(target.column, LargeBinary() if target.binary else Text()))
    return raw, raw.c[target.key], raw.c[target.column]


def _not_current(value: Column, ring: KeyRing, binary: bool) -> object:
    prefix: str | bytes = ring.prefix.encode() if binary else ring.prefix
    return and_(value.is_not(None), func.substr(value, 1, len(prefix)) != prefix)


def _reencrypt(ring: KeyRing, binary: bool) -> Callable[[object], object]:
    if binary:
        return lambda stored: ring.encrypt(ring.decrypt(bytes(stored)))
    return lambda stored: ring.encrypt_text(ring.decrypt_text(stored))


async def rotate_column(engine: AsyncEngine, ring: KeyRing, target: EncryptedColumn, batch: int = BATCH) -> int:
    """Re-encrypt the column's values not under the current key; returns how many were rewritten."""
    raw, key, value = _raw(target)
    reencrypt = _reencrypt(ring, target.binary)
    rewritten, last = 0, None
    while True:
        async with engine.begin() as connection:
            query = select(key, value).where(_not_current(value, ring, target.binary)).order_by(key).limit(batch)
            if last is not None:
                query = query.where(key > last)
            rows = (await connection.execute(query)).all()
            if not rows:
                return rewritten
            change = update(raw).where(key == bindparam("row_key"), value == bindparam("seen")).values({target.column: bindparam("fresh")})
            for row_key, stored in rows:
                # A row the service rewrote in the meantime matches nothing: it is under the current key already.
                result = await connection.execute(change, {"row_key": row_key, "seen": stored, "fresh": reencrypt(stored)})
                rewritten += result.rowcount
            last = rows[-1][0]


async def not_current(engine: AsyncEngine, ring: KeyRing, target: EncryptedColumn) -> int:
    """How many of the column's values are not under the current key."""
    _, _, value = _raw(target)
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(value.table).where(_not_current(value, ring, target.binary)))).scalar_one()


async def rotate_keys(engine: AsyncEngine, ring: KeyRing, batch: int = BATCH, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Re-encrypt every encrypted column under the current key; returns the count rewritten per column."""
    counts = {}
    for target in encrypted_columns():
        counts[target.name] = await rotate_column(engine, ring, target, batch)
        if progress is not None:
            progress(target.name, counts[target.name])
    return counts
