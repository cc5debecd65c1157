"""Two `linli serve` workers on one PostgreSQL database (issue 16), as real processes.

Telegram's side is the fake Bot API server; this test plays Telegram's webhook itself, handing
each update to the worker it chooses (as a load balancer would), and resending to the other
worker what a dead one did not take (as Telegram resends what was not answered 2xx). Proves:
one resident's turns run, and their replies leave, in the order they wrote, whichever worker
received each update; no update runs twice and no reply is sent twice when either worker is
killed with -9 in the middle (the elected sender, or the other); Telegram's rate limits hold
across both workers (one elected sender paces them).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict

import httpx
import pytest
from sqlalchemy import func, select

from bot.channels.telegram.settings import Settings
from bot.config import PROJECT_ROOT
from bot.db import Database, upgrade
from bot.models import ChannelInbox, OutboxMessage, Resident, Turn
from tests.console_helpers import _free_port
from tests.fake_bot_api import FakeBotAPI

RATE = 8.0  # LINLI_TELEGRAM_RATE for these runs: messages a second for the whole bot
CHATS = [7100 + i for i in range(6)]
MESSAGES = 8  # per resident
JITTER = 2  # messages: see _check_rates


class Worker:
    """One `linli serve --worker` process with its own webhook and console ports."""

    def __init__(self, env: dict, name: str):
        self.name = name
        self.webhook_port, self.console_port = _free_port(), _free_port()
        self.env = {**env, "LINLI_TELEGRAM_WEBHOOK_PORT": str(self.webhook_port),
                    "LINLI_CONSOLE_PORT": str(self.console_port), "LINLI_WORKER": name}
        self.log = open(os.path.join(env["LINLI_DATA_DIR"], f"worker-{name}.log"), "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--worker"], env=self.env,
            cwd=PROJECT_ROOT, stdout=self.log, stderr=subprocess.STDOUT)

    def url(self, settings: Settings) -> str:
        return f"http://127.0.0.1:{self.webhook_port}{settings.webhook_path}"

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                with socket.create_connection(("127.0.0.1", self.webhook_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"worker {self.name} did not start:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name, encoding="utf-8", errors="replace") as text:
            return text.read()[-4000:]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@pytest.fixture
def cluster(postgres, tmp_path, fake):
    """A migrated PostgreSQL database, and the environment two workers share."""
    url = postgres.new_database()
    upgrade(url)
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    env = {**os.environ, "LINLI_DATA_DIR": str(data_dir), "LINLI_DATABASE_URL": url,
           "LINLI_MODELS_DIR": str(tmp_path / "no-models"),
           "LINLI_TELEGRAM_TOKEN": fake.token, "LINLI_TELEGRAM_BASE_URL": fake.root,
           "LINLI_TELEGRAM_WEBHOOK_URL": "https://linli.example.org/" + fake.token.split(":")[0],
           "LINLI_TELEGRAM_RATE": str(RATE), "LINLI_CONSOLE_HOST": "127.0.0.1"}
    env.pop("LINLI_CONFIG", None)
    database = Database(url)
    workers: list[Worker] = []
    yield env, database, workers
    for worker in workers:
        worker.stop()
    database.dispose()


def elected(database: Database, workers: list[Worker], timeout: float = 30) -> Worker:
    """The worker holding the election's advisory lock (bot/cluster.py)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.engine.connect() as connection:
            pid = connection.exec_driver_sql(
                "SELECT a.application_name, l.pid FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.classid = 7002 "
                "AND l.granted").first()
        if pid is not None:
            backends = _backend_pids(database, workers)
            for worker in workers:
                if pid[1] in backends.get(worker.process.pid, ()):
                    return worker
        time.sleep(0.2)
    raise AssertionError("no worker was elected")


def _backend_pids(database: Database, workers: list[Worker]) -> dict[int, set[int]]:
    """PostgreSQL backends by worker process id (matched through the client's TCP port)."""
    with database.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT pid, client_port FROM pg_stat_activity WHERE client_port IS NOT NULL").all()
    found: dict[int, set[int]] = defaultdict(set)
    for worker in workers:
        ports = _local_ports(worker.process.pid)
        for pid, port in rows:
            if port in ports:
                found[worker.process.pid].add(pid)
    return found


