"""risk flags: the conversation reader's verdict in context, and the words that drove the model

Revision ID: a7c3e9d2b5f1
Revises: 22dd41476156
Create Date: 2026-12-06 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = 'a7c3e9d2b5f1'
down_revision: str | None = '22dd41476156'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('riskflag', schema=None) as batch_op:
        batch_op.add_column(sa.Column('context_level', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        # Encrypted JSON (storage/crypto.py), NULL for the flags raised before the model named its words.
        batch_op.add_column(sa.Column('drivers', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('riskflag', schema=None) as batch_op:
        batch_op.drop_column('drivers')
        batch_op.drop_column('context_level')
