"""Area alerts (应急预警): alerts, who got them and their answers, an outbox priority, and the
staff flags (lives alone, elderly) that put a silent resident on the check list

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'alerts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('texts', sa.JSON(), nullable=False),
        sa.Column('severity', sa.String(length=12), nullable=False),
        sa.Column('grids', sa.JSON(), nullable=False),
        sa.Column('buildings', sa.JSON(), nullable=False),
        sa.Column('check_after_minutes', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('source', sa.String(length=400), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    )
    op.create_table(
        'alert_recipients',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('alert_id', sa.Integer(), nullable=False),
        sa.Column('resident_id', sa.Integer(), nullable=False),
        sa.Column('grid_id', sa.String(length=48), nullable=True),
        sa.Column('building', sa.String(length=64), nullable=True),
        sa.Column('answer', sa.String(length=8), nullable=True),
        sa.Column('answered_at', sa.DateTime(), nullable=True),
        sa.Column('check_reason', sa.String(length=12), nullable=True),
        sa.Column('check_since', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'],
                                name=op.f('fk_alert_recipients_alert_id_alerts'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['resident_id'], ['residents.id'],
                                name=op.f('fk_alert_recipients_resident_id_residents'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_recipients')),
        sa.UniqueConstraint('alert_id', 'resident_id',
                            name='uq_alert_recipients_alert_resident'),
    )
    op.create_index('ix_alert_recipients_alert_grid', 'alert_recipients',
                    ['alert_id', 'grid_id'], unique=False)
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('priority', sa.Integer(), nullable=False,
                                   server_default='0'))
    with op.batch_alter_table('residents') as batch:
        batch.add_column(sa.Column('lives_alone', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('elderly', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('residents') as batch:
        batch.drop_column('elderly')
        batch.drop_column('lives_alone')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('priority')
    op.drop_index('ix_alert_recipients_alert_grid', table_name='alert_recipients')
    op.drop_table('alert_recipients')
    op.drop_table('alerts')
