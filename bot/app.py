"""Builds the pieces a command needs: config, database (checked to be migrated), assistant."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.config import Config, load_config
from bot.core import Assistant
from bot.db import Database, alembic_config, sync_catalogue
from bot.staff import StaffActions
from bot.wiring import installed_channels


class NotMigrated(Exception):
    """The database is behind the code's migrations."""


def check_migrated(db: Database) -> None:
    script = ScriptDirectory.from_config(alembic_config(db.url))
    with db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current != set(script.get_heads()):
        raise NotMigrated(
            f"the database at {db.engine.url.render_as_string(hide_password=True)} is not up to "
            "date: run `linli db upgrade`"
        )


def build(config: Config | None = None,
          understander=None) -> tuple[Config, Database, Assistant]:
    config = config or load_config()
    db = Database(config.database_url)
    check_migrated(db)
    sync_catalogue(db, config)
    listener = None
    if config.voice.recognition:
        from bot.speech import Recogniser  # loads Whisper at the first voice note, not here

        listener = Recogniser(config)
    return config, db, Assistant(config, db, understander=understander,
                                 channels=installed_channels(), listener=listener)


def staff_actions(assistant: Assistant) -> StaffActions:
    """The staff actions for a command, with the assistant's catalogs and channels."""
    return StaffActions(assistant.config, assistant.catalogs, assistant.channels)
