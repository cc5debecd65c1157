"""Database engine, sessions, migrations, and mirroring config.yml's categories into tables."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bot.config import Config
from bot.models import Category, Department

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
T = TypeVar("T")


def _ensure_sqlite_folder(url: str) -> None:
    """The SQLite file's folder, and the file itself readable by its owner only (0600): it is
    created empty with that mode before SQLite opens it (SQLite would make it 0644), and an
    existing file is narrowed to it. SQLite gives its journal the database file's mode."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(path, 0o600)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        _ensure_sqlite_folder(url)
        engine = create_engine(url, future=True, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - driver hook
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Deleted rows (withdrawn and counted ballots, wiped outbox text) are overwritten
            # with zeros in the file, not left in free space for a copy of it to show.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    return create_engine(url, future=True, pool_pre_ping=True)


# Namespaces of PostgreSQL advisory locks (the first of their two keys).
TURN_LOCKS = 7001  # one resident's turns, across workers (bot.core.Assistant)
LEADER_LOCK = 7002  # the elected worker (bot.cluster.Leadership)
CATALOGUE_LOCK = 7003  # mirroring config.yml's catalogue: workers starting together


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, future=True, expire_on_commit=False)
        # PostgreSQL may be shared by several worker processes (`linli serve --workers`);
        # SQLite is the embedded single-process default.
        self.shared = self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def run(self, work: Callable[[Session], T], attempts: int = 3) -> T:
        """`work` in a unit of work of its own; run again in a fresh one when a row it changed
        was changed by someone else meanwhile (a resident's turn, see Resident.version)."""
        for attempt in range(1, attempts):
            try:
                with self.session() as session:
                    return work(session)
            except StaleDataError:
                log.info("a row changed under a unit of work: running it again (attempt %d)",
                         attempt + 1)
        with self.session() as session:
            return work(session)

    def dispose(self) -> None:
        self.engine.dispose()


def lock_for_transaction(session: Session, namespace: int, key: str) -> None:
    """Waits for, then holds until the transaction ends, the lock on `key` that every process
    sharing this PostgreSQL database respects (nothing on SQLite: one process only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(namespace, func.hashtext(key))))


def alembic_config(url: str):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Applies the Alembic migrations up to `revision`."""
    from alembic import command

    _ensure_sqlite_folder(url)
    command.upgrade(alembic_config(url), revision)


def sync_catalogue(db: Database, config: Config) -> None:
    """Mirrors departments and categories from config.yml; ones no longer listed go inactive.
    Workers starting at the same moment take turns (else both would insert the same rows)."""
    with db.session() as session:
        lock_for_transaction(session, CATALOGUE_LOCK, "catalogue")
        departments = {d.id: d for d in session.execute(select(Department)).scalars()}
        for dep in config.departments:
            row = departments.get(dep.id) or Department(id=dep.id)
            row.names, row.active = dict(dep.names), True
            session.add(row)
        for dep_id, row in departments.items():
            if dep_id not in {d.id for d in config.departments}:
                row.active = False
        session.flush()
        categories = {c.id: c for c in session.execute(select(Category)).scalars()}
        for position, cat in enumerate(config.categories):
            row = categories.get(cat.id) or Category(id=cat.id)
            row.department_id = cat.department
            row.time_limit_hours = cat.time_limit_hours
            row.names = dict(cat.names)
            row.position = position
            row.active = True
            session.add(row)
        for cat_id, row in categories.items():
            if cat_id not in {c.id for c in config.categories}:
                row.active = False
