"""The web chat: a resident channel in any browser at /chat, replies through the outbox.

A visitor is recognised by a long-lived cookie holding a random id signed with the server secret
(bot/keys.py); that id is their chat id, and their resident row's `channel_user_id`. What they
send (text, a pressed button, a shared location, a photo, a voice note) becomes an Incoming for
the Assistant; the turn's replies go to the outbox in the turn's transaction, as Telegram's do,
and a Sender (bot/delivery.py) hands them to this channel's transport, which makes a voice
reply's audio and wakes the visitor's open pages. A page reads the chat's delivered messages
after the last id it has (server-sent events, or polling without them), so nothing is lost
across a reload, a dropped connection or a restart, and everything arrives in order.

Every page works without JavaScript (forms post, the page is reloaded); the script adds live
messages, geolocation, voice notes and replay. See docs/webchat.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import secrets
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from itsdangerous import BadSignature, Signer
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.requests import Request as HttpRequest
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bot.config import Config
from bot.console.asgi import BodyLimit, SecureCookies, SecurityHeaders, TrustedProxies
from bot.db import Database
from bot.delivery import Sender
from bot.i18n import Translator
from bot.keys import secret_key
from bot.messages import LOCATION, OUTBOX, PHOTO, VOICE, Capability, Incoming, reply_from_stored
from bot.models import OutboxMessage, Resident
from bot.services import requests as request_service

if TYPE_CHECKING:
    from bot.core import Assistant  # handed in by the wiring, never imported at run time

log = logging.getLogger(__name__)

CHANNEL = "web"
PREFIX = "/chat"
ASSETS = Path(__file__).resolve().parent / "web_assets"
COOKIE = "linli_chat"
COOKIE_SECONDS = 400 * 24 * 3600  # the longest a browser keeps a cookie (Chrome's cap)
MAX_UPLOAD = 20 * 1024 * 1024  # a photo or voice note; the core's "too large" names 20 MB
MAX_PAYLOAD = 64  # characters of a button's payload (Telegram's callback limit)
HISTORY = 150  # messages a page shows when it opens
WAKE_SECONDS = 3.0  # an open page's stream looks at the database at least this often
KEEPALIVE_SECONDS = 15.0
SECRET_SHOWN_SECONDS = 600  # a ballot's receipt is kept in memory this long for a reload
MOVE_CODE_SECONDS = 600  # a code to continue on another device works once, this long
JOINS_PER_MINUTE = 10  # tries of such a code per client address, after a burst of 5
SHOWN = ("sent", "unconfirmed")  # outbox statuses a page shows (unconfirmed: a crash mid-send)
PHOTO_TYPES = ((b"\xff\xd8\xff", "image/jpeg", ".jpg"),
               (b"\x89PNG\r\n\x1a\n", "image/png", ".png"))
AUDIO_SUFFIXES = {"audio/ogg": ".ogg", "audio/mpeg": ".mp3"}
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
       "script-src 'self'; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
       "form-action 'self'; base-uri 'none'")


def page_texts(t: Translator) -> dict[str, str]:
    """The page's own words (the chat's messages come from the core), in the page's language."""
    return {
        "title": t("Chat with Linli"),
        "messages": t("Messages"),
        "type": t("Type a message, or the number of a choice"),
        "send": t("Send"),
        "photo": t("Send a photo"),
        "location": t("📍 Share my location"),
        "map": t("🗺 Open the map"),
        "record": t("🎤 Record a voice note"),
        "stop": t("⏹ Stop and send"),
        "play": t("▶ Play again"),
        "voice": t("Voice reply"),
        "you": t("You"),
        "offline": t("Connection lost. Trying again…"),
        "no_location": t("Your location could not be read. Please type the place instead."),
        "too_many": t("Too many messages. Please wait a minute, then try again."),
        "expired": t("This page has expired. Please open the chat again."),
        "kept_once": t("This message was shown once and is not kept."),
        "sending": t("Sending…"),
        "move": t("Use this chat on another device"),
        "join": t("Continue a chat from another device"),
        "enter_code": t("Enter the code from your other device"),
        "continue": t("Continue"),
        "back": t("Back to the chat"),
        "wrong_code": t("That code is wrong or has expired. Please ask for a new one."),
        "scan": t("Scan this code with your phone's camera, or open this address:"),
        "no_account": t("No account is needed. Write in your own language, or choose by "
                        "number."),
    }


