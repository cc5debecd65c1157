"""The web chat (bot/channels/web.py) over HTTP, through the real core, outbox and database:
cookie, CSRF, CSP, rate limit, isolation, catching up after an id, the report flow with a photo
and a location, staff news pushed, voice replies. The browser tests are in
tests/test_webchat_browser.py."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.channels import web as webchat
from bot.channels.web import COOKIE, WebChannel
from bot.console.app import create_app
from bot.core import Assistant
from bot.models import Attachment, OutboxMessage, Request, Resident
from bot.services import requests as service
from bot.wiring import installed_channels
from tests.conftest import run_cli
from tests.console_helpers import _free_port, served
from tests.test_console_browser import (
    ARTIFACTS,
    CHROMEDRIVER,
    CHROMIUM,
    FLAGS,
)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TRACKING = re.compile(r"R-\d{6}")


def jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


class Visitor:
    """One browser: its own cookie jar; sends as the page's script does (JSON answers)."""

    def __init__(self, app, ip: str = "10.0.0.1"):
        self.http = TestClient(app, base_url="http://127.0.0.1", client=(ip, 50000))
        self.token: str | None = None
        self.last = 0

    def open(self, path: str = "/chat", **kwargs):
        response = self.http.get(path, **kwargs)
        found = CSRF.search(response.text)
        if found:
            self.token = found.group(1)
        return response

    def post(self, data: dict | None = None, files: dict | None = None, csrf: bool = True,
             script: bool = True):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token)
        headers = {"x-linli-chat": "1"} if script else {}
        return self.http.post("/chat/send", data=data, files=files, headers=headers,
                              follow_redirects=False)

    def press(self, payload: str):
        response = self.post({"payload": payload})
        assert response.status_code == 200 and response.json()["ok"], response.text
        return self.new()

    def say(self, text: str):
        response = self.post({"text": text})
        assert response.status_code == 200 and response.json()["ok"], response.text
        return self.new()

    def new(self) -> list[dict]:
        """The messages delivered since the last look."""
        data = self.http.get(f"/chat/messages?after={self.last}").json()
        self.last = data["last"]
        return data["messages"]

    @property
    def cookie(self) -> str:
        return self.http.cookies.get(COOKIE)


@pytest.fixture
def web(config, db):
    assistant = Assistant(config, db, channels=installed_channels())
    return WebChannel(config, db, assistant)


@pytest.fixture
def app(config, db, web):
    return web.wrap(create_app(config, db))


def texts(messages: list[dict]) -> str:
    return "\n".join(m["text"] for m in messages)


def web_resident(db, visitor_id: str) -> Resident:
    with db.session() as session:
        resident = session.execute(select(Resident).where(
            Resident.channel == "web", Resident.channel_user_id == visitor_id)).scalar_one()
        session.expunge(resident)
        return resident


def onboard(visitor: Visitor, language: str = "en") -> None:
    visitor.open()
    visitor.new()
    visitor.press(f"lang:{language}")
    visitor.press("voice:off")


def test_a_new_visitor_gets_a_signed_cookie_a_web_resident_and_the_language_picker(app, web,
                                                                                    db):
    visitor = Visitor(app)
    response = visitor.open()
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/chat" in cookie
    assert "Max-Age=34560000" in cookie  # 400 days
    visitor_id = web.signer.unsign(visitor.cookie).decode()
    resident = web_resident(db, visitor_id)
    assert resident.channel == "web" and resident.flow == "onboarding"
    # The picker, with each language as a real button.
    for name in ("简体中文", "繁體中文", "English", "Монгол", "ᠮᠣᠩᠭᠣᠯ", "བོད་ཡིག", "ئۇيغۇرچە"):
        assert re.search(rf'<button class="choice[^"]*" name="payload" value="lang:\w+">'
                         rf'<span class="number" aria-hidden="true">\d</span> '
                         rf'<span class="label">{name}</span>', response.text)
    # Opening the page again is the same visitor, and shows the picker once.
    again = visitor.open()
    assert web.signer.unsign(visitor.cookie).decode() == visitor_id
    assert again.text.count('value="lang:en"') == 1


def test_a_forged_or_foreign_cookie_is_a_new_visitor_not_someone_else(app, web, db):
    alice = Visitor(app)
    onboard(alice)
    alice_id = web.signer.unsign(alice.cookie).decode()
    mallory = Visitor(app, ip="10.0.0.2")
    mallory.http.cookies.set(COOKIE, alice_id, domain="127.0.0.1", path="/chat")  # unsigned
    assert mallory.http.get("/chat/messages?after=0").status_code == 403
    mallory.open()
    assert web.signer.unsign(mallory.cookie).decode() != alice_id
    assert "Welcome" not in mallory.open().text


