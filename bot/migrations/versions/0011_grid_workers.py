"""Grid workers: one-time link codes and linked chats for urgent pushes, and escalations (吹哨报到)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 11:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'staff_link_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('staff_user_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'],
                                name=op.f('fk_staff_link_codes_staff_user_id_staff_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_link_codes')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_staff_link_codes_code_hash')),
    )
    op.create_index('ix_staff_link_codes_staff', 'staff_link_codes', ['staff_user_id'],
                    unique=False)
    op.create_table(
        'staff_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('staff_user_id', sa.Integer(), nullable=False),
        sa.Column('resident_id', sa.Integer(), nullable=False),
        sa.Column('linked_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'],
                                name=op.f('fk_staff_links_staff_user_id_staff_users'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['resident_id'], ['residents.id'],
                                name=op.f('fk_staff_links_resident_id_residents'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_links')),
        sa.UniqueConstraint('staff_user_id', name=op.f('uq_staff_links_staff_user_id')),
    )
    op.create_table(
        'escalations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('from_department_id', sa.String(length=48), nullable=False),
        sa.Column('to_department_id', sa.String(length=48), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                                name=op.f('fk_escalations_request_id_requests'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['to_department_id'], ['departments.id'],
                                name=op.f('fk_escalations_to_department_id_departments')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_escalations')),
    )
    op.create_index('ix_escalations_at', 'escalations', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_escalations_at', table_name='escalations')
    op.drop_table('escalations')
    op.drop_table('staff_links')
    op.drop_index('ix_staff_link_codes_staff', table_name='staff_link_codes')
    op.drop_table('staff_link_codes')
