"""ballot secrecy against a copy of the database: sealed ballots, tallies at closing, keyed roll

Ballots of open polls are sealed (AES-GCM under a key derived from the server secret, padded to
one length); ballots of closed polls become `polls.tally` and are deleted; the roll's `voter`
digests and the receipt hashes are keyed with the server secret (bot/keys.py). The secret comes
from LINLI_SECRET_KEY or the data directory's key file, as at run time; it is read only when
there are rows to rewrite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 04:00:00.000000
"""

import secrets
from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _keys():
    from bot.config import load_config
    from bot.keys import ballot_keys

    return ballot_keys(load_config().data_dir)


def _create_ballots(with_option: bool) -> None:
    choice = (sa.Column('option', sa.String(length=48), nullable=False) if with_option
              else sa.Column('sealed', sa.LargeBinary(), nullable=False))
    op.create_table('ballots',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('poll_id', sa.Integer(), nullable=False),
    choice,
    sa.Column('receipt_hash', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['poll_id'], ['polls.id'], name=op.f('fk_ballots_poll_id_polls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ballots')),
    sa.UniqueConstraint('receipt_hash', name=op.f('uq_ballots_receipt_hash')),
    sqlite_with_rowid=False
    )
    op.create_index('ix_ballots_poll', 'ballots', ['poll_id'], unique=False)


def _drop_ballots() -> None:
    op.drop_index('ix_ballots_poll', table_name='ballots')
    op.drop_table('ballots')


def upgrade() -> None:
    connection = op.get_bind()
    with op.batch_alter_table('polls') as batch:
        batch.add_column(sa.Column('tally', sa.JSON(), nullable=True))
    polls = sa.table('polls', sa.column('id', sa.Integer()), sa.column('status', sa.String()),
                     sa.column('options', sa.JSON()), sa.column('tally', sa.JSON()))
    old = connection.execute(sa.text(
        "SELECT id, poll_id, option, receipt_hash FROM ballots")).all()
    voters = connection.execute(sa.text("SELECT id, voter FROM poll_voters")).all()
    keys = _keys() if old or voters else None

    statuses = {row.id: (row.status, row.options) for row in connection.execute(
        sa.select(polls.c.id, polls.c.status, polls.c.options))}
    # Closed polls: counted once, their ballots not carried over.
    for poll_id, (status, options) in statuses.items():
        if status != 'closed':
            continue
        counts = Counter(row.option for row in old if row.poll_id == poll_id)
        connection.execute(polls.update().where(polls.c.id == poll_id).values(
            tally={o['id']: counts.get(o['id'], 0) for o in options}))

    _drop_ballots()
    _create_ballots(with_option=False)
    ballots = sa.table('ballots', sa.column('id', sa.String()), sa.column('poll_id', sa.Integer()),
                       sa.column('sealed', sa.LargeBinary()),
                       sa.column('receipt_hash', sa.String()))
    # Open polls: sealed, written in an order that is not the old one, under fresh random ids.
    fresh = [row for row in old if statuses.get(row.poll_id, ('closed',))[0] != 'closed']
    rows = [{'id': secrets.token_hex(16), 'poll_id': row.poll_id,
             'sealed': keys.seal(row.poll_id, row.option),
             'receipt_hash': keys.receipt_digest(row.receipt_hash) if row.receipt_hash else None}
            for row in fresh]
    rows.sort(key=lambda row: row['id'])
    if rows:
        connection.execute(ballots.insert(), rows)

    roll = sa.table('poll_voters', sa.column('id', sa.Integer()), sa.column('voter', sa.String()))
    for row in voters:
        connection.execute(roll.update().where(roll.c.id == row.id).values(
            voter=keys.roll_digest(row.voter)))


def downgrade() -> None:
    """Back to plain ballots. Open polls' ballots are unsealed; closed polls get one ballot row
    per counted vote again. The keyed digests cannot be undone: roll rows of residents still
    on file get the old SHA-256 again, detached ones keep the keyed digest (a resident who used
    /forget could then vote again), and receipts issued after 0008 no longer change a vote."""
    import hashlib
    import json

    connection = op.get_bind()
    sealed = connection.execute(sa.text("SELECT poll_id, sealed FROM ballots")).all()
    keys = _keys() if sealed else None
    rows = [{'id': secrets.token_hex(16), 'poll_id': row.poll_id,
             'option': keys.unseal(row.poll_id, row.sealed), 'receipt_hash': None}
            for row in sealed]
    for poll in connection.execute(sa.text(
            "SELECT id, tally FROM polls WHERE tally IS NOT NULL")).all():
        tally = poll.tally if isinstance(poll.tally, dict) else json.loads(poll.tally)
        rows += [{'id': secrets.token_hex(16), 'poll_id': poll.id, 'option': option,
                  'receipt_hash': None}
                 for option, count in tally.items() for _ in range(int(count))]
    rows.sort(key=lambda row: row['id'])
    _drop_ballots()
    _create_ballots(with_option=True)
    if rows:
        ballots = sa.table('ballots', sa.column('id', sa.String()),
                           sa.column('poll_id', sa.Integer()), sa.column('option', sa.String()),
                           sa.column('receipt_hash', sa.String()))
        connection.execute(ballots.insert(), rows)
    residents = connection.execute(sa.text(
        "SELECT v.id, r.channel, r.channel_user_id FROM poll_voters v "
        "JOIN residents r ON r.id = v.resident_id")).all()
    roll = sa.table('poll_voters', sa.column('id', sa.Integer()), sa.column('voter', sa.String()))
    for row in residents:
        digest = hashlib.sha256(f"{row.channel}:{row.channel_user_id}".encode()).hexdigest()
        connection.execute(roll.update().where(roll.c.id == row.id).values(voter=digest))
    with op.batch_alter_table('polls') as batch:
        batch.drop_column('tally')
