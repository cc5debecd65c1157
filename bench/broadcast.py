"""Broadcast: a notice pushed to many Telegram subscribers within Telegram's 30 messages/s.

    .venv/bin/python bench/broadcast.py [--subscribers 10000] [--rate 30] > broadcast.md

Starts PostgreSQL and the fake Bot API server of tests/, creates the subscribers (Telegram
residents subscribed to the notice's topic), adds docs/examples/notice.yml and runs
`linli notices publish ID --rate R` as staff would. Reports the achieved rate (first to last
message the server received), its share of the limit, how long publishing took, and whether
any resident was served twice or not at all.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select

from bot.db import Database
from bot.models import NoticeSubscription, Resident, utcnow
from tests.fake_bot_api import FakeBotAPI
from tests.postgres import PostgresServer

LANGUAGES = ("zh_Hans", "zh_Hant", "en", "mn", "bo", "ug")
FIRST_CHAT = 100_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=30.0)
    args = parser.parse_args()
    server = PostgresServer().start()
    fake = FakeBotAPI().start()
    try:
        url = server.new_database()
        env = {**os.environ, "LINLI_DATABASE_URL": url,
               "LINLI_DATA_DIR": tempfile.mkdtemp(prefix="linli-broadcast-"),
               "LINLI_TELEGRAM_TOKEN": fake.token, "LINLI_TELEGRAM_BASE_URL": fake.root}
        linli = [sys.executable, "-m", "bot.cli"]
        subprocess.run([*linli, "db", "upgrade"], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        notice_file = ROOT / "docs" / "examples" / "notice.yml"
        topic = re.search(r"^topic:\s*(\w+)", notice_file.read_text(), re.MULTILINE).group(1)
        db = Database(url)
        with db.session() as session:
            now = utcnow()
            session.execute(insert(Resident), [
                {"channel": "telegram", "channel_user_id": str(FIRST_CHAT + i),
                 "language": LANGUAGES[i % 6], "flow": "menu", "step": "main", "slots": {},
                 "offered": [], "voice_on": False, "senior_mode": False, "created_at": now,
                 "last_seen_at": now}
                for i in range(args.subscribers)])
            ids = session.execute(select(Resident.id)).scalars().all()
            session.execute(insert(NoticeSubscription), [
                {"resident_id": rid, "topic": topic, "created_at": now} for rid in ids])
        db.dispose()
        added = subprocess.run([*linli, "notices", "add", str(notice_file)], env=env, cwd=ROOT,
                               check=True, capture_output=True, text=True)
        notice_id = re.search(r"notice (\d+) added", added.stdout).group(1)
        started = time.monotonic()
        published = subprocess.run(
            [*linli, "notices", "publish", notice_id, "--rate", str(args.rate)],
            check=False, env=env, cwd=ROOT, capture_output=True, text=True)
        seconds = time.monotonic() - started
        if published.returncode != 0:
            sys.exit(f"publish failed: {published.stderr[-2000:]}")
        sent = [s for s in fake.sent if s.chat_id >= FIRST_CHAT]
        per_chat = Counter(s.chat_id for s in sent)
        span = sent[-1].at - sent[0].at if len(sent) > 1 else 0.0
        rate = (len(sent) - 1) / span if span else 0.0
        twice = sum(1 for n in per_chat.values() if n > 1)
        missing = args.subscribers - len(per_chat)
    finally:
        fake.stop()
        server.stop()
    print("| subscribers | limit /s | messages | achieved /s | share of limit | publish s | "
          "served twice | not served |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.subscribers} | {args.rate:g} | {len(sent)} | {rate:.2f} | "
          f"{rate / args.rate:.1%} | {seconds:.0f} | {twice} | {missing} |")
    print(f"\n{published.stdout.strip()}", file=sys.stderr)


if __name__ == "__main__":
    main()
