"""SQL statements and commits a message costs: the webhook's update stored, the turn, its
replies claimed and sent, counted on PostgreSQL for the same residents as bench/load.py.

    .venv/bin/python bench/statements.py [--residents 12] [--messages 20] > statements.md

In one process: a PostgreSQL server (as the tests start one), the fake Bot API server of
tests/, and the Telegram channel in webhook mode with the real NLU model, run by this script's
event loop. Each resident sends its messages one after the other, waiting for the replies to
settle (bench/load.py's script: onboarding, a full report, free text, commands). Every
statement the engine sends is counted (SQLAlchemy's `before_cursor_execute`, plus each COMMIT),
by kind and table; the totals are divided by the messages sent. Background rounds (the outbox
round, news, the election) are counted too: they are part of what a message costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import LANGUAGES, script
from bench.load import free_port as _free_port
from tests.fake_bot_api import FakeBotAPI
from tests.postgres import PostgresServer

TABLE = re.compile(r"^\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM|LISTEN|NOTIFY)\b(?:.*?\bFROM\b)?"
                   r"\s*([a-z_]+)?", re.IGNORECASE | re.DOTALL)
SETTLE = 0.6  # seconds without a new message that end a turn's replies


def shape(statement: str) -> str:
    """"UPDATE outbox", "SELECT residents", "SELECT pg_advisory_xact_lock"…"""
    text = " ".join(statement.split())
    if text.upper().startswith("SELECT PG_"):
        return "SELECT " + text[7:].split("(")[0].lower()
    match = TABLE.match(text)
    if match is None:
        return text.split(" ")[0].upper()
    verb = match.group(1).upper().replace(" INTO", "").replace(" FROM", "")
    return f"{verb} {match.group(2) or ''}".strip()


async def drive(residents: int, messages: int) -> tuple[int, Counter, int]:
    from sqlalchemy import event

    from bot.channels.telegram.channel import TelegramChannel
    from bot.channels.telegram.settings import Settings
    from bot.config import load_config
    from bot.core import Assistant
    from bot.db import Database, sync_catalogue, upgrade
    from bot.wiring import installed_channels
    from nlu.engine import RasaUnderstander

    config = load_config()
    upgrade(config.database_url)
    db = Database(config.database_url)
    sync_catalogue(db, config)
    counts: Counter = Counter()
    commits = 0

    def on_statement(conn, cursor, statement, parameters, context, executemany):
        counts[shape(statement)] += 1

    def on_commit(conn):
        nonlocal commits
        commits += 1

    fake = FakeBotAPI().start()
    port = _free_port()
    settings = Settings(token=fake.token, api_root=fake.root,
                        webhook_url=f"http://127.0.0.1:{port}/{fake.token.split(':')[0]}",
                        webhook_port=port, rate=100000.0)
    assistant = Assistant(config, db, understander=RasaUnderstander(config),
                          channels=installed_channels())
    channel = TelegramChannel(config, db, assistant, settings, push_interval=2.0)
    last_sent = {"at": time.monotonic()}
    fake.on_sent = lambda sent: last_sent.update(at=time.monotonic())
    await channel.start()
    event.listen(db.engine, "before_cursor_execute", on_statement)
    event.listen(db.engine, "commit", on_commit)
    sent = 0

    async def resident(i: int) -> None:
        nonlocal sent
        language = LANGUAGES[i % len(LANGUAGES)]
        code = language.replace("_", "-").lower()
        chat = 20_000 + i
        for kind, value in script(language, messages):
            before = len(fake.sent_to(chat))
            if kind == "text":
                await asyncio.to_thread(fake.send_text, chat, value, code)
            else:
                await asyncio.to_thread(fake.press, chat, value, code)
            sent += 1
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                if len(fake.sent_to(chat)) > before and \
                        time.monotonic() - last_sent["at"] > SETTLE:
                    break

    try:
        await asyncio.gather(*(resident(i) for i in range(residents)))
        await asyncio.sleep(SETTLE)
    finally:
        event.remove(db.engine, "before_cursor_execute", on_statement)
        event.remove(db.engine, "commit", on_commit)
        await channel.stop()
        fake.stop()
        db.dispose()
    return sent, counts, commits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=12)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    server = PostgresServer().start()
    folder = Path(tempfile.mkdtemp(prefix="linli-statements-"))
    os.environ.update({"LINLI_DATABASE_URL": server.new_database(),
                       "LINLI_DATA_DIR": str(folder)})
    try:
        sent, counts, commits = asyncio.run(drive(args.residents, args.messages))
    finally:
        server.stop()
    total = sum(counts.values())
    print(f"{sent} messages from {args.residents} residents: {total / sent:.1f} statements and "
          f"{commits / sent:.1f} commits a message\n")
    print("| statement | per message |\n|---|---|")
    for name, count in counts.most_common():
        print(f"| {name} | {count / sent:.2f} |")


if __name__ == "__main__":
    main()
