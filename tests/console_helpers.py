"""Helpers for the staff console's tests: accounts, a logged-in HTTP client, an always-unsure NLU, and
the app under the real uvicorn in a background thread."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from contextlib import contextmanager

from starlette.testclient import TestClient

from bot.console import auth
from bot.console.app import create_app
from bot.console.server import serve_console
from bot.messages import Understanding

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_staff(db, name: str, role: str, language: str = "en", password: str = PASSWORD) -> None:
    with db.session() as session:
        auth.add_user(session, name, password, role, language, actor="test")


class StaffClient:
    """A browser-like HTTP client: keeps the session cookie, sends the CSRF token with forms."""

    def __init__(self, app, ip: str = "testclient"):
        self.http = TestClient(app, base_url="http://127.0.0.1", client=(ip, 50000))
        self.token: str | None = None

    def get(self, path: str, **kwargs):
        response = self.http.get(path, follow_redirects=False, **kwargs)
        found = CSRF.search(response.text)
        if found:
            self.token = found.group(1)
        return response

    def post(self, path: str, data: dict | None = None, csrf: bool = True):
        data = dict(data or {})
        if csrf and "csrf_token" not in data:
            if self.token is None:
                self.get("/login")
            data["csrf_token"] = self.token
        return self.http.post(path, data=data, follow_redirects=False)

    def login(self, name: str, password: str = PASSWORD):
        self.get("/login")
        response = self.post("/login", {"name": name, "password": password, "next": "/"})
        if response.status_code == 303:
            self.get("/")  # the new session's token
        return response


def console(config, db):
    return create_app(config, db)


def logged_in(app, name: str) -> StaffClient:
    client = StaffClient(app)
    response = client.login(name)
    assert response.status_code == 303, response.text
    return client


class UnsureUnderstander:
    """Stands in for the trained model: every message is a fallback at 0.31, except those
    listed in `known` ({text: (intent, confidence)})."""

    def __init__(self, known: dict[str, tuple[str, float]] | None = None):
        self.known = known or {}

    async def parse(self, text: str, language: str | None) -> Understanding:
        intent, confidence = self.known.get(text, ("nlu_fallback", 0.31))
        return Understanding(intent, confidence, [], [(intent, confidence)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(app, *channels):
    """The app under uvicorn (serve_console) in a background thread; yields its address.
    `channels` (the web chat) are started in that loop first and stopped before the server,
    as `linli serve` runs them."""
    port = _free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    async def main() -> None:
        stop = holder["stop"] = asyncio.Event()
        for channel in channels:
            await channel.start()
        serving = asyncio.create_task(serve_console(app, "127.0.0.1", port, stop))
        started.set()
        await stop.wait()
        for channel in reversed(channels):
            await channel.stop()  # ends open pages' event streams, then the server can finish
        await serving

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(20)
        assert not thread.is_alive(), "the console did not stop"
