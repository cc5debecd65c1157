"""Ballot secrecy against someone holding the raw data (docs/polls.md, threat model).

Forty residents vote in a known order; then an attacker with the SQLite file, or PostgreSQL's
pages (ctid, xmin), `pg_dump` and write-ahead log, and the logs, tries every ordering signal to
pair ballots with the roll and read the choices. Also: the roll's digest is keyed, a receipt
typed at any step is handled before the log and the NLU, opinions and stances stay out of the
turn log, no counts while a poll is open, the SQLite file is 0600, and free text at a poll's
"which option?" step is read against the step (an opinion is kept, not lost).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import sqlite3
import stat
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from bot.config import PROJECT_ROOT
from bot.core import Assistant
from bot.db import Database
from bot.keys import BallotKeys, ballot_keys
from bot.models import Ballot, Poll, PollOpinion, PollVoter, Turn, utcnow
from bot.services import polls as poll_service
from bot.specs import load_poll
from tests.conftest import Chat, run_cli
from tests.console_helpers import add_staff, console, logged_in

RECEIPT = re.compile(r"[A-Z2-9]{5}-[A-Z2-9]{5}")
# The example poll's options under ids found nowhere else, of three lengths (a ciphertext that
# is not padded would tell them apart by its length).
OPTIONS = {"east_gate": "shed_by_the_east_gate", "building_5": "shed_behind_b5",
           "none": "no_shed"}
LANGUAGES = ("zh_Hans", "en", "mn", "ug", "bo", "zh_Hant")
VOTERS = 40
MARGIN = 0.1  # above the share of the most common choice: what a lucky guess could reach


def open_poll(config, db, tmp_path: Path, allow_change: bool = True) -> tuple[int, dict]:
    """The example poll with OPTIONS' ids, open now; returns its id and labels per option."""
    data = yaml.safe_load((PROJECT_ROOT / "docs" / "examples" / "poll.yml")
                          .read_text(encoding="utf-8"))
    data.pop("opens")
    data["closes"] = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    data["allow_change"] = allow_change
    for option in data["options"]:
        option["id"] = OPTIONS[option["id"]]
    path = tmp_path / "poll.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with db.session() as session:
        poll_id = poll_service.add(session, load_poll(path, config)).id
        poll_service.open_poll(session, poll_id)
    return poll_id, {o["id"]: o["text"] for o in data["options"]}


def bare_choices(data: bytes) -> Counter:
    """Each option id where it is neither a button's payload ("vote:<id>", listed for every
    option alike) nor the poll's own list of options: plain text only a ballot or a count
    could have left."""
    found: Counter = Counter()
    for option in OPTIONS.values():
        for match in re.finditer(re.escape(option.encode()), data):
            before = data[max(0, match.start() - 8):match.start()]
            if not before.endswith((b"vote:", b'"id": "', b'"id":"')):
                found[option] += 1
    return found


def bare_places(data: bytes) -> list[bytes]:
    """Where bare_choices found them, with the bytes around (for the failure message)."""
    return [data[max(0, m.start() - 60):m.end() + 20] for option in OPTIONS.values()
            for m in re.finditer(re.escape(option.encode()), data)
            if not data[max(0, m.start() - 8):m.start()].endswith((b"vote:", b'"id": "',
                                                                     b'"id":"'))]


def read_choice(values: list, length_rank: int | None) -> str:
    """What the attacker makes of one ballot: a plain option id in any of its values, else the
    option whose id has the same length rank as this ballot's choice column (an unpadded
    ciphertext is as long as its plaintext plus a constant)."""
    for value in values:
        raw = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
        for option in OPTIONS.values():
            if option.encode() in raw:
                return option
    by_length = sorted(OPTIONS.values(), key=len)
    return by_length[min(length_rank or 0, len(by_length) - 1)]


def length_ranks(ballots: list[dict], column: str) -> dict[str, int]:
    sizes = sorted({len(bytes(b[column]) if not isinstance(b[column], str)
                        else b[column].encode()) for b in ballots})
    return {b["id"]: sizes.index(len(bytes(b[column]) if not isinstance(b[column], str)
                                     else b[column].encode())) for b in ballots}


def choice_column(columns: list[str]) -> str:
    return next(c for c in columns if c not in ("id", "poll_id", "receipt_hash"))


def best_accuracy(signals: dict[str, list[str]], truth: list[str]) -> tuple[float, str]:
    """The attacker's best signal, judged with hindsight (an upper bound on what they learn)."""
    scores = {name: sum(p == t for p, t in zip(predicted, truth)) / len(truth)
              for name, predicted in signals.items()}
    name = max(scores, key=scores.get)
    return scores[name], name


