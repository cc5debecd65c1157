"""residents.version: a turn and a staff action on the same resident never overwrite each other

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 10:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('residents') as batch:
        batch.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('residents') as batch:
        batch.drop_column('version')
