"""The NLU over HTTP (nlu/remote.py, `linli nlu serve`): Rasa's own server on the session's
model answers as the in-process model does, and a server that does not answer leaves the
resident answered as without a model."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.config import PROJECT_ROOT, load_config
from bot.core import Assistant
from bot.models import Turn
from bot.wiring import installed_channels
from nlu import evaluate
from nlu.remote import HttpUnderstander
from tests.conftest import Chat
from tests.console_helpers import _free_port as free_port

READY_WITHIN = 120  # seconds: Rasa imports TensorFlow, then loads the model


@pytest.fixture(scope="module")
def nlu_server(understander, tmp_path_factory):
    """`linli nlu serve` on the session's model, as a real subprocess, started once for the
    module (not per database backend); yields its URL and the file it printed to."""
    port = free_port()
    folder = tmp_path_factory.mktemp("nlu-serve")
    env = {**os.environ, "LINLI_MODELS_DIR": str(understander.path.parent),
           "LINLI_DATA_DIR": str(folder / "var")}
    env.pop("LINLI_NLU_URL", None)
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "nlu", "serve", "--port", str(port)],
        cwd=Path(PROJECT_ROOT), env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_WITHIN
        while True:
            assert process.poll() is None, (folder / "serve.log").read_text(errors="replace")
            try:
                status = httpx.get(f"{url}/status", timeout=2.0)
                if status.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Rasa's server was not ready in time"
            time.sleep(1)
        # The server holds the very model the in-process understander holds.
        assert status.json()["model_file"] == understander.path.name
        yield url, folder / "serve.log"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def held_out_messages(config) -> list[str]:
    """Two held-out messages of every language (one long, one short), plus a tracking number,
    an emergency keyword and nonsense: a dozen and more, in all six languages."""
    messages = []
    for language in config.language_ids:
        for kind in evaluate.TEST_SETS:
            examples = evaluate.load_examples(evaluate.test_files(config, kind)[language])
            messages.append(examples[len(examples) // 2][0])
    return messages + ["我的报修 R-123456 怎么样了", "着火了", "qwxz zzkv"]


def summary(understanding) -> tuple:
    return (understanding.intent, round(understanding.confidence, 4), understanding.entities,
            [(name, round(score, 4)) for name, score in understanding.ranking])


def test_the_server_understands_as_the_model_in_process(nlu_server, understander, monkeypatch):
    from bot.cli.common import load_understander

    config = load_config(PROJECT_ROOT / "config.yml")
    url, server_log = nlu_server
    monkeypatch.setenv("LINLI_NLU_URL", url + "/")
    remote = load_understander()
    assert isinstance(remote, HttpUnderstander)
    messages = held_out_messages(config)
    assert len(messages) >= 12

    async def both() -> list[tuple[tuple, tuple]]:
        pairs = []
        for text in messages:
            pairs.append((summary(await understander.parse(text, None)),
                          summary(await remote.parse(text, None))))
        await remote.aclose()
        return pairs

    pairs = asyncio.run(both())
    for text, (in_process, over_http) in zip(messages, pairs):
        assert over_http == in_process, text
    intents = {in_process[0] for in_process, _ in pairs}
    assert {"check_request_status", "emergency"} <= intents and len(intents) >= 5
    assert any(in_process[2] for in_process, _ in pairs)  # entities were compared too
    # Rasa's server is kept at WARNING: no message's text in what it printed.
    printed = server_log.read_text(encoding="utf-8", errors="replace")
    for text in messages:
        assert text not in printed


def test_the_server_answering_again_is_logged_once(nlu_server, caplog):
    """A worker started before the server: one warning while it is away, one when it answers."""
    config = load_config(PROJECT_ROOT / "config.yml")
    url, _ = nlu_server
    remote = HttpUnderstander(config, f"http://127.0.0.1:{free_port()}", timeout=0.5)

    async def turns() -> list[str]:
        intents = [(await remote.parse("电梯坏了")).intent, (await remote.parse("灯坏了")).intent]
        remote.url = url  # the server is up now
        intents.append((await remote.parse("电梯坏了")).intent)
        await remote.aclose()
        return intents

    with caplog.at_level(logging.INFO, logger="nlu.remote"):
        intents = asyncio.run(turns())
    assert intents == ["nlu_unavailable", "nlu_unavailable", "report_problem"]
    logged = [r.getMessage() for r in caplog.records if r.name == "nlu.remote"]
    assert len(logged) == 2, logged
    assert "did not answer (ConnectError)" in logged[0]
    assert "answers again (2 messages were not understood)" in logged[1]


def test_serve_refuses_without_a_model(env):
    from tests.conftest import run_cli

    result = run_cli(env, "nlu", "serve", "--port", str(free_port()))
    assert result.returncode == 2
    assert "no trained NLU model" in result.stderr


def script(chat: Chat) -> list[tuple]:
    """A newcomer's first words, then free text at the menu and in the middle of a report:
    every reply a resident sees, with its buttons."""
    seen = []

    def keep(replies) -> None:
        seen.extend((r.text, [(b.label, b.payload) for b in r.buttons]) for r in replies)

    keep(chat.send("楼道的灯不亮了"))
    keep(chat.press_payload("lang:zh_Hans"))
    for payload in ("voice:off", "building:skip"):
        if payload in chat.payloads:
            keep(chat.press_payload(payload))
    keep(chat.send("电梯坏了"))
    keep(chat.press_payload("menu:report"))
    keep(chat.send("随便看看"))
    return seen


@pytest.mark.parametrize("server", ["refused", "silent"])
def test_a_server_that_does_not_answer_is_as_no_model(config, db, caplog, server):
    """Connection refused, or a server that accepts and never answers (timeout): the resident
    gets exactly what they get without a model, and the log says why without their words."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if server == "silent":
        listener.listen(8)  # accepts connections (the kernel does), never answers
    else:
        listener.close()
    try:
        remote = HttpUnderstander(config, f"http://127.0.0.1:{port}", timeout=0.5)
        channels = installed_channels()
        without_model = Chat(Assistant(config, db, channels=channels), "no-model")
        over_http = Chat(Assistant(config, db, understander=remote, channels=channels),
                         "server-down")
        expected = script(without_model)
        with caplog.at_level(logging.INFO):
            got = script(over_http)
    finally:
        listener.close()
    assert got == expected
    not_understood = over_http.t("I did not understand that. Please choose one of the numbers "
                                 "below.")
    assert sum(text == not_understood for text, _ in got) == 2, got  # at the menu and a step
    warnings = [r for r in caplog.records if r.name == "nlu.remote"]
    assert warnings and all(r.levelno == logging.WARNING for r in warnings)
    assert len(warnings) == 1  # one a minute, not one a message
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for words in ("楼道的灯不亮了", "电梯坏了", "随便看看"):
        assert words not in logged


def test_an_emergency_is_recognised_while_the_server_is_down(config):
    remote = HttpUnderstander(config, f"http://127.0.0.1:{free_port()}", timeout=0.5)
    assert asyncio.run(remote.parse("着火了", "zh_Hans")).intent == "emergency"
    assert asyncio.run(remote.parse("电梯坏了", "zh_Hans")).intent == "nlu_unavailable"


def test_messages_the_server_did_not_answer_are_not_the_models_fallbacks(config, db):
    """The dashboard's fallback rate is of messages the model read: not of those it never saw."""
    from bot.console import metrics

    remote = HttpUnderstander(config, f"http://127.0.0.1:{free_port()}", timeout=0.5)
    resident = Chat(Assistant(config, db, understander=remote, channels=installed_channels()),
                    "metrics")
    resident.onboard("en")
    resident.send("the lift is broken")
    with db.session() as session:
        assert session.execute(select(Turn.intent).where(Turn.text == "the lift is broken")
                               ).scalar_one() == "nlu_unavailable"
        figures = metrics.compute(session, days=30)
    assert "en" not in figures.fallback_by_language
