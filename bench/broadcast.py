"""Broadcast: a notice pushed to many Telegram subscribers within Telegram's 30 messages/s, or
an area alert (--alert) to every resident of a grid.

    .venv/bin/python bench/broadcast.py [--subscribers 10000] [--rate 30] > broadcast.md
    .venv/bin/python bench/broadcast.py --alert [--subscribers 10000] [--outside 1000]

Starts PostgreSQL and the fake Bot API server of tests/, creates the subscribers (Telegram
residents subscribed to the notice's topic), adds docs/examples/notice.yml and runs
`linli notices publish ID --rate R` as staff would. Reports the achieved rate (first to last
message the server received), its share of the limit, how long publishing took, and whether
any resident was served twice or not at all.

With --alert: the residents live in the east grid's buildings (1-4) and `--outside` more in the
west grid's (5, 7, 8), none of them subscribed to anything; `linli alerts send` sends
docs/examples/alert.yml with its target set to the east grid. Reports the same figures, how
long the fan-out (queueing, before the first message) took, and how many residents outside
the area were served (must be 0).
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


def resident_row(i: int, now) -> dict:
    """The i-th simulated Telegram resident, at the main menu, voice off."""
    return {"channel": "telegram", "channel_user_id": str(FIRST_CHAT + i),
            "language": LANGUAGES[i % 6], "flow": "menu", "step": "main", "slots": {},
            "offered": [], "voice_on": False, "senior_mode": False, "created_at": now,
            "last_seen_at": now}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--alert", action="store_true", help="an area alert, not a notice")
    parser.add_argument("--outside", type=int, default=1000,
                        help="with --alert: residents outside the alert's area")
    args = parser.parse_args()
    if args.alert:
        alert(args)
        return
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
            session.execute(insert(Resident), [resident_row(i, now)
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


def alert(args) -> None:
    import yaml

    server = PostgresServer().start()
    fake = FakeBotAPI().start()
    inside = args.subscribers
    try:
        url = server.new_database()
        data_dir = tempfile.mkdtemp(prefix="linli-alert-")
        env = {**os.environ, "LINLI_DATABASE_URL": url, "LINLI_DATA_DIR": data_dir,
               "LINLI_TELEGRAM_TOKEN": fake.token, "LINLI_TELEGRAM_BASE_URL": fake.root}
        linli = [sys.executable, "-m", "bot.cli"]
        subprocess.run([*linli, "db", "upgrade"], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        spec = yaml.safe_load((ROOT / "docs" / "examples" / "alert.yml").read_text("utf-8"))
        spec["target"] = {"grids": ["east"]}
        alert_file = Path(data_dir) / "alert.yml"
        alert_file.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
        db = Database(url)
        with db.session() as session:
            now = utcnow()
            session.execute(insert(Resident), [
                {**resident_row(i, now),
                 "building": f"{1 + i % 4}号楼" if i < inside else f"{(5, 7, 8)[i % 3]}号楼"}
                for i in range(inside + args.outside)])
        db.dispose()
        first: list[float] = []
        fake.on_sent = lambda sent: first or first.append(time.monotonic())
        started = time.monotonic()
        result = subprocess.run(
            [*linli, "alerts", "send", str(alert_file), "--rate", str(args.rate)],
            check=False, env=env, cwd=ROOT, capture_output=True, text=True)
        seconds = time.monotonic() - started
        if result.returncode != 0:
            sys.exit(f"alerts send failed: {result.stderr[-2000:]}")
        fan_out = (first[0] - started) if first else float("nan")
        alerts = [s for s in fake.sent if s.chat_id >= FIRST_CHAT and s.buttons]
        per_chat = Counter(s.chat_id for s in alerts)
        span = alerts[-1].at - alerts[0].at if len(alerts) > 1 else 0.0
        rate = (len(alerts) - 1) / span if span else 0.0
        twice = sum(1 for n in per_chat.values() if n > 1)
        missing = sum(1 for i in range(inside) if FIRST_CHAT + i not in per_chat)
        outside = sum(1 for chat in per_chat if chat >= FIRST_CHAT + inside)
    finally:
        fake.stop()
        server.stop()
    print("| residents in area | outside | limit /s | alerts sent | achieved /s | share of limit "
          "| fan-out s | send s | served twice | not served | outside served |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {inside} | {args.outside} | {args.rate:g} | {len(alerts)} | {rate:.2f} | "
          f"{rate / args.rate:.1%} | {fan_out:.1f} | {seconds:.0f} | {twice} | {missing} | "
          f"{outside} |")
    print(f"\n{result.stdout.strip()}", file=sys.stderr)


if __name__ == "__main__":
    main()