def _local_ports(pid: int) -> set[int]:
    """The local TCP ports of a process's sockets (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class Telegram:
    """Telegram's side of the webhook: an update to a chosen worker, and to another if that
    one does not answer 2xx (it is dead), until one does."""

    def __init__(self, fake: FakeBotAPI, settings: Settings):
        self.fake, self.settings = fake, settings
        self.headers = {"X-Telegram-Bot-Api-Secret-Token": settings.secret_token}
        self.taken: Counter = Counter()  # update id → 2xx answers

    def deliver(self, update: dict, workers: list[Worker], first: int) -> None:
        for attempt in range(60):
            worker = workers[(first + attempt) % len(workers)]
            if worker.process.poll() is not None:
                continue
            try:
                answer = httpx.post(worker.url(self.settings), json=update, headers=self.headers,
                                    timeout=10)
                if answer.status_code == 200:
                    self.taken[update["update_id"]] += 1
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"no worker took update {update['update_id']}")


def _wait_until_done(database: Database, expected_turns: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.session() as session:
            waiting = session.execute(select(func.count()).select_from(ChannelInbox).where(
                ChannelInbox.processed_at.is_(None))).scalar_one()
            turns = session.execute(select(func.count()).select_from(Turn).where(
                Turn.direction == "in")).scalar_one()
            unsent = session.execute(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.status.in_(("pending", "sending")))).scalar_one()
        if waiting == 0 and turns >= expected_turns and unsent == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"not done: {waiting} updates waiting, {turns}/{expected_turns} turns, "
                         f"{unsent} replies unsent")


def _talk(fake: FakeBotAPI, telegram: Telegram, workers: list[Worker],
          on_half=None) -> dict[int, list[str]]:
    """Each resident writes MESSAGES numbered notes, one after the other, each to the other
    worker than the last; all residents at once. `on_half` runs once half are delivered."""
    written: dict[int, list[str]] = {chat: [] for chat in CHATS}
    delivered = 0
    lock = threading.Lock()

    def resident(index: int, chat: int) -> None:
        nonlocal delivered
        for n in range(MESSAGES):
            text = f"note {n} from {chat}"
            written[chat].append(text)
            telegram.deliver(fake.text_update(chat, text), workers, first=index + n)
            with lock:
                delivered += 1
                if delivered == len(CHATS) * MESSAGES // 2 and on_half is not None:
                    on_half()
            time.sleep(0.05)

    threads = [threading.Thread(target=resident, args=(i, chat)) for i, chat in enumerate(CHATS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return written


def _turns_in_order(database: Database) -> dict[int, list[str]]:
    with database.session() as session:
        rows = session.execute(
            select(Resident.channel_user_id, Turn.text)
            .join(Turn, Turn.resident_id == Resident.id)
            .where(Turn.direction == "in").order_by(Turn.id)).all()
    turns: dict[int, list[str]] = defaultdict(list)
    for chat, text in rows:
        turns[int(chat)].append(text)
    return turns


def _check_delivery(database: Database, fake: FakeBotAPI) -> Counter:
    """Every reply left once, in the order it was queued in its chat; returns the outbox's
    statuses (a reply whose sending a kill interrupted is `unconfirmed`: never sent again)."""
    with database.session() as session:
        rows = session.execute(
            select(OutboxMessage.chat_id, OutboxMessage.status, OutboxMessage.payload)
            .order_by(OutboxMessage.id)).all()
    statuses = Counter(row.status for row in rows)
    for chat in CHATS:
        queued = [row for row in rows if row.chat_id == str(chat)]
        got = [sent.text for sent in fake.sent_to(chat) if sent.method == "sendMessage"]
        sent = [row.payload["text"] for row in queued if row.status == "sent"]
        unconfirmed = [row.payload["text"] for row in queued if row.status == "unconfirmed"]
        # Nothing twice: what the chat got is what was marked sent, plus at most the
        # unconfirmed ones, in queue order.
        assert len(got) <= len(sent) + len(unconfirmed), (chat, got, sent)
        assert len(got) >= len(sent), (chat, got, sent)
        expected = [row.payload["text"] for row in queued if row.status in ("sent",
                                                                             "unconfirmed")]
        position = 0
        for text in got:  # got is a subsequence of the queue order
            while position < len(expected) and expected[position] != text:
                position += 1
            assert position < len(expected), (chat, got, expected)
            position += 1
    return statuses


def _check_rates(fake: FakeBotAPI) -> None:
    """Telegram's limits, across both workers: at most RATE a second for the bot (bursts of
    RATE), at most one a second per chat (bursts of three). Counted where Telegram counts, on
    arrival, so JITTER messages more are allowed in a window: the sender paces the start of
    each request, and one that waited longer on its way (the first opens the connection)
    arrives closer to the next ones than it left."""
    times = sorted(sent.at for sent in fake.sent)
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            window = times[j] - start
            assert j - i + 1 <= RATE + RATE * window + JITTER, (j - i + 1, window)
    for chat in CHATS:
        stamps = sorted(sent.at for sent in fake.sent_to(chat))
        for i, start in enumerate(stamps):
            for j in range(i, len(stamps)):
                assert j - i + 1 <= 3 + (stamps[j] - start) * 1.0 + JITTER, (chat, j - i + 1)


def _start(env: dict, workers: list[Worker]) -> None:
    workers += [Worker(env, "a"), Worker(env, "b")]
    for worker in workers:
        worker.wait_ready()


@pytest.mark.parametrize("victim", ["elected", "other"])
def test_two_workers_keep_order_and_send_once_across_a_kill(cluster, fake, victim):
    env, database, workers = cluster
    _start(env, workers)
    leader = elected(database, workers)
    target = leader if victim == "elected" else next(w for w in workers if w is not leader)
    telegram = Telegram(fake, Settings(token=fake.token))

    written = _talk(fake, telegram, workers, on_half=target.kill)
    _wait_until_done(database, len(CHATS) * MESSAGES)

    survivor = next(w for w in workers if w is not target)
    assert survivor.process.poll() is None, survivor.output()
    assert elected(database, [survivor]) is survivor  # took over, or kept it
    # Each update ran once, and each resident's turns in the order they wrote.
    assert _turns_in_order(database) == written
    statuses = _check_delivery(database, fake)
    assert set(statuses) <= {"sent", "unconfirmed"}, statuses
    # Only what was on its way when the elected sender was killed: at most one per chat (a
    # chat's next message waits for the one before). Such a row is not sent again (it most
    # likely arrived; Telegram cannot be asked): counted, never doubled.
    assert statuses["unconfirmed"] <= (len(CHATS) if victim == "elected" else 0), statuses
    _check_rates(fake)


def test_with_sqlite_several_workers_are_refused(tmp_path):
    env = {**os.environ, "LINLI_DATA_DIR": str(tmp_path / "var"),
           "LINLI_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'linli.db'}"}
    env.pop("LINLI_CONFIG", None)
    done = subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--workers", "2"],
                          check=False, env=env, cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "several workers need PostgreSQL" in done.stderr


def test_a_sender_taking_over_goes_on_from_the_last_ones_pace():
    """What the last elected sender sent in its last seconds counts against the new one's
    buckets (bot/delivery.py TokenBucket.replay): no fresh burst, no needless pause."""
    from bot.delivery import TokenBucket

    chat = TokenBucket(1.0, 3.0)
    chat.replay([0.0, 0.2, 0.4])  # a burst of three just now: the next waits most of a second
    assert 0.5 < chat.delay() < 0.7
    steady = TokenBucket(30.0, 30.0)
    steady.replay([0.1 * i for i in range(40)])  # 10 a second for 4 s, a third of the rate
    assert steady.delay() == 0.0 and steady.tokens > 27
    fresh = TokenBucket(30.0, 30.0)
    fresh.replay([])
    assert fresh.tokens == 30.0
