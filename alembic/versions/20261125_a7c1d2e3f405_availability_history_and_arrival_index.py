"""availability history and arrival index

Revision ID: a7c1d2e3f405
Revises: 0618adaded25
Create Date: 2026-11-25 19:01:44.226765
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = 'a7c1d2e3f405'
down_revision: str | None = '0618adaded25'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('availabilitychange',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('availability', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staffuser.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    # Plain CREATE INDEX on both databases: no table copy is needed on SQLite for an index.
    op.create_index(op.f('ix_availabilitychange_at'), 'availabilitychange', ['at'], unique=False)
    op.create_index(op.f('ix_availabilitychange_staff_id'), 'availabilitychange', ['staff_id'], unique=False)
    op.create_index(op.f('ix_consultation_created_at'), 'consultation', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_consultation_created_at'), table_name='consultation')
    op.drop_table('availabilitychange')
