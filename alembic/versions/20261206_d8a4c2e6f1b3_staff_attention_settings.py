"""staff attention settings: sound, desktop notification, tab title, and the level a counselor is told of

Revision ID: d8a4c2e6f1b3
Revises: 0fa6f0c11ab1
Create Date: 2026-12-06 20:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = 'd8a4c2e6f1b3'
down_revision: str | None = '0fa6f0c11ab1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing accounts get the defaults of a new one (everything on, told of `high` and above).
    with op.batch_alter_table('staffuser') as batch:
        batch.add_column(sa.Column('attention_sound', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column('attention_desktop', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column('attention_title', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column('attention_from_level', sa.String(length=16), nullable=False, server_default='high'))


def downgrade() -> None:
    with op.batch_alter_table('staffuser') as batch:
        batch.drop_column('attention_from_level')
        batch.drop_column('attention_title')
        batch.drop_column('attention_desktop')
        batch.drop_column('attention_sound')
