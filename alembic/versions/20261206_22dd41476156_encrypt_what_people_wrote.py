"""encrypt what people wrote: text and JSON columns become ciphertext (bot/storage/crypto.py)

Revision ID: 22dd41476156
Revises: 6c04bd2fb3a2
Create Date: 2026-12-06 23:00:00.000000

Every column holding words a person or staff member wrote is rewritten under the current key of
ENCRYPTION_KEYS, in batches by primary key. On PostgreSQL the columns become TEXT first (a JSON
column cannot hold ciphertext). On SQLite the declared type does not limit what a column stores,
and changing it would rebuild tables that others reference, so only the values change there.
A database without rows to convert needs no key; one with rows fails clearly without one.
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa

from alembic import op
from bot.storage.crypto import key_ring

revision: str = '22dd41476156'
down_revision: str | None = '6c04bd2fb3a2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500

# (table, primary key, column, was JSON, its type before, nullable)
COLUMNS = [
    ("inboxevent", "id", "payload", True, sa.JSON(), False),
    ("outboxmessage", "id", "messages", True, sa.JSON(), False),
    ("usermessage", "id", "text", False, sa.String(), True),
    ("staffuser", "id", "totp_secret", False, sa.String(length=64), True),
    ("chatentry", "id", "text", False, sa.String(), True),
    ("auditentry", "id", "detail", False, sa.String(), True),
    ("consultationrecord", "consultation_id", "note", False, sa.String(), True),
    ("referral", "id", "history", True, sa.JSON(), False),
    ("riskflag", "id", "tags", True, sa.JSON(), False),
    ("riskflag", "id", "review_reason", False, sa.String(), True),
    ("emergencyresponse", "id", "assessment", True, sa.JSON(), False),
    ("emergencyresponse", "id", "contacts", True, sa.JSON(), False),
    ("emergencyresponse", "id", "closing_note", False, sa.String(), True),
    ("roomsession", "id", "close_reason", False, sa.String(), True),
    ("roomparticipant", "id", "removed_reason", False, sa.String(), True),
    ("roommessage", "id", "text", False, sa.String(), True),
]


def _rewrite(table_name: str, key: str, column: str, change: Callable[[str], str]) -> None:
    """Apply `change` to every non-NULL value of the column, a batch of rows at a time, in key order."""
    connection = op.get_bind()
    table = sa.table(table_name, sa.column(key, sa.Integer()), sa.column(column, sa.Text()))
    last = None
    while True:
        query = sa.select(table.c[key], table.c[column]).where(table.c[column].is_not(None)).order_by(table.c[key]).limit(BATCH)
        if last is not None:
            query = query.where(table.c[key] > last)
        rows = connection.execute(query).all()
        if not rows:
            return
        connection.execute(
            sa.update(table).where(table.c[key] == sa.bindparam("row_key")).values({column: sa.bindparam("value")}),
            [{"row_key": row_key, "value": change(value)} for row_key, value in rows],
        )
        last = rows[-1][0]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, key, column, was_json, before, nullable in COLUMNS:
        if postgres:
            op.alter_column(table, column, type_=sa.Text(), existing_type=before, existing_nullable=nullable, postgresql_using=f"{column}::text")
        # The ring is asked for only when a value is there to encrypt: an empty database needs no key.
        _rewrite(table, key, column, lambda value: key_ring().encrypt_text(value))


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, key, column, was_json, before, nullable in COLUMNS:
        _rewrite(table, key, column, lambda value: key_ring().decrypt_text(value))
        if postgres:
            using = f"{column}::json" if was_json else column
            op.alter_column(table, column, type_=before, existing_type=sa.Text(), existing_nullable=nullable, postgresql_using=using)
