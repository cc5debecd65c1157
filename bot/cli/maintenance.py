"""`linli db upgrade`, `linli demo seed` and `linli i18n compile`: setting an installation up."""

from __future__ import annotations

import sys

from bot.config import load_config


def cmd_db_upgrade(args) -> int:
    from bot.db import Database, sync_catalogue, upgrade

    config = load_config()
    upgrade(config.database_url)
    db = Database(config.database_url)
    sync_catalogue(db, config)
    db.dispose()
    print("database is up to date", file=sys.stderr)
    return 0


def cmd_demo_seed(args) -> int:
    from bot.app import build
    from bot.demo import grid_worker_passwords, seed, seed_staff

    config, db, _ = build()
    created = seed(db, config)
    name, password = seed_staff(db, config.data_dir)
    db.dispose()
    print("demo community seeded" if created else "demo community already seeded",
          file=sys.stderr)
    print(f"staff console: start it with `.venv/bin/linli console`, then open "
          f"http://{config.console.host}:{config.console.port}/ and log in as {name} "
          f"(admin) with password {password or '(set earlier; see linli staff add-user)'}",
          file=sys.stderr)
    for worker, secret in grid_worker_passwords(config.data_dir):
        print(f"grid worker {worker} (staff, page /grid): password "
              f"{secret or '(set earlier; see linli staff add-user)'}", file=sys.stderr)
    return 0


def cmd_i18n_compile(args) -> int:
    from bot.i18n import compile_catalogs

    config = load_config()
    written = compile_catalogs(config.locales_dir)
    print(f"compiled {len(written)} catalog(s)", file=sys.stderr)
    return 0
