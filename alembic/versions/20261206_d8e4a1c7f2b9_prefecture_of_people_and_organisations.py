"""prefecture of people and organisations

Revision ID: d8e4a1c7f2b9
Revises: 63e46e5e2cb0
Create Date: 2026-12-06 20:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = 'd8e4a1c7f2b9'
down_revision: str | None = '63e46e5e2cb0'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('lineuser', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prefecture', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('prefecture_asked', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prefecture', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_organisation_prefecture'), ['prefecture'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisation_prefecture'))
        batch_op.drop_column('prefecture')

    with op.batch_alter_table('lineuser', schema=None) as batch_op:
        batch_op.drop_column('prefecture_asked')
        batch_op.drop_column('prefecture')
