"""Migrations: they build exactly the tables the models describe, and go down again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from bot.db import Database, sync_catalogue, upgrade
from bot.models import Base, Category


def test_migrations_match_the_models(config):
    upgrade(config.database_url)
    db = Database(config.database_url)
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    db.dispose()
    assert diff == []


def test_downgrade_and_upgrade_again(config):
    upgrade(config.database_url)
    from alembic import command

    from bot.db import alembic_config

    command.downgrade(alembic_config(config.database_url), "base")
    db = Database(config.database_url)
    assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
    upgrade(config.database_url)
    assert "requests" in inspect(db.engine).get_table_names()
    db.dispose()


def test_categories_mirror_config_and_removed_ones_go_inactive(config, db):
    with db.session() as session:
        session.add(Category(id="old_one", department_id="property_office", time_limit_hours=1,
                             names={"en": "Old"}, position=99, active=True))
    sync_catalogue(db, config)
    with db.session() as session:
        rows = {c.id: c for c in session.execute(select(Category)).scalars()}
    assert rows["old_one"].active is False
    assert rows["safety_hazard"].time_limit_hours == 2
    assert rows["facility_repair"].department_id == "property_office"
    assert rows["facility_repair"].names["bo"].startswith("ཉམས་གསོ")
