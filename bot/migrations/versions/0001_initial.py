"""residents, turns, catalogue, requests and their events

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 23:39:59.569178
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('departments',
    sa.Column('id', sa.String(length=48), nullable=False),
    sa.Column('names', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departments'))
    )
    op.create_table('residents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('channel_user_id', sa.String(length=128), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('voice_on', sa.Boolean(), nullable=False),
    sa.Column('senior_mode', sa.Boolean(), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('address', sa.String(length=400), nullable=True),
    sa.Column('flow', sa.String(length=64), nullable=True),
    sa.Column('step', sa.String(length=64), nullable=True),
    sa.Column('slots', sa.JSON(), nullable=False),
    sa.Column('offered', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_residents')),
    sa.UniqueConstraint('channel', 'channel_user_id', name='uq_residents_channel')
    )
    op.create_table('categories',
    sa.Column('id', sa.String(length=48), nullable=False),
    sa.Column('department_id', sa.String(length=48), nullable=False),
    sa.Column('time_limit_hours', sa.Integer(), nullable=False),
    sa.Column('names', sa.JSON(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_categories_department_id_departments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_categories'))
    )
    op.create_table('turns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('payload', sa.String(length=200), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('intent', sa.String(length=64), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('entities', sa.JSON(), nullable=True),
    sa.Column('flow', sa.String(length=64), nullable=True),
    sa.Column('step', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_turns_resident_id_residents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_turns'))
    )
    with op.batch_alter_table('turns', schema=None) as batch_op:
        batch_op.create_index('ix_turns_resident_at', ['resident_id', 'at'], unique=False)

    op.create_table('requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tracking_number', sa.String(length=24), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=True),
    sa.Column('category_id', sa.String(length=48), nullable=False),
    sa.Column('department_id', sa.String(length=48), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('location_text', sa.Text(), nullable=True),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('rated_at', sa.DateTime(), nullable=True),
    sa.Column('duplicate_of_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_requests_category_id_categories')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_requests_department_id_departments')),
    sa.ForeignKeyConstraint(['duplicate_of_id'], ['requests.id'], name=op.f('fk_requests_duplicate_of_id_requests')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_requests_resident_id_residents'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_requests')),
    sa.UniqueConstraint('tracking_number', name=op.f('uq_requests_tracking_number'))
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index('ix_requests_resident_created', ['resident_id', 'created_at'], unique=False)
        batch_op.create_index('ix_requests_status', ['status'], unique=False)

    op.create_table('request_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('previous_status', sa.String(length=16), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('notify', sa.Boolean(), nullable=False),
    sa.Column('notified_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_request_events_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_events'))
    )
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.create_index('ix_request_events_request', ['request_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.drop_index('ix_request_events_request')

    op.drop_table('request_events')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('ix_requests_status')
        batch_op.drop_index('ix_requests_resident_created')

    op.drop_table('requests')
    with op.batch_alter_table('turns', schema=None) as batch_op:
        batch_op.drop_index('ix_turns_resident_at')

    op.drop_table('turns')
    op.drop_table('categories')
    op.drop_table('residents')
    op.drop_table('departments')