def vote_forty(assistant: Assistant, poll_id: int) -> tuple[dict[str, str], list[str]]:
    """40 residents vote in a known order (18/14/8 over the options, shuffled); every eighth
    then changes their vote with the receipt, typed at the main menu amid other words or at the
    receipt step. Returns each voter's final choice and every receipt shown."""
    ids = list(OPTIONS.values())
    choices = [ids[0]] * 18 + [ids[1]] * 14 + [ids[2]] * 8
    random.Random(VOTERS).shuffle(choices)
    truth, receipts, chats = {}, {}, {}
    for i, choice in enumerate(choices):
        user = f"voter-{i:02d}"
        resident = Chat(assistant, user)
        resident.onboard(LANGUAGES[i % len(LANGUAGES)])
        resident.send(f"/start poll_{poll_id}")
        resident.press_payload(f"vote:{choice}")
        receipts[user] = RECEIPT.search(resident.text).group()
        truth[user], chats[user] = choice, resident
    spent = list(receipts.values())
    for n, user in enumerate(list(truth)[3::8]):
        resident = chats[user]
        if n % 2:
            resident.send("/menu")
            resident.send(f"I want to change my vote, my code is {receipts[user].lower()}")
        else:
            resident.send(f"/start poll_{poll_id}")
            resident.press_payload("p:change")
            resident.send(receipts[user].replace("-", " "))
        new = ids[(ids.index(truth[user]) + 1) % len(ids)]
        assert f"vote:{new}" in resident.payloads, resident.text
        resident.press_payload(f"vote:{new}")
        truth[user] = new
        spent.append(RECEIPT.search(resident.text).group())
    return truth, spent


def roll_truth(db: Database, poll_id: int, truth: dict[str, str]) -> list[str]:
    """Each roll row's voter's real choice, in the roll's own order (its ids)."""
    from bot.models import Resident

    with db.session() as session:
        users = session.execute(
            select(Resident.channel_user_id).join(PollVoter, PollVoter.resident_id == Resident.id)
            .where(PollVoter.poll_id == poll_id).order_by(PollVoter.id)).scalars().all()
    return [truth[user] for user in users]


