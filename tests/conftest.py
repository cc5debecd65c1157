"""Shared fixtures: a migrated database per test, the real Assistant, and a chat driver."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.config import PROJECT_ROOT, load_config
from bot.core import Assistant
from bot.db import Database, sync_catalogue, upgrade
from bot.i18n import compile_catalogs
from bot.messages import Incoming, Reply
from bot.models import Request, Resident
from bot.wiring import installed_channels

LANGUAGES = ("zh_Hans", "zh_Hant", "en", "mn", "mn_Mong", "bo", "ug")


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogs():
    compile_catalogs(PROJECT_ROOT / "locales")


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the whole run, started here and stopped at the end."""
    from tests.postgres import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, tmp_path, monkeypatch) -> dict[str, str]:
    """Points config and data at a fresh folder and a fresh database (SQLite, then
    PostgreSQL), for this process and for subprocesses."""
    data_dir = tmp_path / "var"
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").new_database()
    else:
        url = f"sqlite:///{data_dir / 'linli.db'}"
    monkeypatch.setenv("LINLI_DATA_DIR", str(data_dir))
    monkeypatch.setenv("LINLI_DATABASE_URL", url)
    monkeypatch.delenv("LINLI_CONFIG", raising=False)
    # Channel and flow tests run without a language model (numbers and buttons only);
    # tests of free text use the session's `understander`.
    models = tmp_path / "no-models"
    monkeypatch.setenv("LINLI_MODELS_DIR", str(models))
    return {**os.environ, "LINLI_DATA_DIR": str(data_dir), "LINLI_DATABASE_URL": url,
            "LINLI_MODELS_DIR": str(models)}


@pytest.fixture
def config(env):
    return load_config(PROJECT_ROOT / "config.yml")


@pytest.fixture
def db(config):
    upgrade(config.database_url)
    database = Database(config.database_url)
    sync_catalogue(database, config)
    yield database
    database.dispose()


@pytest.fixture
def assistant(config, db) -> Assistant:
    """The Assistant as the installation wires it: it knows what each channel carries."""
    return Assistant(config, db, channels=installed_channels())


class Chat:
    """One resident talking to the real Assistant, as errbot's testbot does."""

    def __init__(self, assistant: Assistant, user_id: str, channel: str = "terminal"):
        self.assistant = assistant
        self.user_id = user_id
        self.channel = channel
        self.replies: list[Reply] = []

    def _run(self, incoming: Incoming) -> list[Reply]:
        self.replies = asyncio.run(self.assistant.handle(incoming))
        return self.replies

    def send(self, text: str) -> list[Reply]:
        return self._run(Incoming(self.channel, self.user_id, "text", text=text))

    def press(self, label: str) -> list[Reply]:
        """Presses the offered button whose label contains `label`, by its payload."""
        matches = [b for b in self.buttons if label in b.label]
        assert len(matches) == 1, f"{label!r} matches {matches} among {self.buttons}"
        return self._run(Incoming(self.channel, self.user_id, "button", payload=matches[0].payload))

    def press_payload(self, payload: str) -> list[Reply]:
        return self._run(Incoming(self.channel, self.user_id, "button", payload=payload))

    def location(self, latitude: float, longitude: float) -> list[Reply]:
        return self._run(
            Incoming(self.channel, self.user_id, "location", latitude=latitude, longitude=longitude)
        )

    @property
    def buttons(self):
        return [b for r in self.replies for b in r.buttons]

    @property
    def payloads(self) -> list[str]:
        return [b.payload for b in self.buttons]

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    def t(self, message: str, **values) -> str:
        """The message as this resident's language renders it."""
        with self.assistant.db.session() as session:
            resident = self.resident(session)
        return self.assistant.catalogs.translator(resident.language)(message, **values)

    def resident(self, session) -> Resident:
        return session.execute(
            select(Resident).where(
                Resident.channel == self.channel, Resident.channel_user_id == self.user_id
            )
        ).scalar_one()

    def state(self) -> tuple:
        with self.assistant.db.session() as session:
            r = self.resident(session)
            return (r.flow, r.step, dict(r.slots), list(r.offered), r.language)

    def onboard(self, language: str, voice: bool = False) -> None:
        self.send("/start")
        self.press_payload(f"lang:{language}")
        if voice or self.state()[:2] == ("onboarding", "voice"):  # not offered without a voice
            self.press_payload("voice:on" if voice else "voice:off")
        if self.state()[:2] == ("onboarding", "building"):  # offered once, beside the menu
            self.press_payload("building:skip")
        assert self.state()[:2] == ("menu", "main")

    def file_request(
        self, category: str, description: str, place: str
    ) -> str:
        """Walks the report flow by buttons and returns the tracking number printed."""
        self.press_payload("menu:report")
        self.press_payload(f"cat:{category}")
        self.send(description)
        self.send(place)
        self.press_payload("confirm:submit")
        import re

        found = re.findall(r"R-\d{6}", self.text)
        assert found, self.text
        return found[0]


@pytest.fixture
def chat(assistant):
    def make(user_id: str = "alice") -> Chat:
        return Chat(assistant, user_id)

    return make


def count_requests(db: Database) -> int:
    with db.session() as session:
        return session.execute(select(func.count(Request.id))).scalar_one()


def run_cli(env: dict, *args: str, input: str | None = None, timeout: int = 120):
    """Runs the installed `linli` command as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        check=False,
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=Path(PROJECT_ROOT),
    )


@pytest.fixture(scope="session")
def understander():
    """The real NLU model: trained once into var/models/ (keyed by the data's hash), loaded once."""
    from nlu.engine import RasaUnderstander, data_hash, train

    config = load_config(PROJECT_ROOT / "config.yml")
    cache = PROJECT_ROOT / "var" / "models" / f"nlu-{data_hash(config)}.tar.gz"
    path, _ = train(config, output=cache)
    return RasaUnderstander(config, path)


@pytest.fixture
def nlu_assistant(config, db, understander) -> Assistant:
    return Assistant(config, db, understander=understander, channels=installed_channels())


class TerminalSession:
    """The terminal channel's own chat loop, fed one line at a time, with the real assistant."""

    def __init__(self, assistant: Assistant, resident: str):
        self.assistant = assistant
        self.resident = resident

    def send(self, line: str) -> str:
        import io

        from bot.channels.terminal import chat

        out = io.StringIO()
        asyncio.run(chat(self.assistant, self.resident, io.StringIO(line + "\n"), out,
                         interactive=False))
        return out.getvalue()


@pytest.fixture
def fake():
    """A fake Telegram Bot API server on 127.0.0.1 (tests/fake_bot_api.py)."""
    from tests.fake_bot_api import FakeBotAPI

    server = FakeBotAPI().start()
    yield server
    server.stop()
