"""the staff console: staff accounts, audit log, login attempts, NLU labels and exports

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 02:41:03.391280
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('nlu_exports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('examples', sa.Integer(), nullable=False),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.Column('diff', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nlu_exports'))
    )
    op.create_table('staff_audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=48), nullable=False),
    sa.Column('target', sa.String(length=120), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_audit_log'))
    )
    with op.batch_alter_table('staff_audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_staff_audit_log_at', ['at'], unique=False)

    op.create_table('staff_login_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_login_attempts'))
    )
    with op.batch_alter_table('staff_login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_staff_login_attempts_ip', ['ip', 'at'], unique=False)
        batch_op.create_index('ix_staff_login_attempts_name_ip', ['name', 'ip', 'at'], unique=False)

    op.create_table('staff_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('session_epoch', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_login_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('name', name=op.f('uq_staff_users_name'))
    )
    op.create_table('nlu_labels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('turn_id', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('intent', sa.String(length=64), nullable=True),
    sa.Column('example', sa.Text(), nullable=True),
    sa.Column('labelled_by', sa.String(length=64), nullable=False),
    sa.Column('labelled_at', sa.DateTime(), nullable=False),
    sa.Column('export_id', sa.Integer(), nullable=True),
    sa.Column('exported_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['export_id'], ['nlu_exports.id'], name=op.f('fk_nlu_labels_export_id_nlu_exports'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['turn_id'], ['turns.id'], name=op.f('fk_nlu_labels_turn_id_turns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nlu_labels')),
    sa.UniqueConstraint('turn_id', name=op.f('uq_nlu_labels_turn_id'))
    )
    with op.batch_alter_table('nlu_labels', schema=None) as batch_op:
        batch_op.create_index('ix_nlu_labels_export', ['export_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('nlu_labels', schema=None) as batch_op:
        batch_op.drop_index('ix_nlu_labels_export')

    op.drop_table('nlu_labels')
    op.drop_table('staff_users')
    with op.batch_alter_table('staff_login_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_login_attempts_name_ip')
        batch_op.drop_index('ix_staff_login_attempts_ip')

    op.drop_table('staff_login_attempts')
    with op.batch_alter_table('staff_audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_audit_log_at')

    op.drop_table('staff_audit_log')
    op.drop_table('nlu_exports')
