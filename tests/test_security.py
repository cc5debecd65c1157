"""Security: secrets never reach the logs, and a resident cannot reach another's request."""

from __future__ import annotations

import asyncio
import logging
import random
import re

from bot.core import Assistant
from bot.messages import Incoming
from tests.conftest import run_cli
from tests.console_helpers import StaffClient, add_staff, console

SECRET_PASSWORD = "correct horse battery staple 42"


def test_staff_passwords_never_reach_the_logs(config, db, env, caplog):
    caplog.set_level(logging.DEBUG)  # everything any library logs, at every level
    add_staff(db, "rong", "staff", password=SECRET_PASSWORD)
    client = StaffClient(console(config, db))
    assert client.login("rong", "wrong " + SECRET_PASSWORD).status_code != 303
    assert client.login("rong", SECRET_PASSWORD).status_code == 303
    assert client.get("/requests").status_code == 200
    assert "rong" in caplog.text or caplog.records  # the log was really captured
    assert SECRET_PASSWORD not in caplog.text
    added = run_cli(env, "-v", "staff", "add-user", "ming", "--role", "viewer",
                    input=SECRET_PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert SECRET_PASSWORD not in added.stdout + added.stderr


def test_guessing_tracking_numbers_never_shows_someone_else_s_request(config, db):
    assistant = Assistant(config, db)

    async def scenario():
        owner, guesser = "owner", "guesser"
        for user in (owner, guesser):
            for incoming in (Incoming("terminal", user, "text", text="/start"),
                             Incoming("terminal", user, "button", payload="lang:en"),
                             Incoming("terminal", user, "button", payload="voice:off")):
                await assistant.handle(incoming)
        for payload in ("menu:report", "cat:noise_dispute"):
            await assistant.handle(Incoming("terminal", owner, "button", payload=payload))
        await assistant.handle(Incoming("terminal", owner, "text", text="Secret drilling at 3am"))
        await assistant.handle(Incoming("terminal", owner, "text", text="Building 9"))
        replies = await assistant.handle(Incoming("terminal", owner, "button",
                                                  payload="confirm:submit"))
        number = re.search(r"R-\d{6}", replies[0].text).group(0)
        seen = []
        guesses = [number, number.lower(), number.replace("-", "")]
        guesses += [f"R-{random.Random(7).randint(100000, 999999)}" for _ in range(30)]
        for guess in guesses:
            for incoming in (Incoming("terminal", guesser, "text", text=f"/myrequests {guess}"),
                             Incoming("terminal", guesser, "text", text=guess),
                             Incoming("terminal", guesser, "button", payload=f"req:{guess}")):
                seen += [r.text for r in await assistant.handle(incoming)]
        # The same lookups do work for the owner: the refusals above are about ownership.
        await assistant.handle(Incoming("terminal", owner, "button", payload="menu:requests"))
        mine = await assistant.handle(Incoming("terminal", owner, "button",
                                               payload=f"req:{number}"))
        return "\n".join(r.text for r in mine), "\n".join(seen)

    mine, seen = asyncio.run(scenario())
    assert "Secret drilling" in mine
    assert "Secret drilling" not in seen and "Building 9" not in seen
