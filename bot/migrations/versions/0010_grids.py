"""Grids (网格): a request remembers the grid of its place, for the grid worker's list

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.add_column(sa.Column('grid_id', sa.String(length=48), nullable=True))
        batch.create_index('ix_requests_grid_status', ['grid_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.drop_index('ix_requests_grid_status')
        batch.drop_column('grid_id')
