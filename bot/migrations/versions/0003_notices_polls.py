"""notices and subscriptions; polls with a voter roll, ballots and opinions kept apart

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 02:27:39.827988
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=48), nullable=False),
    sa.Column('texts', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('source', sa.String(length=400), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices'))
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index('ix_notices_published', ['published_at'], unique=False)

    op.create_table('polls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('texts', sa.JSON(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('buildings', sa.JSON(), nullable=False),
    sa.Column('allow_change', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('opens_at', sa.DateTime(), nullable=True),
    sa.Column('closes_at', sa.DateTime(), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('eligible_count', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('source', sa.String(length=400), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_polls'))
    )
    op.create_table('ballots',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('poll_id', sa.Integer(), nullable=False),
    sa.Column('option', sa.String(length=48), nullable=False),
    sa.Column('receipt_hash', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['poll_id'], ['polls.id'], name=op.f('fk_ballots_poll_id_polls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ballots')),
    sa.UniqueConstraint('receipt_hash', name=op.f('uq_ballots_receipt_hash')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('ballots', schema=None) as batch_op:
        batch_op.create_index('ix_ballots_poll', ['poll_id'], unique=False)

    op.create_table('notice_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=48), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_notice_subscriptions_resident_id_residents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_subscriptions')),
    sa.UniqueConstraint('resident_id', 'topic', name='uq_notice_subscriptions_resident_topic')
    )
    with op.batch_alter_table('notice_subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_notice_subscriptions_topic', ['topic'], unique=False)

    op.create_table('poll_opinions',
    sa.Column('id', sa.String(length=12), nullable=False),
    sa.Column('poll_id', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('stance', sa.String(length=48), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('moderation', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['poll_id'], ['polls.id'], name=op.f('fk_poll_opinions_poll_id_polls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_poll_opinions')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('poll_opinions', schema=None) as batch_op:
        batch_op.create_index('ix_poll_opinions_poll', ['poll_id'], unique=False)

    op.create_table('poll_voters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('poll_id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=True),
    sa.Column('voter', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('voted_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['poll_id'], ['polls.id'], name=op.f('fk_poll_voters_poll_id_polls'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_poll_voters_resident_id_residents'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_poll_voters')),
    sa.UniqueConstraint('poll_id', 'resident_id', name='uq_poll_voters_poll_resident'),
    sa.UniqueConstraint('poll_id', 'voter', name='uq_poll_voters_poll_voter')
    )
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('building', sa.String(length=64), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_column('building')

    op.drop_table('poll_voters')
    with op.batch_alter_table('poll_opinions', schema=None) as batch_op:
        batch_op.drop_index('ix_poll_opinions_poll')

    op.drop_table('poll_opinions')
    with op.batch_alter_table('notice_subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_notice_subscriptions_topic')

    op.drop_table('notice_subscriptions')
    with op.batch_alter_table('ballots', schema=None) as batch_op:
        batch_op.drop_index('ix_ballots_poll')

    op.drop_table('ballots')
    op.drop_table('polls')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index('ix_notices_published')

    op.drop_table('notices')