def sqlite_attack(path: Path, poll_id: int, roll_size: int) -> tuple[dict, list[dict], bytes]:
    """Every ordering signal in the SQLite file: byte offsets of each ballot's cells (the table
    and its index, both directions), rowids where there are any, and the keys' own order."""
    raw = path.read_bytes()
    copy = path.with_name("attacker-copy.db")
    copy.write_bytes(raw)
    connection = sqlite3.connect(copy)
    columns = [row[1] for row in connection.execute("PRAGMA table_info(ballots)")]
    ballots = [dict(zip(columns, row)) for row in connection.execute(
        "SELECT * FROM ballots WHERE poll_id = ?", (poll_id,))]
    try:
        rowids = dict(connection.execute("SELECT id, rowid FROM ballots").fetchall())
    except sqlite3.OperationalError:  # WITHOUT ROWID
        rowids = {}
    connection.close()
    copy.unlink()
    column = choice_column(columns)
    ranks = length_ranks(ballots, column)
    offsets = {b["id"]: [m.start() for m in re.finditer(b["id"].encode(), raw)] for b in ballots}
    orders = {"key": sorted(ballots, key=lambda b: b["id"])}
    if rowids:
        orders["rowid"] = sorted(ballots, key=lambda b: rowids[b["id"]])
    for k in range(max((len(o) for o in offsets.values()), default=0)):
        def at(b, k=k):
            found = offsets[b["id"]]
            return found[k] if k < len(found) else -1
        orders[f"cell {k} ascending"] = sorted(ballots, key=at)
        orders[f"cell {k} descending"] = sorted(ballots, key=at, reverse=True)
    # Page by page: a page that holds most ballots' entries (the table's or an index's only
    # leaf) has them at lower offsets the later they were written.
    page_size = int.from_bytes(raw[16:18], "big") or 65536
    pages = Counter(offset // page_size for found in offsets.values() for offset in found)
    for page, count in pages.items():
        if count < roll_size // 2:
            continue
        def in_page(b, page=page):
            return max((o for o in offsets[b["id"]] if o // page_size == page), default=-1)
        orders[f"page {page} ascending"] = sorted(ballots, key=in_page)
        orders[f"page {page} descending"] = sorted(ballots, key=in_page, reverse=True)
    signals = {}
    for name, ordered in orders.items():
        predicted = []
        for ballot in ordered[:roll_size]:
            start = offsets[ballot["id"]][0] if offsets[ballot["id"]] else 0
            near = raw[start:start + 160]  # the record's own bytes follow its key
            predicted.append(read_choice([*ballot.values(), near], ranks[ballot["id"]]))
        signals[name] = predicted
    return signals, ballots, raw


def pg_url(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://")


def pg_dump(url: str) -> str:
    from tests.postgres import _binary

    done = subprocess.run([_binary("pg_dump"), "--data-only", "--dbname", pg_url(url)],
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


WAL_PAGE = 8192
WAL_HEADERS = (40, 24)  # a segment's first page has the long page header, the others the short


def pg_wal(server) -> bytes:
    """The write-ahead log's records as one stream: each 8 kB page without its header, so that
    a record cut by a page boundary reads whole again."""
    folder = server.folder / "data" / "pg_wal"
    stream = []
    for path in sorted(folder.iterdir()):
        if not re.fullmatch(r"[0-9A-F]{24}", path.name):
            continue
        data = path.read_bytes()
        for start in range(0, len(data), WAL_PAGE):
            stream.append(data[start + WAL_HEADERS[start > 0]:start + WAL_PAGE])
    return b"".join(stream)


def pg_attack(url: str, poll_id: int, dump: str) -> tuple[dict, list[dict]]:
    """Every ordering signal PostgreSQL keeps: heap order (ctid), the writing transaction
    (xmin, also matched to the roll row written in the same transaction), the keys' order and
    the order of pg_dump's COPY lines."""
    import psycopg2

    connection = psycopg2.connect(pg_url(url))
    with connection.cursor() as cursor:
        cursor.execute("SELECT column_name FROM information_schema.columns "
                       "WHERE table_name = 'ballots' ORDER BY ordinal_position")
        columns = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT ctid::text, xmin::text::bigint, * FROM ballots "
                       "WHERE poll_id = %s", (poll_id,))
        ballots = [{"ctid": tuple(int(x) for x in row[0].strip("()").split(",")),
                    "xmin": row[1], **dict(zip(columns, row[2:]))} for row in cursor.fetchall()]
        cursor.execute("SELECT xmin::text::bigint FROM poll_voters WHERE poll_id = %s "
                       "ORDER BY id", (poll_id,))
        roll_xmins = [row[0] for row in cursor.fetchall()]
    connection.close()
    column = choice_column(columns)
    ranks = length_ranks(ballots, column)

    def choice(ballot):
        values = [v for k, v in ballot.items() if k not in ("ctid", "xmin")]
        return read_choice(values, ranks[ballot["id"]])

    orders = {
        "ctid": sorted(ballots, key=lambda b: b["ctid"]),
        "xmin": sorted(ballots, key=lambda b: b["xmin"]),
        "key": sorted(ballots, key=lambda b: b["id"]),
        "pg_dump": sorted(ballots, key=lambda b: dump.find(b["id"])),
    }
    signals = {name: [choice(b) for b in ordered[:len(roll_xmins)]]
               for name, ordered in orders.items()}
    by_xmin = {b["xmin"]: b for b in ballots}
    signals["same transaction as the roll row"] = [
        choice(by_xmin[x]) if x in by_xmin else choice(min(
            ballots, key=lambda b: abs(b["xmin"] - x))) for x in roll_xmins]
    return signals, ballots


def test_forty_ballots_cannot_be_linked_to_their_voters_from_the_raw_data(
        config, db, env, tmp_path, caplog, request):
    postgres = config.database_url.startswith("postgresql")
    server = request.getfixturevalue("postgres") if postgres else None
    poll_id, labels = open_poll(config, db, tmp_path)
    wal_before = bare_choices(pg_wal(server)) if postgres else Counter()
    caplog.set_level(logging.DEBUG)

    truth, receipts = vote_forty(Assistant(config, db), poll_id)

    logged = caplog.text
    for secret in [*receipts, *OPTIONS.values(),
                   *(label["en"] for label in labels.values())]:
        assert secret not in logged, secret
    in_roll_order = roll_truth(db, poll_id, truth)
    assert len(in_roll_order) == VOTERS
    chance = max(Counter(in_roll_order).values()) / VOTERS
    if postgres:
        dump = pg_dump(config.database_url)
        signals, ballots = pg_attack(config.database_url, poll_id, dump)
        assert bare_choices(dump.encode()) == Counter(), "a choice in plain text in pg_dump"
        wal = pg_wal(server)
        assert bare_choices(wal) - wal_before == Counter(), \
            f"a choice in plain text in the write-ahead log: {bare_places(wal)}"
    else:
        path = Path(config.database_url.removeprefix("sqlite:///"))
        signals, ballots, raw = sqlite_attack(path, poll_id, VOTERS)
        assert bare_choices(raw) == Counter(), "a choice in plain text in the database file"
    assert len(ballots) == VOTERS
    column = choice_column(list(ballots[0]))
    assert len({len(bytes(b[column])) for b in ballots}) == 1, "ballot lengths differ"
    accuracy, signal = best_accuracy(signals, in_roll_order)
    assert accuracy <= chance + MARGIN, (signal, accuracy, chance)

    # No counts while open, in the CLI either; at closing the tally, and the ballots are gone.
    shown = run_cli(env, "polls", "results", str(poll_id))
    assert shown.returncode == 0, shown.stderr
    assert "counts: none while the poll is open" in shown.stdout
    assert not re.search(r"^\s+\S+\t\d+\t", shown.stdout, flags=re.MULTILINE)
    closed = run_cli(env, "polls", "close", str(poll_id))
    assert closed.returncode == 0, closed.stderr
    shown = run_cli(env, "polls", "results", str(poll_id)).stdout
    for option, count in Counter(truth.values()).items():
        assert re.search(rf"^\s+{option}\t{count}\t", shown, flags=re.MULTILINE), shown
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(Ballot)).scalar_one() == 0
        assert session.get(Poll, poll_id).tally == dict(Counter(truth.values()))
    if not postgres:  # secure_delete: the counted ballots are zeroed in the file, not freed
        raw = path.read_bytes()
        assert not [b["id"] for b in ballots if b["id"].encode() in raw]


def test_the_roll_keeps_a_keyed_digest_that_a_guess_cannot_check(chat, config, db, env,
                                                                  tmp_path):
    poll_id, _ = open_poll(config, db, tmp_path)
    fiona = chat("fiona")
    fiona.onboard("en")
    fiona.send(f"/start poll_{poll_id}")
    fiona.press("Beside the east gate")
    guessed = hashlib.sha256(b"terminal:fiona").hexdigest()
    with db.session() as session:
        roll = session.execute(select(PollVoter)).scalar_one()
        digest = roll.voter
    assert digest != guessed
    assert digest == ballot_keys(config.data_dir).voter_digest("terminal", "fiona")
    assert digest != BallotKeys("another secret, of at least 32 characters").voter_digest(
        "terminal", "fiona")
    if config.database_url.startswith("sqlite"):
        raw = Path(config.database_url.removeprefix("sqlite:///")).read_bytes()
    else:
        raw = pg_dump(config.database_url).encode()
    assert guessed.encode() not in raw
    secret = (config.data_dir / "console-secret")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600  # the key is beside, not in, the data
    assert secret.read_text().strip().encode() not in raw


class Listening:
    """The real model, with a note of every text it was asked to read."""

    def __init__(self, understander):
        self.understander = understander
        self.heard: list[str] = []

    async def parse(self, text, language):
        self.heard.append(text)
        return await self.understander.parse(text, language)


def turn_texts(db: Database) -> str:
    with db.session() as session:
        return " ".join(f"{t.text} {t.payload} {t.entities}"
                        for t in session.execute(select(Turn)).scalars())


def test_a_receipt_typed_at_the_main_menu_is_handled_and_kept_nowhere(
        config, db, env, tmp_path, understander, caplog):
    poll_id, _ = open_poll(config, db, tmp_path)
    nlu = Listening(understander)
    resident = Chat(Assistant(config, db, understander=nlu), "rosa")
    resident.onboard("en")
    resident.send(f"/start poll_{poll_id}")
    resident.press("Behind building 5")
    receipt = RECEIPT.search(resident.text).group()
    resident.send("/menu")
    caplog.set_level(logging.DEBUG)

    resident.send(f"I want to change my vote, my code is {receipt[:5].lower()} "
                  f"{receipt[6:].lower()}")
    assert "Your earlier vote is withdrawn. Please choose again." in resident.text
    assert "vote:shed_by_the_east_gate" in resident.payloads
    assert resident.state()[:2] == ("polls", "detail")
    resident.press("Beside the east gate")
    second = RECEIPT.search(resident.text).group()

    resident.send("/menu")
    resident.send("my code is 23456-ABCDE, change it please")
    assert resident.t("That code does not match a vote you can change now.") in resident.text
    assert resident.state()[:2] == ("menu", "main")

    kept = turn_texts(db)
    for secret in (receipt, receipt[:5].lower(), second, "23456-ABCDE", "change my vote"):
        assert secret not in kept, secret
        assert not [heard for heard in nlu.heard if secret in heard], secret
        assert secret not in caplog.text, secret
    with db.session() as session:
        ballots = session.execute(select(Ballot)).scalars().all()
        keys = ballot_keys(config.data_dir)
        assert [keys.unseal(b.poll_id, b.sealed) for b in ballots] == ["shed_by_the_east_gate"]


def test_an_opinion_and_its_stance_stay_out_of_the_turn_log(config, db, env, tmp_path,
                                                            understander):
    poll_id, _ = open_poll(config, db, tmp_path)
    nlu = Listening(understander)
    resident = Chat(Assistant(config, db, understander=nlu), "olga")
    resident.onboard("en")
    resident.send(f"/start poll_{poll_id}")
    resident.press_payload("p:opinion")
    resident.press_payload("stance:no_shed")
    assert resident.t("Please write your opinion in a few sentences. Do not write your name or "
                      "address: opinions are shared without them. Staff read opinions before "
                      "they are shared with the results.") in resident.text
    opinion = "The playground matters more than parking, keep it for the children"
    resident.send(opinion)
    assert "Thank you. Your opinion will be shared" in resident.text
    kept = turn_texts(db)
    assert "playground" not in kept and "stance:" not in kept and "no_shed" not in kept
    with db.session() as session:
        written = session.execute(select(PollOpinion)).scalar_one()
        assert (written.text, written.stance) == (opinion, "no_shed")


def test_an_opinion_typed_at_the_option_step_is_kept_as_an_opinion_not_lost(
        config, db, env, tmp_path, understander):
    poll_id, _ = open_poll(config, db, tmp_path)
    assistant = Assistant(config, db, understander=understander)
    for user, language, text in (
            ("wen", "zh_Hans", "我觉得车棚要离窗户远一点，晚上充电要有人看着"),
            ("ed", "en", "I think the shed should be far from our windows and well lit")):
        resident = Chat(assistant, user)
        resident.onboard(language)
        resident.send(f"/start poll_{poll_id}")
        resident.send(text)
        assert resident.state()[:2] == ("polls", "keep_opinion"), resident.text
        assert "p:keep" in resident.payloads
        with db.session() as session:  # nothing voted, nothing reported
            assert session.execute(select(func.count()).select_from(PollVoter)).scalar_one() \
                == 0
        resident.press_payload("p:keep")
        resident.press_payload("stance:")  # about the consultation in general
        assert resident.t("Thank you. Your opinion will be shared with the results once staff "
                          "have read it.") in resident.text
        assert not resident.state()[2].get("draft")  # held only until the resident said yes
        with db.session() as session:
            texts = session.execute(select(PollOpinion.text)).scalars().all()
        assert text in texts
        assert text not in turn_texts(db)
    # An option's name in a sentence is still a vote.
    voter = Chat(assistant, "vic")
    voter.onboard("en")
    voter.send(f"/start poll_{poll_id}")
    voter.send("I would say behind building 5 please")
    assert voter.t("Thank you. Your vote is counted.") in voter.text


def test_no_counts_while_a_poll_is_open_for_any_role(config, db, env, tmp_path, assistant):
    poll_id, labels = open_poll(config, db, tmp_path)
    add_staff(db, "vic", "viewer")
    add_staff(db, "ada", "admin")
    app = console(config, db)
    viewer, admin = logged_in(app, "vic"), logged_in(app, "ada")
    for n, option in enumerate(["shed_by_the_east_gate", "shed_by_the_east_gate", "no_shed"]):
        resident = Chat(assistant, f"v{n}")
        resident.onboard("en")
        resident.send(f"/start poll_{poll_id}")
        resident.press_payload(f"vote:{option}")
    for client in (viewer, admin):
        page = client.get(f"/polls/{poll_id}").text
        assert 'id="turnout-only"' in page
        assert 'id="counts"' not in page and 'id="result-chart"' not in page
        assert not re.search(r"</td><td>\d+</td>", page)
        progress = client.get(f"/polls/{poll_id}/progress.json").json()
        assert not [o for o in OPTIONS.values() if o in str(progress)]
        assert set(progress) == {"channels", "total"}
    admin.post(f"/polls/{poll_id}/close")
    for client in (viewer, admin):
        page = client.get(f"/polls/{poll_id}").text
        counts = dict(re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", page))
        assert counts == {labels["shed_by_the_east_gate"]["en"]: "2",
                          labels["shed_behind_b5"]["en"]: "0", labels["no_shed"]["en"]: "1"}


def test_the_sqlite_file_is_readable_by_its_owner_only(config, db, tmp_path):
    if not config.database_url.startswith("sqlite"):
        pytest.skip("a PostgreSQL data directory's modes are the server's (initdb makes 0700)")
    path = Path(config.database_url.removeprefix("sqlite:///"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old = tmp_path / "old" / "linli.db"  # a file made 0644 before this change is narrowed
    old.parent.mkdir()
    sqlite3.connect(old).close()
    os.chmod(old, 0o644)
    Database(f"sqlite:///{old}").dispose()
    assert stat.S_IMODE(old.stat().st_mode) == 0o600


def test_migration_0008_seals_open_ballots_counts_closed_ones_and_keys_the_roll(config, env):
    from sqlalchemy import create_engine, text

    from bot.db import upgrade
    from bot.models import Resident

    upgrade(config.database_url, "0007")
    engine = create_engine(config.database_url, future=True)
    now, later = utcnow(), utcnow() + timedelta(days=3)
    options = '[{"id": "yes", "text": {"en": "Yes"}}, {"id": "no", "text": {"en": "No"}}]'
    old_receipt = hashlib.sha256(b"1:ABCDE23456").hexdigest()
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO residents (id, channel, channel_user_id, language, slots, offered, "
            "voice_on, senior_mode, created_at, last_seen_at, version) VALUES "
            "(1, 'terminal', 'gus', 'en', '{}', '[]', false, false, :now, :now, 1)"),
            {"now": now})
        for poll_id, status in ((1, "open"), (2, "closed")):
            connection.execute(text(
                "INSERT INTO polls (id, texts, options, buildings, allow_change, status, "
                "closes_at, created_at) VALUES (:id, :texts, :options, '[]', true, :status, "
                ":closes, :now)"),
                {"id": poll_id, "texts": '{"en": {"question": "Q?", "background": "B"}}',
                 "options": options, "status": status, "closes": later, "now": now})
        for ballot_id, poll_id, option, receipt in (
                ("b1", 1, "yes", old_receipt), ("b2", 1, "no", None),
                ("b3", 2, "yes", None), ("b4", 2, "yes", None), ("b5", 2, "no", None)):
            connection.execute(text(
                "INSERT INTO ballots (id, poll_id, option, receipt_hash) VALUES "
                "(:id, :poll, :option, :receipt)"),
                {"id": ballot_id, "poll": poll_id, "option": option, "receipt": receipt})
        for roll_id, resident_id, user in ((1, 1, "gus"), (2, None, "zed")):  # zed: /forget
            connection.execute(text(
                "INSERT INTO poll_voters (id, poll_id, resident_id, voter, status, voted_on) "
                "VALUES (:id, 1, :resident, :voter, 'voted', :day)"),
                {"id": roll_id, "resident": resident_id, "day": now.date(),
                 "voter": hashlib.sha256(f"terminal:{user}".encode()).hexdigest()})
    engine.dispose()

    upgrade(config.database_url)
    keys = ballot_keys(config.data_dir)
    db = Database(config.database_url)
    with db.session() as session:
        assert session.get(Poll, 2).tally == {"yes": 2, "no": 1}
        ballots = session.execute(select(Ballot)).scalars().all()
        assert {b.poll_id for b in ballots} == {1} and "b1" not in {b.id for b in ballots}
        assert sorted(keys.unseal(1, b.sealed) for b in ballots) == ["no", "yes"]
        assert {len(b.sealed) for b in ballots} == {len(keys.seal(1, "x"))}
        voters = dict(session.execute(select(PollVoter.id, PollVoter.voter)).all())
        assert voters == {1: keys.voter_digest("terminal", "gus"),
                          2: keys.voter_digest("terminal", "zed")}
        gus = session.get(Resident, 1)
        poll = session.get(Poll, 1)
        poll_service.withdraw(session, poll, gus, "abcde 23456", keys)  # a receipt in hand
        left = session.execute(select(Ballot)).scalars().all()
        assert [keys.unseal(1, b.sealed) for b in left] == ["no"]
    db.dispose()
