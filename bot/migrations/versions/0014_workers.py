"""Several workers on one database: the inbox knows each update's chat

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 13:30:00.000000

`chat_id` lets a turn see whether an older update of the same chat is still waiting (a
resident's turns run in the order they wrote, whichever worker received each), and lets the
elected worker find updates a killed worker had accepted but not run. Rows stored before this
migration have none; they are run as before.
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('channel_inbox') as batch:
        batch.add_column(sa.Column('chat_id', sa.String(length=64), nullable=True))
    op.create_index('ix_channel_inbox_waiting', 'channel_inbox',
                    ['channel', 'processed_at', 'chat_id', 'update_id'])


def downgrade() -> None:
    op.drop_index('ix_channel_inbox_waiting', table_name='channel_inbox')
    with op.batch_alter_table('channel_inbox') as batch:
        batch.drop_column('chat_id')
