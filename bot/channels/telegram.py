"""Telegram: updates in through python-telegram-bot, replies out through the outbox.

Each update becomes an Incoming for the Assistant; the turn's replies are written to the outbox
in the same transaction as the turn, then sent by a Sender (bot/delivery.py) within Telegram's
limits. Status changes made by staff are pushed by a loop that asks the Assistant for each
resident's news. Only private chats are served.

Environment: LINLI_TELEGRAM_TOKEN (required), LINLI_TELEGRAM_BASE_URL (the Bot API's address,
default https://api.telegram.org; a local server in tests), LINLI_TELEGRAM_WEBHOOK_URL (webhook
mode instead of long polling), LINLI_TELEGRAM_WEBHOOK_LISTEN / _PORT / _SECRET.

Every update is stored in the channel_inbox table before Telegram is told it was received
(the next getUpdates offset, or the webhook's 200), and marked processed by its turn, so a
process killed in between runs it at its next start (`replay`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import Route
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram import error as tg_error
from telegram._utils.defaultvalue import DEFAULT_NONE, DefaultValue
from telegram.ext import Application, ApplicationBuilder, ContextTypes, ExtBot, TypeHandler
from telegram.request import HTTPXRequest

from bot.config import Config
from bot.db import Database
from bot.delivery import PermanentError, RetryLater, Sender, TransientError, Unconfirmed
from bot.messages import (
    LOCATION,
    OUTBOX,
    PHOTO,
    REPLY_KEYBOARD,
    VOICE,
    Capability,
    Incoming,
    numbered,
    numbered_choices,
)
from bot.models import OutboxMessage
from bot.services import requests as request_service
from bot.services.inbox import Inbox
from flows.commands import DESCRIPTIONS

if TYPE_CHECKING:
    from bot.core import Assistant  # handed in by the wiring, never imported at run time

log = logging.getLogger(__name__)

CHANNEL = "telegram"
DEFAULT_API = "https://api.telegram.org"
MAX_TEXT = 4096  # Telegram's limit for one message
MAX_DOWNLOAD = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB
CALLBACK_LIMIT = 64  # bytes of callback data Telegram accepts
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts
NUMBERED = re.compile(r"^(\d{1,2})\. ")


@dataclass(frozen=True)
class Settings:
    token: str
    api_root: str = DEFAULT_API
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: str | None = None
    read_timeout: float = 15.0
    rate: float = 30.0  # messages a second overall: Telegram's limit for one bot

    @property
    def webhook_path(self) -> str:
        """Where the webhook listens locally: the bot's id, as the public URL's path ends."""
        return "/" + self.token.split(":")[0]

    @property
    def secret_token(self) -> str:
        """What Telegram sends in every webhook call: LINLI_TELEGRAM_WEBHOOK_SECRET, else one
        derived from the bot token (as secret as the token, the same after a restart)."""
        if self.webhook_secret:
            return self.webhook_secret
        return hashlib.sha256(f"linli-webhook:{self.token}".encode()).hexdigest()

    @classmethod
    def from_env(cls) -> Settings | None:
        token = os.environ.get("LINLI_TELEGRAM_TOKEN", "").strip()
        if not token:
            return None
        settings = cls(
            token=token,
            api_root=os.environ.get("LINLI_TELEGRAM_BASE_URL", DEFAULT_API).rstrip("/"),
            webhook_url=os.environ.get("LINLI_TELEGRAM_WEBHOOK_URL") or None,
            webhook_listen=os.environ.get("LINLI_TELEGRAM_WEBHOOK_LISTEN", "127.0.0.1"),
            webhook_port=int(os.environ.get("LINLI_TELEGRAM_WEBHOOK_PORT", "8443")),
            webhook_secret=os.environ.get("LINLI_TELEGRAM_WEBHOOK_SECRET") or None,
            rate=float(os.environ.get("LINLI_TELEGRAM_RATE", "30")),
        )
        if settings.webhook_secret and not SECRET_TOKEN.fullmatch(settings.webhook_secret):
            raise ValueError("LINLI_TELEGRAM_WEBHOOK_SECRET may hold only letters, digits, _ "
                             "and -, at most 256 of them (Telegram's rule)")
        return settings


class LenientBot(ExtBot):
    """PTB's bot, except that one update it cannot read does not stop all the others.

    PTB parses a whole getUpdates batch at once: one update it cannot read (a field newer than
    the library, a malformed one) fails the batch, the offset never moves past it, and polling
    retries the same batch forever while every resident waits; PTB also logs the raw batch,
    message texts included, at CRITICAL. Here each update is read on its own; one that cannot
    be read is logged by its id only and reduced to its sender and chat (who then get the gentle
    "cannot read this kind of message") or to an empty update, so the offset moves on.
    """

    _inbox: Inbox | None = None  # set by the channel: updates are stored before they are taken

    async def get_updates(self, offset=None, limit=None, timeout=None, allowed_updates=None, *,
                          read_timeout=DEFAULT_NONE, write_timeout=DEFAULT_NONE,
                          connect_timeout=DEFAULT_NONE, pool_timeout=DEFAULT_NONE,
                          api_kwargs=None):
        data = {"timeout": timeout, "offset": offset, "limit": limit,
                "allowed_updates": allowed_updates}
        base = (read_timeout if not isinstance(read_timeout, DefaultValue)
                else self._request[0].read_timeout) or 0
        seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout or 0
        result = await self._post("getUpdates", data, read_timeout=base + seconds,
                                  write_timeout=write_timeout, connect_timeout=connect_timeout,
                                  pool_timeout=pool_timeout, api_kwargs=api_kwargs)
        fresh = None
        if self._inbox is not None:
            try:
                fresh = await asyncio.to_thread(self._inbox.store, result or [], offset)
            except DBAPIError as exc:
                # Not taken: Telegram keeps these updates, and PTB asks again with backoff
                # (it retries only Telegram's own errors; anything else would end polling).
                raise tg_error.NetworkError(f"inbox unavailable ({type(exc).__name__})") from exc
        updates = []
        for raw in result or []:
            update_id = raw.get("update_id") if isinstance(raw, dict) else None
            if fresh is not None and update_id not in fresh:
                updates.append(Update(update_id=int(update_id or 0)))  # stored before: skip
                continue
            updates.append(self.read_update(raw))
        return tuple(updates)

    def read_update(self, raw) -> Update:
        """One update as PTB reads it, or the part of it that can be read."""
        try:
            update = Update.de_json(raw, self)
        except Exception as exc:  # noqa: BLE001 - any unreadable update is handled the same way
            log.warning("update %s could not be read (%s): keeping only who sent it",
                        raw.get("update_id") if isinstance(raw, dict) else "?",
                        type(exc).__name__)
            update = self._readable_part(raw)
        self.insert_callback_data(update)
        return update

    def _readable_part(self, raw: dict) -> Update:
        """A message's sender and chat without its content (the resident gets the gentle
        "I cannot read this kind of message"); anything else becomes an empty update."""
        update_id = int(raw.get("update_id", 0)) if isinstance(raw, dict) else 0
        for key in ("message", "edited_message"):
            message = raw.get(key) if isinstance(raw, dict) else None
            if isinstance(message, dict):
                bare = {k: message[k] for k in ("message_id", "date", "chat", "from")
                        if k in message}
                try:
                    return Update.de_json({"update_id": update_id, key: bare}, self)
                except Exception:  # noqa: BLE001
                    break
        return Update(update_id=update_id)


def build_application(settings: Settings, concurrent_updates: int = 16) -> Application:
    bot = LenientBot(
        settings.token,
        base_url=f"{settings.api_root}/bot",
        base_file_url=f"{settings.api_root}/file/bot",
        request=HTTPXRequest(connection_pool_size=64, connect_timeout=10,
                             read_timeout=settings.read_timeout, write_timeout=30),
        get_updates_request=HTTPXRequest(connection_pool_size=2, read_timeout=40),
    )
    return ApplicationBuilder().bot(bot).concurrent_updates(concurrent_updates).build()


# --- outgoing -------------------------------------------------------------------------------


def render_markup(payload: dict):
    """Buttons as Telegram shows them: inline, or a reply keyboard for seniors and locations."""
    buttons = payload.get("buttons") or []
    if payload.get("request_location") or (payload.get("senior") and buttons):
        rows = []
        if payload.get("request_location"):
            rows.append([KeyboardButton(payload.get("location_label") or "📍",
                                        request_location=True)])
        # A reply keyboard sends its label as text: the numbered form that a typed number is.
        rows += [[KeyboardButton(line)] for line in numbered_choices([b[0] for b in buttons])]
        return ReplyKeyboardMarkup(rows, resize_keyboard=True,
                                   one_time_keyboard=not payload.get("senior"))
    if buttons:
        return InlineKeyboardMarkup(
            [[InlineKeyboardButton(numbered(i, label), callback_data=data)]
             for i, (label, data) in enumerate(buttons, start=1)]
        )
    return None


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Pieces of at most `limit` characters, cut at line ends where possible."""
    pieces = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    pieces.append(text)
    return pieces