class RateLimit:
    """At most `per_minute` events a minute for each key, after a burst of `burst`."""

    def __init__(self, per_minute: float, burst: float):
        self.rate, self.burst = per_minute / 60.0, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > 50_000:  # forget the buckets that are full again
            full = self.burst / self.rate
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}
        return allowed


class WebTransport:
    """Delivers one outbox row to the web chat: makes a voice reply's audio, keeps a secret
    reply's text for a while (the outbox wipes it), and wakes the visitor's open pages."""

    channel = CHANNEL

    def __init__(self, web: WebChannel, voice=None):
        self.web = web
        self.voice = voice

    async def send(self, row: OutboxMessage) -> None:
        payload = row.payload
        if payload.get("voice") and self.voice is not None:
            from bot.voice import clip_id  # bot.voice loads numpy and scipy: only with voice on

            source = payload.get("source")
            audio = await self.voice.speak(
                payload["text"], payload["language"], slow=bool(payload.get("slow")),
                clip_id=clip_id(source) if source else None, cache=bool(payload.get("cache")))
            if audio is not None:
                folder = self.web.audio_dir
                folder.mkdir(parents=True, exist_ok=True)
                suffix = AUDIO_SUFFIXES.get(audio.mime, ".ogg")
                await asyncio.to_thread((folder / f"{row.id}{suffix}").write_bytes, audio.data)
        if row.kind == "secret":
            self.web.keep_secret(row.id, payload)
        # The Sender marks the row sent right after this returns, without awaiting: the pages
        # woken on the loop's next round find it delivered.
        self.web.wake_soon(row.chat_id)


