"""outbox.resident_id may be empty: the reply to /forget outlives the resident it erased

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 06:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.alter_column('resident_id', existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE resident_id IS NULL")
    with op.batch_alter_table('outbox') as batch:
        batch.alter_column('resident_id', existing_type=sa.Integer(), nullable=False)
