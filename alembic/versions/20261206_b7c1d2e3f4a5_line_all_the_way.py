"""LINE, all the way: read tokens of people's messages, outbox categories, delivery counts, images and files

Revision ID: b7c1d2e3f4a5
Revises: fd4654827f26
Create Date: 2026-12-06 22:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = 'b7c1d2e3f4a5'
down_revision: str | None = 'fd4654827f26'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'deliverycount',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('charged', sa.Boolean(), nullable=False),
        sa.Column('messages', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('hour', 'category', 'charged'),
    )
    op.create_table(
        'messagecontent',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column('size', sa.Integer(), nullable=True),
        sa.Column('file_name', sa.Text(), nullable=True),  # encrypted (storage/crypto.py)
        sa.Column('data', sa.LargeBinary(), nullable=True),  # encrypted
        sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['message_id'], ['usermessage.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('message_id'),
    )
    with op.batch_alter_table('usermessage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('read_token', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.drop_column('category')
    with op.batch_alter_table('usermessage', schema=None) as batch_op:
        batch_op.drop_column('read_token')
    op.drop_table('messagecontent')
    op.drop_table('deliverycount')