class WebChannel:
    """The web chat's pages, its outbox transport, and the loop that pushes news."""

    name = CHANNEL
    # What a resident can send here, and what the page shows. No reply keyboards: the page's
    # buttons are big already.
    carries: frozenset[Capability] = frozenset({PHOTO, VOICE, LOCATION, OUTBOX})
    transport: WebTransport  # sends the outbox rows of this channel (bot/delivery.py)

    def __init__(self, config: Config, db: Database, assistant: Assistant, voice=None,
                 push_interval: float = 2.0):
        if not assistant.carries(CHANNEL, OUTBOX):
            raise ValueError("the assistant must queue the web channel's replies")
        self.config, self.db, self.assistant = config, db, assistant
        self.transport = WebTransport(self, voice)
        self.sender = Sender(db, self.transport, rate=200.0, chat_rate=20.0,
                             chat_burst=20.0, data_dir=config.data_dir)
        self.push_interval = push_interval
        self.audio_dir = config.data_dir / "web-voice"
        self.media_dir = config.data_dir / "media"
        secret = secret_key(config.data_dir)
        self.signer = Signer(secret, salt="linli web chat visitor")
        self._csrf_key = hashlib.sha256(f"linli web chat csrf:{secret}".encode()).digest()
        self.templates = Jinja2Templates(directory=str(ASSETS / "templates"))
        limits = config.web_chat  # config.yml `web_chat`
        self.messages_limit = RateLimit(limits.messages_per_minute, limits.message_burst)
        self.visitors_limit = RateLimit(limits.new_visitors_per_hour / 60.0,
                                        limits.new_visitors_per_hour)
        self.joins_limit = RateLimit(JOINS_PER_MINUTE, 5)
        # Codes to continue on another device: in this process's memory (one `linli serve`
        # serves the web chat; a code lost in a restart is simply asked for again).
        self._codes: dict[str, tuple[str, float]] = {}
        self._wakers: dict[str, set[asyncio.Event]] = {}
        self._secrets: dict[int, tuple[float, dict]] = {}
        self._stop = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task | None = None

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Sends what the outbox holds for web visitors, and pushes staff's news, until stop."""
        self.sender.recover()
        self._stop.clear()
        self._closing.clear()
        self._task = asyncio.create_task(
            self.sender.run(self._stop, interval=self.push_interval, before=self.push_news))
        log.info("web chat started at %s", PREFIX)

    async def stop(self) -> None:
        """Ends the open pages' streams (their browsers reconnect to the next server) and the
        sending loop."""
        self._closing.set()
        for wakers in list(self._wakers.values()):
            for waker in wakers:
                waker.set()
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        log.info("web chat stopped")

    async def push_news(self) -> None:
        """Status changes made by staff: each visitor with news gets a push turn."""
        with self.db.session() as session:
            chats = request_service.residents_with_news(session, CHANNEL)
        for chat_id in chats:
            await self.assistant.handle(Incoming(channel=CHANNEL, user_id=chat_id, kind="push"))

    # --- wiring ---------------------------------------------------------------------------
    def app(self) -> Starlette:
        routes = [
            Route(PREFIX, self.page, methods=["GET"]),
            Route(PREFIX + "/send", self.send, methods=["POST"]),
            Route(PREFIX + "/events", self.events, methods=["GET"]),
            Route(PREFIX + "/messages", self.messages, methods=["GET"]),
            Route(PREFIX + "/audio/{row_id:int}", self.audio, methods=["GET"]),
            Route(PREFIX + "/move", self.move, methods=["POST"]),
            Route(PREFIX + "/join", self.join, methods=["GET", "POST"]),
            Route(PREFIX + "/poster", self.poster, methods=["GET"]),
            Route(PREFIX + "/poster.svg", self.poster_code, methods=["GET"]),
            Mount(PREFIX + "/static", app=_CachedStatic(StaticFiles(
                directory=str(ASSETS / "static")))),
        ]
        console = self.config.console
        return Starlette(routes=routes, middleware=[
            Middleware(TrustedProxies, proxies=console.trusted_proxies),
            Middleware(BodyLimit, limit=MAX_UPLOAD + 64 * 1024),
            # Pages not cached; the browser may ask for the place, camera and microphone.
            Middleware(SecurityHeaders, csp=CSP,
                       permissions="geolocation=(self), camera=(self), microphone=(self)"),
            Middleware(SecureCookies, always=console.secure_cookie),
        ])

    def wrap(self, other) -> _Dispatch:
        """One ASGI app: /chat… here, everything else (the staff console) to `other`."""
        return _Dispatch(self.app(), other)

    # --- who is asking --------------------------------------------------------------------
    def visitor(self, request: HttpRequest) -> str | None:
        """The visitor id of a validly signed cookie, else None."""
        raw = request.cookies.get(COOKIE, "")
        if not raw:
            return None
        try:
            return self.signer.unsign(raw).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            return None

    def csrf_token(self, visitor: str) -> str:
        return hmac.new(self._csrf_key, visitor.encode(), hashlib.sha256).hexdigest()

    def _remember(self, response: Response, visitor: str) -> None:
        response.set_cookie(COOKIE, self.signer.sign(visitor).decode("ascii"),
                            max_age=COOKIE_SECONDS, path=PREFIX, httponly=True, samesite="lax")

    def _resident(self, visitor: str) -> Resident | None:
        with self.db.session() as session:
            resident = session.execute(select(Resident).where(
                Resident.channel == CHANNEL,
                Resident.channel_user_id == visitor)).scalar_one_or_none()
            if resident is not None:
                session.expunge(resident)
            return resident

    def _language(self, request: HttpRequest, resident: Resident | None) -> str:
        """The resident's language; before they chose, ?lang= (a poster's link), else the
        browser's first language we have, else the community's default."""
        if resident is not None and resident.language in self.config.language_ids:
            return resident.language
        return self._hint(request) or self.config.default_language

    def _hint(self, request: HttpRequest) -> str | None:
        wanted = [request.query_params.get("lang", "")]
        wanted += [part.split(";")[0].strip()
                   for part in request.headers.get("accept-language", "").split(",")]
        for tag in wanted:
            tag = tag.replace("-", "_").lower()
            if not tag:
                continue
            if tag in ("zh_tw", "zh_hk", "zh_mo", "zh_hant"):
                tag = "zh_hant"
            for language in self.config.language_ids:
                if tag == language.lower() or tag.split("_")[0] == language.split("_")[0].lower():
                    if tag.startswith("zh") and language.lower() not in (tag, "zh_hans"):
                        continue
                    return language
        return None

    def _client(self, request: HttpRequest) -> str:
        return request.client.host if request.client else "unknown"

    # --- pages ----------------------------------------------------------------------------
    async def page(self, request: HttpRequest) -> Response:
        """The chat. A new visitor gets a cookie and the language picker (a resident row);
        ?notice=N and ?poll=N open that notice or consultation (then the plain address)."""
        visitor = self.visitor(request)
        fresh = visitor is None
        if fresh:
            if not self.visitors_limit.allow(self._client(request)):
                t = self.assistant.catalogs.translator(self._language(request, None))
                return PlainTextResponse(page_texts(t)["too_many"], status_code=429)
            visitor = secrets.token_urlsafe(18)
        link = _deep_link(request)
        if request.method == "GET":
            if link is not None:
                await self._turn(Incoming(CHANNEL, visitor, "text", text=f"/start {link}",
                                          language_hint=self._hint(request)))
                response = RedirectResponse(PREFIX, status_code=303)
                self._remember(response, visitor)
                return response
            if fresh or not await run_in_threadpool(self._has_messages, visitor):
                await self._turn(Incoming(CHANNEL, visitor, "resume",
                                          language_hint=self._hint(request)))
        resident = await run_in_threadpool(self._resident, visitor)
        language = self._language(request, resident)
        t = self.assistant.catalogs.translator(language)
        texts = page_texts(t)
        shown, last = await run_in_threadpool(self._history, visitor, texts)
        active = next((m["id"] for m in reversed(shown) if m["buttons"] or m["location"]), None)
        response = self.templates.TemplateResponse(request, "chat.html", {
            "texts": texts, "lang": _tag(language), "rtl": t.rtl, "messages": shown,
            "vertical": self._vertical(language),
            "active": active, "last": last, "csrf": self.csrf_token(visitor),
            "community": t.name(self.config.community_names), "prefix": PREFIX,
        })
        self._remember(response, visitor)
        return response

    async def send(self, request: HttpRequest) -> Response:
        """One thing the visitor did: text, a button, a location, a photo or a voice note."""
        visitor = self.visitor(request)
        resident = await run_in_threadpool(self._resident, visitor) if visitor else None
        texts = page_texts(self.assistant.catalogs.translator(self._language(request, resident)))
        wants_json = request.headers.get("x-linli-chat") == "1"
        if visitor is None:
            return self._refuse(wants_json, 403, texts["expired"])
        try:
            form = await request.form(max_files=1, max_fields=10)
        except Exception:  # noqa: BLE001  (a malformed body: multipart's own exceptions vary)
            return self._refuse(wants_json, 400, texts["expired"])
        if not self._csrf_ok(visitor, form.get("csrf_token")):
            return self._refuse(wants_json, 403, texts["expired"])
        if not self.messages_limit.allow(visitor):
            return self._refuse(wants_json, 429, texts["too_many"])
        incoming = await self._incoming(visitor, form)
        await form.close()
        if incoming is None:
            return self._refuse(wants_json, 400, texts["expired"])
        failed = await self._turn(incoming)
        if wants_json:
            return JSONResponse({"ok": not failed, "error": failed})
        return RedirectResponse(PREFIX + "#end", status_code=303)

    async def events(self, request: HttpRequest) -> Response:
        """The chat's messages after ?after= (or the browser's Last-Event-ID) as server-sent
        events, then each new one as it is delivered, until the page closes."""
        visitor = self.visitor(request)
        if visitor is None:
            return Response(status_code=403)
        after = max(_int(request.query_params.get("after")),
                    _int(request.headers.get("last-event-id")))
        resident = await run_in_threadpool(self._resident, visitor)
        texts = page_texts(self.assistant.catalogs.translator(self._language(request, resident)))
        waker = asyncio.Event()
        self._wakers.setdefault(visitor, set()).add(waker)

        async def stream():
            nonlocal after
            try:
                yield "retry: 2000\n\n"
                quiet = 0.0
                while not self._closing.is_set():
                    shown, last = await run_in_threadpool(self._after, visitor, after, texts)
                    for message in shown:
                        yield f"id: {message['id']}\ndata: {json.dumps(message)}\n\n"
                    if last > after and not shown:
                        yield f"id: {last}\ndata: {{\"skip\": {last}}}\n\n"
                    # A full batch (HISTORY rows span at least as many ids): the rest at once.
                    more = last - after >= HISTORY
                    after = max(after, last)
                    if more:
                        continue
                    if shown:
                        quiet = 0.0
                    elif quiet >= KEEPALIVE_SECONDS:
                        yield ": still here\n\n"
                        quiet = 0.0
                    try:
                        await asyncio.wait_for(waker.wait(), timeout=WAKE_SECONDS)
                    except asyncio.TimeoutError:
                        quiet += WAKE_SECONDS
                    waker.clear()
            finally:
                wakers = self._wakers.get(visitor, set())
                wakers.discard(waker)
                if not wakers:
                    self._wakers.pop(visitor, None)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store",
                                          "x-accel-buffering": "no"})

    async def messages(self, request: HttpRequest) -> Response:
        """The chat's messages after ?after=, as JSON: for pages without server-sent events."""
        visitor = self.visitor(request)
        if visitor is None:
            return JSONResponse({"error": "no chat"}, status_code=403)
        resident = await run_in_threadpool(self._resident, visitor)
        texts = page_texts(self.assistant.catalogs.translator(self._language(request, resident)))
        shown, last = await run_in_threadpool(
            self._after, visitor, _int(request.query_params.get("after")), texts)
        return JSONResponse({"messages": shown, "last": last})

    async def audio(self, request: HttpRequest) -> Response:
        """A voice reply's audio: only to the visitor whose chat it was sent to."""
        visitor = self.visitor(request)
        row_id = request.path_params["row_id"]
        if visitor is None or not 0 < row_id < 2**31:
            return Response(status_code=404)
        with self.db.session() as session:
            owner = session.execute(select(OutboxMessage.chat_id).where(
                OutboxMessage.id == row_id, OutboxMessage.channel == CHANNEL)).scalar()
        path = self._audio_file(row_id)
        if owner != visitor or path is None:
            return Response(status_code=404)
        mime = "audio/mpeg" if path.suffix == ".mp3" else "audio/ogg"
        return FileResponse(path, media_type=mime, headers={"cache-control": "private"})

    async def move(self, request: HttpRequest) -> Response:
        """A short code that lets another device continue this chat (once, for ten minutes)."""
        visitor = self.visitor(request)
        resident = await run_in_threadpool(self._resident, visitor) if visitor else None
        t = self.assistant.catalogs.translator(self._language(request, resident))
        texts = page_texts(t)
        form = await request.form(max_files=0, max_fields=5)
        if visitor is None or not self._csrf_ok(visitor, form.get("csrf_token")):
            return self._refuse(False, 403, texts["expired"])
        if not self.messages_limit.allow(visitor):
            return self._refuse(False, 429, texts["too_many"])
        now = time.monotonic()
        self._codes = {c: v for c, v in self._codes.items() if v[1] > now and v[0] != visitor}
        code = f"{secrets.randbelow(10**8):08d}"
        self._codes[code] = (visitor, now + MOVE_CODE_SECONDS)
        address = str(request.base_url).rstrip("/") + PREFIX + "/join"
        return self._small_page(request, t, texts, visitor, "code", {
            "code": f"{code[:4]} {code[4:]}",
            "code_line": t("Your code: {code}", code=f"{code[:4]} {code[4:]}"),
            "how": t("On the other device, open {address} and enter this code. It works once, "
                     "within 10 minutes.", address=address)})

    async def join(self, request: HttpRequest) -> Response:
        """Enter a code from another device: this browser becomes that chat."""
        visitor = self.visitor(request)
        fresh = visitor is None
        if fresh:
            if not self.visitors_limit.allow(self._client(request)):
                t = self.assistant.catalogs.translator(self._language(request, None))
                return PlainTextResponse(page_texts(t)["too_many"], status_code=429)
            visitor = secrets.token_urlsafe(18)  # no resident yet: only for the form's token
        resident = None if fresh else await run_in_threadpool(self._resident, visitor)
        t = self.assistant.catalogs.translator(self._language(request, resident))
        texts = page_texts(t)
        error = None
        if request.method == "POST":
            form = await request.form(max_files=0, max_fields=5)
            if not self._csrf_ok(visitor, form.get("csrf_token")):
                return self._refuse(False, 403, texts["expired"])
            if not self.joins_limit.allow(self._client(request)):
                return self._refuse(False, 429, texts["too_many"])
            code = "".join(ch for ch in str(form.get("code", ""))[:40] if ch.isdigit())
            found = self._codes.pop(code, None) if len(code) == 8 else None
            if found is not None and found[1] > time.monotonic():
                response = RedirectResponse(PREFIX, status_code=303)
                self._remember(response, found[0])
                return response
            error = texts["wrong_code"]
        response = self._small_page(request, t, texts, visitor, "join", {"error": error},
                                    status=400 if error else 200)
        self._remember(response, visitor)
        return response

    def _small_page(self, request: HttpRequest, t: Translator, texts: dict, visitor: str,
                    kind: str, values: dict, status: int = 200) -> Response:
        return self.templates.TemplateResponse(request, "chat_device.html", {
            "texts": texts, "lang": _tag(t.language), "rtl": t.rtl, "kind": kind,
            "csrf": self.csrf_token(visitor), "prefix": PREFIX,
            "community": t.name(self.config.community_names), **values}, status_code=status)

    def _csrf_ok(self, visitor: str, given) -> bool:
        return isinstance(given, str) and hmac.compare_digest(
            given.encode(), self.csrf_token(visitor).encode())

    async def poster(self, request: HttpRequest) -> Response:
        """A printable poster for staff: the chat's address in one language (?lang=), as a QR
        code and in large type; links to the other languages' posters (not printed)."""
        language = self._poster_language(request)
        t = self.assistant.catalogs.translator(language)
        others = [(lang.id, lang.native_name) for lang in self.config.languages]
        return self.templates.TemplateResponse(request, "chat_poster.html", {
            "texts": page_texts(t), "lang": _tag(language), "rtl": t.rtl, "prefix": PREFIX,
            "community": t.name(self.config.community_names), "language": language,
            "address": self._chat_address(request, language), "others": others})

    async def poster_code(self, request: HttpRequest) -> Response:
        """The poster's QR code (SVG): the chat's address with ?lang= of the poster."""
        import io

        import segno

        address = self._chat_address(request, self._poster_language(request))
        image = io.BytesIO()
        segno.make(address, error="m").save(image, kind="svg", scale=10, border=4,
                                            xmldecl=False, title=address)
        return Response(image.getvalue(), media_type="image/svg+xml",
                        headers={"cache-control": "no-store"})

    def _poster_language(self, request: HttpRequest) -> str:
        wanted = request.query_params.get("lang", "")
        return wanted if wanted in self.config.language_ids else self.config.default_language

    @staticmethod
    def _chat_address(request: HttpRequest, language: str) -> str:
        """This server's chat address as the poster's reader sees it (behind a trusted proxy,
        its scheme and host), opening in `language`."""
        return f"{str(request.base_url).rstrip('/')}{PREFIX}?lang={language}"

    # --- turns ----------------------------------------------------------------------------
    async def _turn(self, incoming: Incoming) -> str | None:
        """Runs the turn and delivers its replies now; the apology's text if it failed (the
        turn rolled back, so nothing of it is in the outbox)."""
        try:
            await self.assistant.handle(incoming, raise_errors=True)
        except Exception:
            log.exception("turn failed on channel %s", CHANNEL)
            return " ".join(r.text for r in self.assistant.apology_for(incoming))
        try:
            await self.sender.flush_chat(incoming.user_id)
        except Exception:  # the sending loop delivers it on its next round
            log.exception("could not deliver at once; the outbox keeps it")
        return None

    async def _incoming(self, visitor: str, form) -> Incoming | None:
        base = {"channel": CHANNEL, "user_id": visitor}
        for field, kind in (("photo", "photo"), ("voice", "voice")):
            upload = form.get(field)
            if isinstance(upload, UploadFile) and upload.filename is not None:
                data = await upload.read(MAX_UPLOAD + 1)
                if data:
                    return await self._media_incoming(kind, data, upload.content_type, base)
        payload = form.get("payload")
        if isinstance(payload, str):  # even empty: the core answers "that menu has expired"
            # Payloads are ours and printable; a control character (a NUL, which PostgreSQL
            # refuses in text) can only come from a forged form.
            payload = "".join(ch for ch in payload[:MAX_PAYLOAD] if ch.isprintable())
            return Incoming(kind="button", payload=payload, **base)
        latitude, longitude = form.get("latitude"), form.get("longitude")
        if isinstance(latitude, str) and isinstance(longitude, str) and latitude and longitude:
            try:
                lat, lon = float(latitude), float(longitude)
            except ValueError:
                return None
            if not (math.isfinite(lat) and math.isfinite(lon)):
                return None
            return Incoming(kind="location", latitude=lat, longitude=lon, **base)
        text = form.get("text")
        if isinstance(text, str):
            return Incoming(kind="text", text=text, **base)
        return None

    async def _media_incoming(self, kind: str, data: bytes, mime: str | None,
                              base: dict) -> Incoming:
        if len(data) > MAX_UPLOAD:
            return Incoming(kind="unsupported", media={"type": f"{kind}_too_large"}, **base)
        if kind == "photo":
            found = next(((m, s) for magic, m, s in PHOTO_TYPES if data.startswith(magic)), None)
            if found is None:
                return Incoming(kind="unsupported", media={"type": "document"}, **base)
            mime, suffix = found
            stored = data
        else:
            try:
                stored, duration = await asyncio.to_thread(_as_ogg, data)
            except Exception as exc:  # noqa: BLE001  (PyAV raises many kinds for bad audio)
                log.warning("a voice note could not be read (%s)", type(exc).__name__)
                return Incoming(kind="unsupported", media={"type": "audio"}, **base)
            mime, suffix = "audio/ogg", ".ogg"
        folder = self.media_dir / kind
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}{suffix}"
        await asyncio.to_thread((folder / name).write_bytes, stored)
        media = {"kind": kind, "file_id": f"web:{name}", "mime": mime, "size": len(stored),
                 "path": f"media/{kind}/{name}"}
        if kind == "voice":
            media["duration"] = duration
        return Incoming(kind=kind, media=media, **base)

    def _refuse(self, wants_json: bool, status: int, text: str) -> Response:
        if wants_json:
            return JSONResponse({"ok": False, "error": text}, status_code=status)
        return PlainTextResponse(text, status_code=status)

    # --- what a page shows ----------------------------------------------------------------
    def _has_messages(self, visitor: str) -> bool:
        with self.db.session() as session:
            return session.execute(select(OutboxMessage.id).where(
                OutboxMessage.channel == CHANNEL, OutboxMessage.chat_id == visitor)
                .limit(1)).first() is not None

    def _history(self, visitor: str, texts: dict) -> tuple[list[dict], int]:
        """The chat's last HISTORY delivered messages, oldest first, and the last id."""
        with self.db.session() as session:
            rows = session.execute(
                select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.payload)
                .where(OutboxMessage.channel == CHANNEL, OutboxMessage.chat_id == visitor,
                       OutboxMessage.status.in_(SHOWN))
                .order_by(OutboxMessage.id.desc()).limit(HISTORY)).all()
        rows.reverse()
        return self._shown(rows, texts), (rows[-1].id if rows else 0)

    def _after(self, visitor: str, after: int, texts: dict) -> tuple[list[dict], int]:
        """The chat's delivered messages after id `after`, in order, and the last id seen.

        A chat's rows are delivered in id order (the Sender sends a chat's next row only after
        the one before), so a page that asks for everything after its last id misses none."""
        with self.db.session() as session:
            rows = session.execute(
                select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.payload)
                .where(OutboxMessage.channel == CHANNEL, OutboxMessage.chat_id == visitor,
                       OutboxMessage.status.in_(SHOWN), OutboxMessage.id > after)
                .order_by(OutboxMessage.id).limit(HISTORY)).all()
        return self._shown(rows, texts), (rows[-1].id if rows else after)

    def _shown(self, rows, texts: dict) -> list[dict]:
        messages = []
        for row in rows:
            message = self._message(row.id, row.kind, row.payload, texts)
            if message is not None:
                messages.append(message)
        return messages

    def _message(self, row_id: int, kind: str, payload: dict, texts: dict) -> dict | None:
        """One outbox row as the page draws it (None: nothing to show, e.g. a voice row of a
        language without voice whose note the resident already had)."""
        if payload.get("scrubbed") or "sealed" in payload:
            kept = self._secrets.get(row_id)
            payload = kept[1] if kept and kept[0] > time.monotonic() else {
                "text": texts["kept_once"]}
        message = {"id": row_id, "text": "", "buttons": [], "location": False,
                   "rtl": bool(payload.get("rtl")), "lang": _tag(payload.get("language") or ""),
                   "vertical": self._vertical(payload.get("language")), "audio": None,
                   "map": None}
        if payload.get("voice"):
            if self._audio_file(row_id) is not None:
                message["audio"] = f"{PREFIX}/audio/{row_id}"
            elif payload.get("note"):
                message["text"] = payload["note"]
            else:
                return None
            return message
        message["text"] = str(payload.get("text", ""))
        message["buttons"] = [[str(label), str(data)] for label, data in
                              payload.get("buttons") or []]
        message["location"] = bool(payload.get("request_location"))
        if payload.get("venue"):  # a map pin: a link to the place on OpenStreetMap
            message["map"] = reply_from_stored(payload).venue.map_url
        return message

    def _vertical(self, language: str | None) -> bool:
        """Whether config.yml says this language is written top to bottom (`vertical`)."""
        return language in self.config.language_ids and self.config.language(language).vertical

    def _audio_file(self, row_id: int) -> Path | None:
        for suffix in AUDIO_SUFFIXES.values():
            path = self.audio_dir / f"{row_id}{suffix}"
            if path.is_file():
                return path
        return None

    # --- delivery hooks -------------------------------------------------------------------
    def keep_secret(self, row_id: int, payload: dict) -> None:
        now = time.monotonic()
        self._secrets = {k: v for k, v in self._secrets.items() if v[0] > now}
        self._secrets[row_id] = (now + SECRET_SHOWN_SECONDS, dict(payload))

    def wake_soon(self, chat_id: str) -> None:
        wakers = list(self._wakers.get(chat_id, ()))
        if wakers:
            loop = asyncio.get_running_loop()
            for waker in wakers:
                loop.call_soon(waker.set)