def test_a_second_cookie_cannot_read_the_first_visitors_messages(app, web, db):
    alice = Visitor(app)
    onboard(alice)
    alice.press("menu:report")
    alice.press("cat:" + web.config.categories[0].id)
    alice.say("The lift in building 3 is broken, secret detail zebra quartz")
    alice.say("building 3")
    alice.press("photo:skip")  # the summary repeats the description
    mine = alice.http.get("/chat/messages?after=0").json()["messages"]
    assert any("secret detail zebra quartz" in m["text"] for m in mine)

    bob = Visitor(app, ip="10.0.0.2")
    page = bob.open()
    assert "zebra quartz" not in page.text
    theirs = bob.http.get("/chat/messages?after=0").json()["messages"]
    assert not {m["id"] for m in theirs} & {m["id"] for m in mine}
    assert "zebra quartz" not in json.dumps(theirs)
    with served(app) as base:
        first = _events(base, bob.cookie, "?after=0", 1)
    assert first and first[0]["id"] not in {m["id"] for m in mine}
    # Alice's token does not let Bob's cookie post.
    response = bob.post({"text": "hello", "csrf_token": alice.token})
    assert response.status_code == 403


def test_posting_needs_the_visitors_csrf_token(app, web, db):
    visitor = Visitor(app)
    visitor.open()
    assert visitor.post({"payload": "lang:en"}, csrf=False).status_code == 403
    assert visitor.post({"payload": "lang:en", "csrf_token": "x" * 64}).status_code == 403
    assert web_resident(db, web.signer.unsign(visitor.cookie).decode()).language is None
    assert visitor.post({"payload": "lang:en"}).status_code == 200
    # Without a cookie there is no chat to post to.
    stranger = TestClient(app, base_url="http://127.0.0.1")
    assert stranger.post("/chat/send", data={"text": "hi", "csrf_token": visitor.token},
                         headers={"x-linli-chat": "1"}).status_code == 403


def test_the_page_has_a_strict_csp_and_no_inline_code(app):
    visitor = Visitor(app)
    response = visitor.open()
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/chat/static/chat.js" defer>']
    assert "<style" not in html and " style=" not in html
    assert re.search(r"<[a-z]+[^>]*\son[a-z]+=", html) is None  # no inline event handlers
    static = visitor.http.get("/chat/static/chat.js")
    assert static.status_code == 200 and "max-age" in static.headers["cache-control"]


def test_the_page_colours_meet_wcag_aa_contrast():
    """Text 4.5:1 at least (WCAG 2.1 AA), for every pair of colours the page puts together."""
    css = (webchat.ASSETS / "static" / "chat.css").read_text(encoding="utf-8")
    colours = dict(re.findall(r"--([a-z]+): (#[0-9a-f]{6})", css))
    colours["white"] = "#ffffff"

    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    def contrast(a: str, b: str) -> float:
        high, low = sorted((luminance(colours[a]), luminance(colours[b])), reverse=True)
        return (high + 0.05) / (low + 0.05)

    pairs = [("ink", "paper"), ("ink", "bubble"), ("white", "blue"), ("blue", "white"),
             ("alert", "paper"), ("blue", "paper")]
    for text, background in pairs:
        assert contrast(text, background) >= 4.5, (text, background)
    # The focus ring against the page and the buttons (non-text: 3:1).
    assert contrast("focus", "paper") >= 3 and contrast("focus", "bubble") >= 3
    assert "#083d73" in css and contrast("white", "blue") >= 7  # hover is darker still


def test_a_visitor_is_rate_limited(app, web, db, config):
    burst = config.web_chat.message_burst
    assert burst == 10  # config.yml's
    visitor = Visitor(app)
    onboard(visitor)  # 2 posts
    answers = [visitor.post({"text": "1"}).status_code for _ in range(burst)]
    assert answers[: burst - 2] == [200] * (burst - 2)
    assert answers[-1] == 429
    refused = visitor.post({"text": "1"})
    assert refused.status_code == 429
    assert refused.json()["error"] == "Too many messages. Please wait a minute, then try again."
    # Another visitor is not held back.
    other = Visitor(app, ip="10.0.0.2")
    other.open()
    assert other.post({"payload": "lang:en"}).status_code == 200


