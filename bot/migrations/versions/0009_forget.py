"""/forget erases requests too: a request can wait to be erased until it is finished

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 04:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.add_column(sa.Column('erase_when_finished', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('erased_at', sa.DateTime(), nullable=True))
    op.create_table(
        'nlu_removals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('language', sa.String(length=16), nullable=False),
        sa.Column('intent', sa.String(length=64), nullable=False),
        sa.Column('example_hash', sa.String(length=64), nullable=False),
        sa.Column('export_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['export_id'], ['nlu_exports.id'],
                                name=op.f('fk_nlu_removals_export_id_nlu_exports'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_nlu_removals')),
    )


def downgrade() -> None:
    op.drop_table('nlu_removals')
    with op.batch_alter_table('requests') as batch:
        batch.drop_column('erased_at')
        batch.drop_column('erase_when_finished')