class TelegramTransport:
    """Sends one outbox row through the Bot API, translating its errors for the Sender."""

    channel = CHANNEL

    def __init__(self, bot, voice=None):
        self.bot = bot
        self.voice = voice

    async def send(self, row: OutboxMessage) -> None:
        try:
            if row.payload.get("voice"):
                await self._send_voice(row)
            else:
                pieces = split_text(row.payload["text"])
                for i, piece in enumerate(pieces):
                    markup = render_markup(row.payload) if i == len(pieces) - 1 else None
                    await self.bot.send_message(chat_id=int(row.chat_id), text=piece,
                                                reply_markup=markup)
        except tg_error.RetryAfter as exc:
            seconds = exc.retry_after
            raise RetryLater(getattr(seconds, "total_seconds", lambda: seconds)()) from exc
        except (tg_error.Forbidden, tg_error.BadRequest, tg_error.ChatMigrated) as exc:
            raise PermanentError(type(exc).__name__) from exc
        except tg_error.TimedOut as exc:
            # A read timeout means Telegram had the whole request: resending would most
            # likely deliver it twice. Connect, write and pool timeouts never reached it.
            if isinstance(exc.__cause__, httpx.ReadTimeout):
                raise Unconfirmed(type(exc).__name__) from exc
            raise TransientError(type(exc).__name__) from exc
        except tg_error.NetworkError as exc:
            raise TransientError(type(exc).__name__) from exc

    async def _send_voice(self, row: OutboxMessage) -> None:
        payload = row.payload
        audio = None
        if self.voice is not None:
            from bot.voice import clip_id

            source = payload.get("source")
            audio = await self.voice.speak(
                payload["text"], payload["language"], slow=bool(payload.get("slow")),
                clip_id=clip_id(source) if source else None, cache=bool(payload.get("cache")))
        if audio is None:
            if payload.get("note"):  # empty: the resident was told before (bot/clip_gaps.py)
                await self.bot.send_message(chat_id=int(row.chat_id), text=payload["note"])
            return
        name = "linli.ogg" if audio.mime == "audio/ogg" else "linli.mp3"
        await self.bot.send_voice(chat_id=int(row.chat_id), voice=audio.data, filename=name,
                                  duration=max(1, round(audio.duration)))