def test_new_visitors_from_one_address_are_limited(app, monkeypatch, web):
    monkeypatch.setattr(web.visitors_limit, "burst", 3)
    monkeypatch.setattr(web.visitors_limit, "_buckets", {})
    codes = [Visitor(app, ip="10.9.9.9").open().status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert Visitor(app, ip="10.9.9.8").open().status_code == 200


def test_the_rate_limits_come_from_config(config, db):
    """config.yml `web_chat` sets both limits (bench/load.py raises them for its run)."""
    import dataclasses

    from bot.config import WebChatSettings

    limits = WebChatSettings(messages_per_minute=1, message_burst=3, new_visitors_per_hour=2)
    changed = dataclasses.replace(config, web_chat=limits)
    assistant = Assistant(changed, db, channels=installed_channels())
    web = WebChannel(changed, db, assistant)
    app = web.wrap(create_app(changed, db))
    visitor = Visitor(app, ip="10.7.7.7")
    visitor.open()
    assert [visitor.post({"text": "/help"}).status_code for _ in range(4)] == [200] * 3 + [429]
    assert Visitor(app, ip="10.7.7.7").open().status_code == 200  # the second new visitor
    assert Visitor(app, ip="10.7.7.7").open().status_code == 429  # the third
    assert Visitor(app, ip="10.7.7.8").open().status_code == 200


def test_catching_up_after_an_id_gives_everything_after_it_in_order(app, web, db):
    visitor = Visitor(app)
    onboard(visitor)
    everything = visitor.http.get("/chat/messages?after=0").json()["messages"]
    ids = [m["id"] for m in everything]
    assert ids == sorted(ids) and len(ids) >= 3
    middle = ids[1]
    later = visitor.http.get(f"/chat/messages?after={middle}").json()["messages"]
    assert [m["id"] for m in later] == ids[2:]
    # Server-sent events: the same, from ?after= or from the browser's Last-Event-ID.
    with served(app) as base:
        assert [m["id"] for m in _events(base, visitor.cookie, f"?after={middle}",
                                         len(ids) - 2)] == ids[2:]
        assert [m["id"] for m in _events(base, visitor.cookie, "", len(ids) - 1,
                                         {"Last-Event-ID": str(ids[0])})] == ids[1:]


def test_a_page_far_behind_gets_every_message_at_once_in_order(app, web, db):
    visitor = Visitor(app)
    onboard(visitor)
    visitor_id = web.signer.unsign(visitor.cookie).decode()
    resident = web_resident(db, visitor_id)
    with db.session() as session:  # a long absence: more than one batch of delivered news
        for n in range(webchat.HISTORY + 40):
            session.add(OutboxMessage(resident_id=resident.id, channel="web", chat_id=visitor_id,
                                      kind="push", status="sent",
                                      payload={"text": f"news {n}", "buttons": [],
                                               "language": "en"}))
    everything = visitor.http.get("/chat/messages?after=0").json()
    first = everything["messages"]
    assert len(first) == webchat.HISTORY
    rest = visitor.http.get(f"/chat/messages?after={everything['last']}").json()["messages"]
    ids = [m["id"] for m in first + rest]
    assert ids == sorted(ids) and rest[-1]["text"] == f"news {webchat.HISTORY + 39}"
    with served(app) as base:
        started = time.monotonic()
        streamed = _events(base, visitor.cookie, "?after=0", len(ids))
        assert time.monotonic() - started < webchat.WAKE_SECONDS  # no wait between batches
    assert [m["id"] for m in streamed] == ids


def test_messages_survive_a_restart_and_queued_ones_are_delivered_by_the_next_server(
        config, db, app):
    visitor = Visitor(app)
    onboard(visitor)
    before = visitor.http.get("/chat/messages?after=0").json()
    # A new process: another channel object on the same database. A message queued while no
    # server ran (staff's status change) arrives through its sending loop.
    assistant = Assistant(config, db, channels=installed_channels())
    restarted = WebChannel(config, db, assistant)
    again = TestClient(restarted.wrap(create_app(config, db)), base_url="http://127.0.0.1")
    again.cookies.set(COOKIE, visitor.cookie, domain="127.0.0.1", path="/chat")
    assert again.get("/chat/messages?after=0").json() == before
    assert before["last"] > 0


def test_report_with_a_location_and_a_photo_then_staff_news_and_the_rating(app, web, db,
                                                                          config):
    visitor = Visitor(app)
    onboard(visitor)
    visitor.press("menu:report")
    category = config.categories[0].id
    visitor.press(f"cat:{category}")
    visitor.say("The light on the stairs of building 5 is broken")
    asked = visitor.new() or visitor.http.get("/chat/messages?after=0").json()["messages"]
    assert any(m["location"] for m in asked)  # the page offers "share my location"
    shown = visitor.post({"latitude": "39.9042", "longitude": "116.4074"})
    assert shown.json()["ok"]
    step = visitor.new()
    assert "photo" in texts(step).lower()
    photo = visitor.post(files={"photo": ("stairs.jpg", jpeg(), "image/jpeg")})
    assert photo.json()["ok"], photo.text
    summary = texts(visitor.new())
    assert "39.90420" in summary and "Photos: 1" in summary
    confirm = visitor.press("confirm:submit")
    tracking = TRACKING.search(texts(confirm)).group(0)
    with db.session() as session:
        request = session.execute(select(Request).where(
            Request.tracking_number == tracking)).scalar_one()
        assert request.channel == "web"
        assert (request.latitude, request.longitude) == (39.9042, 116.4074)
        attachment = session.execute(select(Attachment).where(
            Attachment.request_id == request.id)).scalar_one()
        assert attachment.kind == "photo" and attachment.channel == "web"
        assert (config.data_dir / attachment.path).read_bytes() == jpeg()

    # Staff resolve it; the sending loop's push turn delivers the news without a post.
    with db.session() as session:
        service.change_status(session, tracking, "resolved", actor="staff:li",
                              note="Bulb replaced", data_dir=config.data_dir)
    asyncio.run(_one_round(web))
    news = visitor.new()
    assert tracking in texts(news) and "Bulb replaced" in texts(news)
    rating = [m for m in news if any(p.startswith("score:") for _, p in m["buttons"])]
    assert rating, news
    visitor.press("score:5")
    with db.session() as session:
        assert session.execute(select(Request.rating).where(
            Request.tracking_number == tracking)).scalar_one() == 5


def test_a_file_that_is_not_a_photo_is_refused_gently(app, web, db):
    visitor = Visitor(app)
    onboard(visitor)
    answer = visitor.post(files={"photo": ("x.jpg", b"MZ\x90\x00 not an image", "image/jpeg")})
    assert answer.json()["ok"]
    assert "not this kind of message" in texts(visitor.new())
    assert not list((web.config.data_dir / "media").glob("**/*.exe"))


def webm_voice_note(seconds: float = 1.0) -> bytes:
    """What Chromium's MediaRecorder makes: Opus in WebM (a tone, encoded by PyAV's FFmpeg)."""
    import av
    import numpy as np

    buffer = io.BytesIO()
    out = av.open(buffer, "w", format="webm")
    stream = out.add_stream("libopus", rate=48000)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(48000 * seconds)) / 48000))
    for start in range(0, len(tone) - 959, 960):
        frame = av.AudioFrame.from_ndarray(tone[start:start + 960].astype(np.float32)
                                           .reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = 48000
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
    out.close()
    return buffer.getvalue()


def test_a_recorded_voice_note_describes_the_problem_and_is_kept_as_ogg(app, web, db, config):
    import soundfile

    visitor = Visitor(app)
    onboard(visitor)
    visitor.press("menu:report")
    step = visitor.press(f"cat:{config.categories[0].id}")
    assert "You can also send a voice note." in texts(step)
    note = visitor.post(files={"voice": ("voice.webm", webm_voice_note(1.5), "audio/webm")})
    assert note.json()["ok"], note.text
    assert "Where is the problem?" in texts(visitor.new())
    visitor.say("Building 9")
    visitor.press("photo:skip")
    tracking = TRACKING.search(texts(visitor.press("confirm:submit"))).group(0)
    with db.session() as session:
        request = session.execute(select(Request).where(
            Request.tracking_number == tracking)).scalar_one()
        voice = request.attachments[0]
        assert (voice.kind, voice.channel, voice.mime) == ("voice", "web", "audio/ogg")
        assert 1.0 <= voice.duration <= 2.0
        kept = (config.data_dir / voice.path).read_bytes()
    assert kept.startswith(b"OggS")  # the console plays it as it plays Telegram's
    assert soundfile.info(io.BytesIO(kept)).subtype == "OPUS"
    # Something that is not audio is refused gently, and nothing is kept.
    web.messages_limit._buckets.clear()  # a minute later: not held back by the rate limit
    visitor.press("menu:report")
    visitor.press(f"cat:{config.categories[0].id}")
    before = set((config.data_dir / "media" / "voice").iterdir())
    junk = visitor.post(files={"voice": ("voice.webm", b"\x1aE\xdf\xa3 not really", "audio/webm")})
    assert junk.json()["ok"]
    assert "not this kind of message" in texts(visitor.new())
    assert set((config.data_dir / "media" / "voice").iterdir()) == before


def test_staff_see_web_residents_in_the_same_queue_and_transcripts_by_channel(app, web, db,
                                                                             config):
    from tests.console_helpers import StaffClient, add_staff

    visitor = Visitor(app)
    onboard(visitor)
    visitor.press("menu:report")
    visitor.press(f"cat:{config.categories[0].id}")
    visitor.say("The bench in the garden is broken")
    visitor.say("Garden of building 4")
    visitor.press("photo:skip")
    tracking = TRACKING.search(texts(visitor.press("confirm:submit"))).group(0)
    add_staff(db, "li.na", "staff")
    staff = StaffClient(app)  # the console, served beside the chat by the same app
    assert staff.login("li.na").status_code == 303
    queue = staff.get("/requests").text
    row = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{tracking}(?:(?!</tr>).)*</tr>", queue, re.DOTALL)
    assert row and "<td>web</td>" in row.group(0)
    resident = web_resident(db, web.signer.unsign(visitor.cookie).decode())
    transcript = staff.get(f"/conversations/{resident.id}").text
    assert "web ·" in transcript and "The bench in the garden is broken" in transcript
    assert f'<td><a href="/conversations/{resident.id}">#{resident.id}</a></td><td>web</td>' \
        in staff.get("/conversations").text


def test_a_short_code_moves_the_chat_to_another_device_once(app, web, db):
    phone = Visitor(app)
    onboard(phone)
    page = phone.http.post("/chat/move", data={"csrf_token": phone.token})
    assert page.status_code == 200
    code = re.search(r'<p class="code"[^>]*>(\d{4} \d{4})</p>', page.text).group(1)
    assert "http://127.0.0.1/chat/join" in page.text

    kiosk = Visitor(app, ip="10.0.0.5")
    kiosk.http.headers["accept-language"] = "en"
    kiosk.open("/chat/join")
    assert kiosk.http.post("/chat/join", data={"code": code}).status_code == 403  # no token
    wrong = kiosk.http.post("/chat/join", data={"code": "0000 0000",
                                                "csrf_token": kiosk.token})
    assert wrong.status_code == 400 and "wrong or has expired" in wrong.text
    kiosk.open("/chat/join")
    moved = kiosk.http.post("/chat/join", data={"code": code, "csrf_token": kiosk.token},
                            follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == "/chat"
    assert kiosk.http.get("/chat/messages?after=0").json() == \
        phone.http.get("/chat/messages?after=0").json()
    kiosk.open()
    kiosk.last = phone.last
    asked = texts(kiosk.press("menu:report"))
    assert "What is the problem about?" in asked
    assert texts(phone.new()) == asked  # one chat, on both devices
    # Used once: a third device cannot use it again.
    third = Visitor(app, ip="10.0.0.6")
    third.open("/chat/join")
    again = third.http.post("/chat/join", data={"code": code, "csrf_token": third.token})
    assert again.status_code == 400
    # A code is asked for with the page's token only.
    assert phone.http.post("/chat/move", data={"csrf_token": "nope"}).status_code == 403


def test_the_poster_shows_the_chat_address_per_language_as_a_qr_code(app):
    import segno

    staff = TestClient(app, base_url="https://linli.example.org")
    poster = staff.get("/chat/poster?lang=ug")
    assert poster.status_code == 200
    assert '<html lang="ug" dir="rtl">' in poster.text
    assert "https://linli.example.org/chat?lang=ug" in poster.text
    assert '<img class="poster-code" src="/chat/poster.svg?lang=ug"' in poster.text
    for language in ("zh_Hans", "bo", "mn"):
        assert f'href="/chat/poster?lang={language}"' in poster.text
    code = staff.get("/chat/poster.svg?lang=ug")
    assert code.headers["content-type"] == "image/svg+xml"
    expected = io.BytesIO()
    segno.make("https://linli.example.org/chat?lang=ug", error="m").save(
        expected, kind="svg", scale=10, border=4, xmldecl=False,
        title="https://linli.example.org/chat?lang=ug")
    assert code.content == expected.getvalue()
    # An unknown language is the community's default, never echoed into the page.
    odd = staff.get("/chat/poster?lang=%3Cscript%3E").text
    assert "<script" not in odd and "chat?lang=zh_Hans" in odd


def test_a_ballot_receipt_is_shown_live_and_after_a_reload_but_not_kept(app, web, db, config,
                                                                        tmp_path):
    from tests.test_ballot_secrecy import OPTIONS, RECEIPT, open_poll

    poll_id, _ = open_poll(config, db, tmp_path)
    visitor = Visitor(app)
    onboard(visitor)
    visitor.say(f"/start poll_{poll_id}")
    voted = texts(visitor.press(f"vote:{OPTIONS['east_gate']}"))
    receipt = RECEIPT.search(voted).group()
    assert receipt in visitor.open().text  # a reload soon after still shows it
    with db.session() as session:  # the outbox wiped it once delivered
        stored = json.dumps(list(session.execute(select(OutboxMessage.payload)).scalars()),
                            ensure_ascii=False)
    assert receipt not in stored
    web._secrets.clear()  # later, or after a restart: shown once, not kept
    page = visitor.open().text
    assert receipt not in page
    assert "This message was shown once and is not kept." in page


def test_the_hostile_corpus_through_the_web_chat(app, web, db):
    """Every hostile text and button of tests/data/hostile/corpus.jsonl, posted as a page
    would: an answer in the resident's language, nothing of it run as markup on the page."""
    from tests.test_hostile import CORPUS, LANGUAGES, MAX_ANSWER, SCRIPTS, _resident

    items = [item for item in CORPUS if item["kind"] in ("text", "button")]
    with db.session() as session:  # residents at the main menu, as the core's corpus test
        for i, _ in enumerate(items):
            _resident(session, f"hostile-{i}", LANGUAGES[i % len(LANGUAGES)], "web")
    visitor = Visitor(app)
    for i, item in enumerate(items):
        language, chat = LANGUAGES[i % len(LANGUAGES)], f"hostile-{i}"
        visitor.http.cookies.set(COOKIE, web.signer.sign(chat).decode(), domain="127.0.0.1",
                                 path="/chat")
        visitor.token, visitor.last = web.csrf_token(chat), 0
        if item["kind"] == "text":
            # A browser sends a lone surrogate as U+FFFD: it cannot be put in UTF-8.
            text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in item["text"])
            answer = visitor.post({"text": text})
        else:
            answer = visitor.post({"payload": item["data"]})
        label = f"{item['id']!r} ({language})"
        assert answer.status_code == 200 and answer.json()["ok"], label
        replies = visitor.new()
        assert replies, label
        assert sum(len(m["text"]) for m in replies) <= MAX_ANSWER, label
        assert re.search(SCRIPTS[language], replies[0]["text"]), label
        page = visitor.open().text
        assert page.count("<script") == 1, label  # only the page's own script tag
        assert re.search(r"<[a-z]+[^>]*\son[a-z]+=", page) is None, label
        web.messages_limit._buckets.clear()


def test_buttons_work_without_javascript(app, web, db):
    visitor = Visitor(app)
    visitor.open()
    response = visitor.post({"payload": "lang:en"}, script=False)
    assert response.status_code == 303 and response.headers["location"] == "/chat#end"
    assert "Would you like me to read my replies aloud" in visitor.open().text


def test_typing_a_number_presses_that_button(app, web, db):
    visitor = Visitor(app)
    visitor.open()
    visitor.new()
    chosen = visitor.say("3")  # English is the third language
    assert "Would you like me to read my replies aloud" in texts(chosen)
    assert web_resident(db, web.signer.unsign(visitor.cookie).decode()).language == "en"


def test_a_reload_mid_report_shows_the_step_again_with_its_choices(app, web, db, config):
    visitor = Visitor(app)
    onboard(visitor)
    visitor.press("menu:report")
    visitor.press(f"cat:{config.categories[0].id}")
    page = visitor.open().text
    forms = re.findall(r'<form class="choices".*?</form>', page, re.DOTALL)
    assert len(forms) == 1  # only the current step's choices can be pressed
    assert 'value="desc:own"' in forms[0]
    # The step goes on from where it was.
    assert "Where is the problem?" in texts(visitor.say("The front door is stuck"))


def test_a_uyghur_page_is_right_to_left(app, web, db):
    visitor = Visitor(app)
    onboard(visitor, "ug")
    page = visitor.open().text
    assert '<html lang="ug" dir="rtl">' in page
    assert re.search(r'<li class="msg bot"[^>]* lang="ug" dir="rtl">', page)
    picker = Visitor(app, ip="10.0.0.3").open("/chat?lang=bo").text
    assert '<html lang="bo" dir="ltr">' in picker


def test_voice_replies_come_as_audio_only_for_their_visitor(config, db):
    from bot.voice import Voice
    from tests.test_telegram import closed_port_url

    assistant = Assistant(config, db, channels=installed_channels())
    web = WebChannel(config, db, assistant, voice=Voice(config, gtts_url=closed_port_url()))
    app = web.wrap(create_app(config, db))
    visitor = Visitor(app)
    visitor.open()
    visitor.press("lang:en")
    menu = visitor.press("voice:on")
    voiced = [m for m in menu if m["audio"]]
    assert voiced, menu
    audio = visitor.http.get(voiced[-1]["audio"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/ogg"
    assert audio.content.startswith(b"OggS")
    page = visitor.open().text
    assert f'<source src="{voiced[-1]["audio"]}" type="audio/ogg">' in page
    assert 'class="replay"' in page
    other = Visitor(app, ip="10.0.0.2")
    other.open()
    assert other.http.get(voiced[-1]["audio"]).status_code == 404


def test_a_deep_link_opens_the_notice(app, web, db, env):
    added = run_cli(env, "notices", "add", "docs/examples/notice.yml")
    assert added.returncode == 0, added.stderr
    notice_id = int(re.search(r"\d+", added.stdout + added.stderr).group(0))
    assert run_cli(env, "notices", "publish", str(notice_id)).returncode == 0
    visitor = Visitor(app)
    opened = visitor.http.get(f"/chat?notice={notice_id}&lang=en", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/chat"
    page = visitor.open().text
    assert page.count('value="lang:en"') == 1  # the picker, once: the link started the chat
    visitor.press("lang:en")
    shown = texts(visitor.press("voice:off"))
    with db.session() as session:
        from bot.models import Notice

        notice = session.get(Notice, notice_id)
        title = notice.texts["en"]["title"]
    assert title in shown


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
@pytest.mark.parametrize("command", ["console", "serve"])
def test_linli_console_and_serve_serve_the_chat_and_stop_with_pages_open(env, command):
    """The wiring: the real command serves /chat beside the console; SIGTERM ends it at once
    even with a page's event stream open (the channel ends its streams first)."""
    import os
    import signal
    import subprocess
    import sys

    from bot.config import PROJECT_ROOT

    assert run_cli(env, "db", "upgrade").returncode == 0
    port = _free_port()
    environment = {k: v for k, v in env.items() if k != "LINLI_TELEGRAM_TOKEN"}
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", command, "--port", str(port)],
                               cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                page = httpx.get(base + "/chat", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "the chat never answered"
                time.sleep(0.5)
        assert page.status_code == 200 and 'value="lang:en"' in page.text
        assert httpx.get(base + "/login").status_code == 200  # the console beside it
        cookie = page.cookies[COOKIE]
        with httpx.stream("GET", base + "/chat/events?after=0",
                          headers={"Cookie": f"{COOKIE}={cookie}"}, timeout=10) as stream:
            assert next(stream.iter_lines()).startswith("retry:")
            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            assert process.wait(timeout=20) == 0
        assert time.monotonic() - started < 15
        _, err = process.communicate()
        assert f"the web chat on http://127.0.0.1:{port}/chat" in err
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def test_a_deep_link_opens_the_consultation_for_a_resident_who_has_a_language(app, web, db,
                                                                             config, tmp_path):
    from tests.test_ballot_secrecy import OPTIONS, open_poll

    poll_id, _ = open_poll(config, db, tmp_path)
    visitor = Visitor(app)
    onboard(visitor)
    visitor.new()
    opened = visitor.http.get(f"/chat?poll={poll_id}", follow_redirects=False)
    assert opened.status_code == 303
    shown = visitor.new()
    offered = [payload for m in shown for _, payload in m["buttons"]]
    assert f"vote:{OPTIONS['east_gate']}" in offered, shown
    # Not a number, or out of range: the plain chat, no turn.
    before = visitor.http.get("/chat/messages?after=0").json()["last"]
    for odd in ("abc", "-1", "99999999999", "1.5"):
        assert visitor.http.get(f"/chat?poll={odd}").status_code == 200
    assert visitor.http.get("/chat/messages?after=0").json()["last"] == before


def _events(base: str, cookie: str, query: str, count: int,
            headers: dict | None = None) -> list[dict]:
    """The first `count` messages of the page's server-sent event stream, from a real server
    (a test client would wait for the never-ending response to end)."""
    found: list[dict] = []
    headers = {"Cookie": f"{COOKIE}={cookie}", **(headers or {})}
    with httpx.stream("GET", f"{base}/chat/events{query}", headers=headers,
                      timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                data = json.loads(line[6:])
                if "skip" not in data:
                    found.append(data)
            if len(found) >= count:
                break
    return found


async def _one_round(web: WebChannel) -> None:
    await web.push_news()
    await web.sender.drain_once()


def test_outbox_rows_of_web_are_only_sent_by_the_web_sender(app, web, db):
    visitor = Visitor(app)
    onboard(visitor)
    with db.session() as session:
        channels = set(session.execute(select(OutboxMessage.channel)).scalars())
        statuses = set(session.execute(select(OutboxMessage.status)).scalars())
    assert channels == {"web"} and statuses == {"sent"}


# --- in real Chromium ------------------------------------------------------------------------
# Debian's headless Chromium, as the console's browser tests (tests/test_console_browser.py);
# run once, on SQLite: the HTTP tests above cover both databases.


@pytest.fixture
def chromium(tmp_path):
    """Headless Chromium as the console's tests start it, with a phone's screen."""
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument("--window-size=412,915")
    options.add_argument("--autoplay-policy=no-user-gesture-required")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def phone(browser) -> None:
    browser.set_window_size(412, 915)


def wait_text(browser, text: str, seconds: float = 15):
    WebDriverWait(browser, seconds).until(
        lambda d: text in d.find_element(By.ID, "messages").text)


def press(browser, payload: str, seconds: float = 15) -> None:
    """Clicks the current choice with this payload (a real button in the page)."""
    button = WebDriverWait(browser, seconds).until(ready.element_to_be_clickable(
        (By.CSS_SELECTOR, f'form.choices button[value="{payload}"]')))
    before = len(browser.find_elements(By.CSS_SELECTOR, "#messages > li.bot"))
    button.click()
    WebDriverWait(browser, seconds).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#messages > li.bot")) > before)


def type_in(browser, words: str) -> None:
    before = len(browser.find_elements(By.CSS_SELECTOR, "#messages > li.bot"))
    box = browser.find_element(By.ID, "text")
    box.send_keys(words)
    box.send_keys(Keys.ENTER)
    WebDriverWait(browser, 15).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#messages > li.bot")) > before)


def chat_screenshot(browser, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"webchat-{name}.png"))


def fresh_cache(browser) -> None:
    """Forgets what the browser cached: the next page's weight is what a first visit costs."""
    browser.execute_cdp_cmd("Network.clearBrowserCache", {})


def page_bytes(browser) -> int:
    """What the page fetched over the wire (document, style, script, fonts), audio excluded."""
    return browser.execute_script("""
        let total = performance.getEntriesByType('navigation')[0].transferSize;
        for (const r of performance.getEntriesByType('resource')) {
          if (r.initiatorType === 'audio' || r.name.indexOf('/chat/audio/') >= 0) continue;
          if (r.name.indexOf('/chat/events') >= 0 || r.name.indexOf('/chat/send') >= 0) continue;
          total += r.transferSize;
        }
        return total;""")


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
@pytest.mark.slow_e2e
def test_browser_report_with_photo_and_location_then_staff_news_live_and_rating(
        config, db, web, app, chromium, tmp_path):
    browser = chromium
    phone(browser)
    with served(app, web) as base:
        browser.get(base + "/chat?lang=en")
        browser.execute_cdp_cmd("Browser.grantPermissions", {
            "origin": base, "permissions": ["geolocation"]})
        browser.execute_cdp_cmd("Emulation.setGeolocationOverride", {
            "latitude": 39.9042, "longitude": 116.4074, "accuracy": 10})
        press(browser, "lang:en")
        press(browser, "voice:off")
        press(browser, "menu:report")
        category = config.categories[0]
        press(browser, f"cat:{category.id}")
        type_in(browser, "The light on the stairs is broken")
        share = WebDriverWait(browser, 10).until(ready.element_to_be_clickable(
            (By.CLASS_NAME, "share-location")))
        share.click()
        wait_text(browser, "send a photo")
        picture = tmp_path / "stairs.jpg"
        picture.write_bytes(jpeg())
        browser.find_element(By.ID, "photo").send_keys(str(picture))
        wait_text(browser, "Photos: 1")
        assert "39.90420" in browser.find_element(By.ID, "messages").text
        chat_screenshot(browser, "report-summary")
        press(browser, "confirm:submit")
        wait_text(browser, "Tracking number")
        tracking = TRACKING.findall(browser.find_element(By.ID, "messages").text)[-1]
        chat_screenshot(browser, "report-sent")

        # Staff resolve it; the page, never reloaded, shows the news and the rating.
        browser.execute_script("window.linliNotReloaded = true;")
        with db.session() as session:
            service.change_status(session, tracking, "resolved", actor="staff:li",
                                  note="Bulb replaced", data_dir=config.data_dir)
        wait_text(browser, "Bulb replaced", seconds=20)
        assert browser.execute_script("return window.linliNotReloaded === true;")
        chat_screenshot(browser, "status-live")
        press(browser, "score:5")
        live = browser.find_element(By.ID, "messages")
        assert live.get_attribute("aria-live") == "polite"

    with db.session() as session:
        request = session.execute(select(Request).where(
            Request.tracking_number == tracking)).scalar_one()
        assert request.rating == 5 and request.channel == "web"
        assert (round(request.latitude, 4), round(request.longitude, 4)) == (39.9042, 116.4074)
        assert [a.kind for a in request.attachments] == ["photo"]


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
@pytest.mark.slow_e2e
def test_browser_each_language_first_screen_uyghur_right_to_left_and_page_weight(
        config, db, web, app, chromium):
    browser = chromium
    phone(browser)
    with served(app, web) as base:
        browser.get(base + "/chat/poster?lang=bo")
        WebDriverWait(browser, 10).until(lambda d: d.execute_script(
            "const i = document.querySelector('.poster-code'); return i.complete && "
            "i.naturalWidth > 0;"))
        chat_screenshot(browser, "poster-bo")
        fresh_cache(browser)
        browser.get(base + "/chat")
        WebDriverWait(browser, 10).until(ready.presence_of_element_located(
            (By.CSS_SELECTOR, 'button[value="lang:bo"]')))
        chat_screenshot(browser, "picker")
        picker_weight = page_bytes(browser)
        assert 10_000 < picker_weight < 200_000, picker_weight
        for language in config.language_ids:
            browser.delete_all_cookies()
            browser.get(base + "/chat")
            press(browser, f"lang:{language}")
            if browser.find_elements(By.CSS_SELECTOR, 'button[value="voice:off"]'):
                press(browser, "voice:off")
            fresh_cache(browser)
            browser.refresh()  # the page in the chosen language
            WebDriverWait(browser, 10).until(ready.presence_of_element_located(
                (By.CSS_SELECTOR, 'button[value="menu:report"]')))
            direction = browser.find_element(By.TAG_NAME, "html").get_attribute("dir")
            assert direction == ("rtl" if language == "ug" else "ltr"), language
            assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == \
                language.replace("_", "-")
            chat_screenshot(browser, f"first-screen-{language}")
            weight = page_bytes(browser)
            assert 10_000 < weight < 200_000, (language, weight)
            if language == "ug":
                menu = browser.find_element(By.CSS_SELECTOR, "#messages > li.bot:last-child")
                assert browser.execute_script(
                    "return getComputedStyle(arguments[0]).direction;", menu) == "rtl"
            if language in ("bo", "ug"):  # the web font is what draws the script
                assert browser.execute_script(
                    "return document.fonts.check('20px \"Linli %s\"', arguments[0]);"
                    % ("Tibetan" if language == "bo" else "Uyghur"),
                    browser.find_element(By.CSS_SELECTOR, "#messages").text)


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
@pytest.mark.slow_e2e
def test_browser_a_reload_mid_report_resumes_the_step(config, db, web, app, chromium):
    browser = chromium
    phone(browser)
    with served(app, web) as base:
        browser.get(base + "/chat?lang=en")
        press(browser, "lang:en")
        press(browser, "voice:off")
        press(browser, "menu:report")
        press(browser, f"cat:{config.categories[0].id}")
        browser.refresh()
        WebDriverWait(browser, 10).until(ready.element_to_be_clickable(
            (By.CSS_SELECTOR, 'form.choices button[value="desc:own"]')))
        assert len(browser.find_elements(By.CSS_SELECTOR, "form.choices")) == 1
        type_in(browser, "The front door does not close")
        wait_text(browser, "Where is the problem?")
        # Keyboard only: the number of a choice, typed.
        browser.refresh()
        box = WebDriverWait(browser, 10).until(ready.element_to_be_clickable((By.ID, "text")))
        box.send_keys("Building 7, entrance 1")
        box.send_keys(Keys.ENTER)
        wait_text(browser, "send a photo")


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
@pytest.mark.slow_e2e
def test_browser_voice_replies_play_with_a_big_replay_button(config, db, chromium):
    from bot.voice import Voice
    from tests.test_telegram import closed_port_url

    assistant = Assistant(config, db, channels=installed_channels())
    web = WebChannel(config, db, assistant, voice=Voice(config, gtts_url=closed_port_url()))
    app = web.wrap(create_app(config, db))
    browser = chromium
    phone(browser)
    with served(app, web) as base:
        browser.get(base + "/chat?lang=en")
        press(browser, "lang:en")
        press(browser, "voice:on")
        audio = WebDriverWait(browser, 20).until(ready.presence_of_element_located(
            (By.CSS_SELECTOR, "#messages audio source[type='audio/ogg']")))
        source = audio.get_attribute("src")
        assert "/chat/audio/" in source
        replay = browser.find_elements(By.CSS_SELECTOR, "#messages .replay")[-1]
        assert replay.size["height"] >= 44  # a big target
        replay.click()
        WebDriverWait(browser, 15).until(lambda d: d.execute_script(
            "const a = [...document.querySelectorAll('#messages audio')].pop();"
            "return a.currentTime > 0 || a.ended;"))
        duration = browser.execute_script(
            "return [...document.querySelectorAll('#messages audio')].pop().duration;")
        assert duration > 0.5
        chat_screenshot(browser, "voice-reply")