def _as_ogg(data: bytes) -> tuple[bytes, float]:
    """A recorded voice note (Chromium records WebM/Opus, Firefox Ogg/Opus) as Ogg/Opus, the
    container Telegram's voice notes come in and the console plays; and its seconds."""
    import io

    import av

    source = av.open(io.BytesIO(data))
    try:
        stream = source.streams.audio[0]
        if stream.codec_context.name != "opus":
            raise ValueError("not Opus audio")
        target = io.BytesIO()
        out = av.open(target, "w", format="ogg")
        try:
            copy = out.add_stream_from_template(stream)
            seconds = 0.0
            for packet in source.demux(stream):
                if packet.dts is None:
                    continue
                if packet.pts is not None and packet.time_base is not None:
                    seconds = max(seconds, float((packet.pts + (packet.duration or 0))
                                                 * packet.time_base))
                packet.stream = copy
                out.mux(packet)
        finally:
            out.close()
    finally:
        source.close()
    return target.getvalue(), round(seconds, 1)


def _deep_link(request: HttpRequest) -> str | None:
    for key in ("notice", "poll"):
        value = request.query_params.get(key, "")
        if value.isdigit() and 0 < int(value) < 2**31:
            return f"{key}_{int(value)}"
    return None


def _int(value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 0
    return number if 0 <= number < 2**31 else 0


def _tag(language: str) -> str:
    """A language id as an HTML lang attribute (zh_Hans → zh-Hans)."""
    return language.replace("_", "-")


class _Dispatch:
    """Sends /chat and /chat/… to the web chat, everything else to the other app."""

    def __init__(self, chat, other):
        self.chat, self.other = chat, other

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] in ("http", "websocket") else ""
        if path == PREFIX or path.startswith(PREFIX + "/"):
            await self.chat(scope, receive, send)
        else:
            await self.other(scope, receive, send)


class _CachedStatic:
    """Static files a browser may keep for a day (fonts, script, style)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def with_cache(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"cache-control", b"public, max-age=86400")]}
            await send(message)

        await self.app(scope, receive, with_cache)
