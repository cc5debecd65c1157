"""channel_inbox: updates stored before they are taken, so a killed process loses none

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 02:51:14.410909
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('channel_inbox',
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('update_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('processed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('channel', 'update_id', name=op.f('pk_channel_inbox'))
    )


def downgrade() -> None:
    op.drop_table('channel_inbox')
