"""Volunteers of the 15-minute life circle, and the elderly_help requests offered to them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 10:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'volunteers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('resident_id', sa.Integer(), nullable=False),
        sa.Column('grid_id', sa.String(length=48), nullable=False),
        sa.Column('skills', sa.JSON(), nullable=False),
        sa.Column('times', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('withdrawn_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['resident_id'], ['residents.id'],
                                name=op.f('fk_volunteers_resident_id_residents'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_volunteers')),
        sa.UniqueConstraint('resident_id', name='uq_volunteers_resident_id'),
    )
    op.create_index('ix_volunteers_grid', 'volunteers', ['grid_id'], unique=False)
    op.create_table(
        'volunteer_offers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('volunteer_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('offered_by', sa.String(length=64), nullable=False),
        sa.Column('offered_at', sa.DateTime(), nullable=False),
        sa.Column('answered_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                                name=op.f('fk_volunteer_offers_request_id_requests'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'],
                                name=op.f('fk_volunteer_offers_volunteer_id_volunteers'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_volunteer_offers')),
        sa.UniqueConstraint('request_id', 'volunteer_id',
                            name='uq_volunteer_offers_request_id'),
    )
    op.create_index('ix_volunteer_offers_volunteer', 'volunteer_offers',
                    ['volunteer_id', 'status'], unique=False)
    # First to accept gets the job: the database holds at most one accepted offer a request.
    op.create_index('uq_volunteer_offers_one_accepted', 'volunteer_offers', ['request_id'],
                    unique=True, sqlite_where=sa.text("status = 'accepted'"),
                    postgresql_where=sa.text("status = 'accepted'"))


def downgrade() -> None:
    op.drop_index('uq_volunteer_offers_one_accepted', table_name='volunteer_offers')
    op.drop_index('ix_volunteer_offers_volunteer', table_name='volunteer_offers')
    op.drop_table('volunteer_offers')
    op.drop_index('ix_volunteers_grid', table_name='volunteers')
    op.drop_table('volunteers')