# --- incoming -------------------------------------------------------------------------------


class Webhook:
    """Telegram's webhook calls, each stored in the inbox before it is answered 200.

    Telegram sends an update again until it gets a 2xx, so an answered update is a stored one:
    a process killed after that runs it at its next start (`TelegramChannel.replay`), and a
    database outage answers 503 so that Telegram keeps it. Calls without the secret token are
    refused (the URL's path is only the bot's public id). Nothing of the body is logged.
    PTB's own webhook server is not used: it hands updates over before anything is stored and
    logs an unreadable update's whole body at CRITICAL.
    """

    def __init__(self, channel: TelegramChannel):
        self.channel = channel
        self.secret = channel.settings.secret_token.encode()
        self._server = None
        self._task: asyncio.Task | None = None
        self._pruned: float | None = None  # loop time of the last prune

    def app(self) -> Starlette:
        return Starlette(routes=[Route(self.channel.settings.webhook_path, self.receive,
                                       methods=["POST"])])

    async def start(self, host: str, port: int) -> None:
        from bot.console.server import bind, start_server

        sock = bind(host, port, "the Telegram webhook")
        self._server, self._task = await start_server(self.app(), sock)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            await self._task

    async def receive(self, request: HttpRequest) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self.secret):
            log.warning("a webhook call without the secret token was refused")
            return Response(status_code=403)
        try:
            raw = json.loads(await request.body())
        except ValueError:
            log.warning("a webhook call whose body is not JSON was refused")
            return Response(status_code=400)
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            log.warning("a webhook call without an update id was ignored")
            return Response(status_code=200)  # sending it again would not make it readable
        inbox = self.channel.inbox
        try:
            fresh = await asyncio.to_thread(inbox.store, [raw], None)
            now = asyncio.get_running_loop().time()
            if self._pruned is None or now - self._pruned > 3600:
                self._pruned = now
                await asyncio.to_thread(inbox.prune)
        except DBAPIError as exc:
            log.warning("inbox unavailable (%s): Telegram will send update %d again",
                        type(exc).__name__, update_id)
            return Response(status_code=503)
        if update_id in fresh:  # else: sent again, and already taken
            app = self.channel.application
            await app.update_queue.put(app.bot.read_update(raw))
        return Response(status_code=200)


class TelegramChannel:
    """Connects the Assistant to a Telegram bot: updates in, outbox out, news pushed."""

    name = CHANNEL
    carries: frozenset[Capability] = frozenset({PHOTO, VOICE, LOCATION, REPLY_KEYBOARD, OUTBOX})

    def __init__(self, config: Config, db: Database, assistant: Assistant, settings: Settings,
                 voice=None, push_interval: float = 2.0, concurrent_updates: int = 16):
        if not assistant.carries(CHANNEL, OUTBOX):
            raise ValueError("the assistant must queue the telegram channel's replies")
        self.config, self.db, self.assistant = config, db, assistant
        self.settings = settings
        self.application = build_application(settings, concurrent_updates)
        self.inbox = Inbox(db, CHANNEL)
        self.application.bot._inbox = self.inbox
        self.application.add_handler(TypeHandler(Update, self.on_update))
        self.application.add_error_handler(self.on_error)
        self.transport = TelegramTransport(self.application.bot, voice)
        self.sender = Sender(db, self.transport,
                             rate=settings.rate, data_dir=config.data_dir)
        self.push_interval = push_interval
        self.storage_patience = 300.0  # seconds a turn waits for the database to come back
        self.media_dir = config.data_dir / "media"
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._groups_told: set[int] = set()
        self._flushes: set[asyncio.Task] = set()
        self.webhook: Webhook | None = None

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Connects, registers the commands, and starts polling (or the webhook) and sending."""
        self.sender.recover()
        app = self.application
        await app.initialize()
        await self.register_commands()
        await app.start()
        await self.replay()
        if self.settings.webhook_url:
            self.webhook = Webhook(self)
            await self.webhook.start(self.settings.webhook_listen, self.settings.webhook_port)
            await app.bot.set_webhook(self.settings.webhook_url,
                                      secret_token=self.settings.secret_token,
                                      allowed_updates=Update.ALL_TYPES)
        else:
            await app.updater.start_polling(poll_interval=0.0, timeout=30,
                                            allowed_updates=Update.ALL_TYPES,
                                            drop_pending_updates=False)
        self._stop.clear()
        self._tasks = [asyncio.create_task(
            self.sender.run(self._stop, interval=self.push_interval, before=self.push_news))]
        log.info("telegram channel started (%s)",
                 "webhook" if self.settings.webhook_url else "long polling")

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            await task
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        app = self.application
        if self.webhook is not None:
            await self.webhook.stop()  # later calls get no answer: Telegram sends them again
            self.webhook = None
        if app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        log.info("telegram channel stopped")

    async def replay(self) -> int:
        """Runs the updates a stopped process had stored but not finished, oldest first."""
        pending = await asyncio.to_thread(self.inbox.unprocessed)
        for raw in pending:
            await self.on_update(self.application.bot.read_update(raw), None)
        if pending:
            log.warning("ran %d update(s) left unfinished by the last process", len(pending))
        return len(pending)

    async def register_commands(self) -> None:
        """The command list in each language Telegram can tell apart (ISO 639-1 codes)."""
        done = set()
        for language in (self.config.default_language, *self.config.language_ids):
            code = language.split("_")[0]
            key = None if language == self.config.default_language else code
            if key in done or (key is not None and code == self.config.default_language
                               .split("_")[0]):
                continue
            done.add(key)
            t = self.assistant.catalogs.translator(language)
            commands = [BotCommand(name.lstrip("/"), t(description))
                        for name, description in DESCRIPTIONS.items()]
            await self.application.bot.set_my_commands(commands, language_code=key)

    # --- pushing news -----------------------------------------------------------------------
    async def push_news(self) -> None:
        """Status changes made by staff: each resident with news gets a push turn."""
        with self.db.session() as session:
            chats = request_service.residents_with_news(session, CHANNEL)
        for chat_id in chats:
            await self.assistant.handle(Incoming(channel=CHANNEL, user_id=chat_id, kind="push"))

    # --- updates ----------------------------------------------------------------------------
    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update failed: %s", type(context.error).__name__,
                  exc_info=context.error)

    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        user = update.effective_user
        if chat is None or user is None:
            # membership changes, polls of other bots…: nothing for a resident
            await asyncio.to_thread(self.inbox.done, update.update_id)
            return
        if chat.type != "private":
            await self._answer_group(update)
            await asyncio.to_thread(self.inbox.done, update.update_id)
            return
        incoming = await self.to_incoming(update)
        if incoming is None:
            await asyncio.to_thread(self.inbox.done, update.update_id)
            return
        incoming.event_id = update.update_id
        await self._handle_until_stored(incoming)
        # Sending waits on the chat's rate limit: it must not hold up other residents' updates.
        task = asyncio.create_task(self._flush(str(chat.id)))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self, chat_id: str) -> None:
        try:
            await self.sender.flush_chat(chat_id)
        except DBAPIError as exc:  # the background rounds send it once the database is back
            log.warning("could not send now (%s); the outbox keeps it", type(exc).__name__)
        except Exception:
            log.exception("sending to a chat failed; the outbox keeps what was not sent")

    async def _handle_until_stored(self, incoming: Incoming) -> None:
        """A turn, retried while the database is unreachable (a restart, a failover).

        Telegram has already handed the update over, so giving up would lose what the resident
        said; a turn that failed rolled back, so running it again is safe. After about five
        minutes the resident gets the apology straight from the bot (not via the outbox,
        which lives in that database).
        """
        delay = 0.5
        deadline = asyncio.get_running_loop().time() + self.storage_patience
        while True:
            try:
                await self.assistant.handle(incoming, raise_errors=True)
                return
            except DBAPIError as exc:
                if asyncio.get_running_loop().time() > deadline:
                    log.error("database unavailable; a turn is given up (%s)", type(exc).__name__)
                    break
                log.warning("database unavailable (%s); retrying the turn in %.1f s",
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            except Exception:
                log.exception("turn failed on channel %s", CHANNEL)
                break
        for reply in self.assistant.apology_for(incoming):
            await self._quietly(self.application.bot.send_message(
                chat_id=int(incoming.user_id), text=reply.text))

    async def _answer_group(self, update: Update) -> None:
        chat = update.effective_chat
        if chat.id in self._groups_told or update.message is None:
            return
        self._groups_told.add(chat.id)
        hint = update.effective_user.language_code if update.effective_user else None
        t = self.assistant.catalogs.translator(_language_from_hint(self.config, hint))
        try:
            await self.application.bot.send_message(
                chat_id=chat.id,
                text=t("I only talk in private chats. Please open a private chat with me."))
        except tg_error.TelegramError as exc:
            log.warning("could not answer in a group: %s", type(exc).__name__)

    async def to_incoming(self, update: Update) -> Incoming | None:
        user = update.effective_user
        base = {"channel": CHANNEL, "user_id": str(update.effective_chat.id),
                "display_name": user.full_name, "language_hint": user.language_code}
        if update.callback_query is not None:
            query = update.callback_query
            await self._quietly(query.answer())
            if query.message is not None:  # the pressed keyboard will not be pressed again
                await self._quietly(query.edit_message_reply_markup(reply_markup=None))
            data = query.data if isinstance(query.data, str) else ""
            return Incoming(kind="button", payload=data[:CALLBACK_LIMIT], **base)
        if update.edited_message is not None:
            return Incoming(kind="unsupported", media={"type": "edited"}, **base)
        message = update.message
        if message is None:
            return None
        if message.text is not None:
            payload = self._keyboard_press(str(update.effective_chat.id), message.text)
            if payload is not None:
                return Incoming(kind="button", payload=payload, **base)
            return Incoming(kind="text", text=message.text, **base)
        if message.location is not None:
            return Incoming(kind="location", latitude=message.location.latitude,
                            longitude=message.location.longitude, **base)
        if message.photo:
            media = await self._download(message.photo[-1], "photo", "image/jpeg", ".jpg")
            return self._media_incoming("photo", media, base)
        if message.voice is not None:
            media = await self._download(message.voice, "voice",
                                         message.voice.mime_type or "audio/ogg", ".ogg")
            if media is not None:
                media["duration"] = float(message.voice.duration.total_seconds()
                                          if hasattr(message.voice.duration, "total_seconds")
                                          else message.voice.duration or 0)
            return self._media_incoming("voice", media, base)
        kind = next((k for k in ("sticker", "video", "video_note", "audio", "document",
                                 "animation", "contact", "poll", "dice", "venue")
                     if getattr(message, k, None)), "other")
        return Incoming(kind="unsupported", media={"type": kind}, **base)

    @staticmethod
    def _media_incoming(kind: str, media: dict | None, base: dict) -> Incoming:
        if media is None:
            return Incoming(kind="unsupported", media={"type": f"{kind}_too_large"}, **base)
        return Incoming(kind=kind, media=media, **base)

    def _keyboard_press(self, chat_id: str, text: str) -> str | None:
        """A reply-keyboard button sends its label as text: "2. My requests" → that payload.

        The label is matched against the last message with buttons sent to this chat, so a
        stale keyboard gets the core's "that menu has expired", never another button's action.
        """
        match = NUMBERED.match(text)
        if match is None:
            return None
        with self.db.session() as session:
            rows = session.execute(
                select(OutboxMessage.payload)
                .where(OutboxMessage.channel == CHANNEL, OutboxMessage.chat_id == chat_id,
                       OutboxMessage.kind.in_(("reply", "push")))
                .order_by(OutboxMessage.id.desc())
                .limit(20)
            ).scalars().all()
        current = True
        for payload in rows:
            buttons = payload.get("buttons") or []
            if not buttons:
                continue
            for i, (label, data) in enumerate(buttons, start=1):
                if numbered(i, label) == text:
                    # An older keyboard's label: a payload nobody offers, so "expired".
                    return data if current else f"stale:{data}"[:CALLBACK_LIMIT]
            current = False
        return None

    async def _download(self, item, kind: str, mime: str, suffix: str) -> dict | None:
        """Keeps our own copy under the data folder; None if Telegram would not serve it."""
        size = item.file_size or 0
        if size > MAX_DOWNLOAD:
            return None
        media = {"kind": kind, "file_id": item.file_id, "mime": mime, "size": size,
                 "path": None}
        try:
            file = await item.get_file()
            folder = self.media_dir / kind
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{uuid.uuid4().hex}{suffix}"
            await file.download_to_drive(custom_path=target)
            media["path"] = str(Path("media") / kind / target.name)
            media["size"] = target.stat().st_size
        except tg_error.TelegramError as exc:
            # The file id is kept: staff can fetch it again later.
            log.warning("could not download a %s: %s", kind, type(exc).__name__)
        return media

    @staticmethod
    async def _quietly(awaitable) -> None:
        try:
            await awaitable
        except tg_error.TelegramError as exc:
            log.info("telegram call failed (harmless): %s", type(exc).__name__)


def _language_from_hint(config: Config, hint: str | None) -> str | None:
    hint = (hint or "").replace("-", "_").lower()
    for language in config.language_ids:
        if hint and (hint == language.lower() or hint.split("_")[0] == language.split("_")[0]):
            return language
    return None


async def serve(config: Config, db: Database, assistant: Assistant, settings: Settings | None,
                voice=None, console: tuple | None = None) -> None:
    """Runs the Telegram channel (if `settings`) and the staff console (if `console`, as
    (app, host, port)) until SIGINT or SIGTERM."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    channel = TelegramChannel(config, db, assistant, settings, voice=voice) if settings else None
    console_task = None
    if console is not None:
        from bot.console.server import serve_console

        app, host, port = console
        console_task = asyncio.create_task(serve_console(app, host, port, stop))
    if channel is not None:
        await channel.start()
    try:
        if console_task is not None:
            await console_task  # ends when `stop` is set, or raises if the port is taken
        await stop.wait()
    finally:
        stop.set()
        if channel is not None:
            await channel.stop()
