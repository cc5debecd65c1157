"""The Telegram channel: updates in as Incoming messages for the Assistant, the outbox sent
within Telegram's limits, staff's news pushed; its lifecycle (see bot/channels/telegram/)."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from telegram import (
    BotCommand,
    Update,
)
from telegram import error as tg_error
from telegram.ext import ContextTypes, TypeHandler

from bot.channels.telegram import CHANNEL
from bot.channels.telegram.client import build_application
from bot.channels.telegram.outgoing import TelegramTransport
from bot.channels.telegram.settings import Settings
from bot.channels.telegram.webhook import Webhook
from bot.cluster import Leadership, announce
from bot.config import Config
from bot.db import Database
from bot.delivery import Sender
from bot.messages import (
    LOCATION,
    OUTBOX,
    PHOTO,
    REPLY_KEYBOARD,
    VOICE,
    Capability,
    Incoming,
    numbered,
)
from bot.models import OutboxMessage, utcnow
from bot.services import requests as request_service
from bot.services.inbox import Inbox, OutOfTurn
from flows.commands import DESCRIPTIONS

if TYPE_CHECKING:
    from bot.core import Assistant  # handed in by the wiring, never imported at run time

log = logging.getLogger(__name__)

MAX_DOWNLOAD = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB
CALLBACK_LIMIT = 64  # bytes of callback data Telegram accepts
NUMBERED = re.compile(r"^(\d{1,2})\. ")
STRANDED_SECONDS = 10.0  # an update stored this long ago and not run: its worker was killed
OUT_OF_TURN_TRIES = 20  # then the elected worker's rounds run it (see `_handle_until_stored`)


def chat_of(raw: dict) -> str | None:
    """The private or group chat an update (as Telegram sends it) belongs to, as the Incoming's
    user_id names it (str(effective_chat.id)); None for updates that are no chat's."""
    message = raw.get("message") or raw.get("edited_message")
    if not isinstance(message, dict):
        query = raw.get("callback_query")
        message = query.get("message") if isinstance(query, dict) else None
    chat = message.get("chat") if isinstance(message, dict) else None
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    return str(chat_id) if isinstance(chat_id, int) else None


class TelegramChannel:
    """Connects the Assistant to a Telegram bot: updates in, outbox out, news pushed."""

    name = CHANNEL
    carries: frozenset[Capability] = frozenset({PHOTO, VOICE, LOCATION, REPLY_KEYBOARD, OUTBOX})
    transport: TelegramTransport  # sends the outbox rows of this channel (bot/delivery.py)

    def __init__(self, config: Config, db: Database, assistant: Assistant, settings: Settings,
                 voice=None, push_interval: float = 2.0, concurrent_updates: int = 16,
                 leadership: Leadership | None = None, shared_ports: bool = False):
        """`leadership`: the serving process's election (bot/cluster.py), shared with its
        other jobs; without one the channel runs its own. `shared_ports`: several workers on
        this machine listen on the webhook's port (SO_REUSEPORT)."""
        if not assistant.carries(CHANNEL, OUTBOX):
            raise ValueError("the assistant must queue the telegram channel's replies")
        self.config, self.db, self.assistant = config, db, assistant
        self.settings = settings
        self.application = build_application(settings, concurrent_updates)
        self.inbox = Inbox(db, CHANNEL, chat_of=chat_of)
        self.own_leadership = leadership is None
        self.leadership = leadership or Leadership(db)
        self.shared_ports = shared_ports
        self.application.bot._inbox = self.inbox
        self.application.add_handler(TypeHandler(Update, self.on_update))
        self.application.add_error_handler(self.on_error)
        self.transport = TelegramTransport(self.application.bot, voice)
        self.sender = Sender(db, self.transport,
                             rate=settings.rate, data_dir=config.data_dir)
        self.sender.may_send = lambda: self.leadership.is_leader
        self.push_interval = push_interval
        self.storage_patience = 300.0  # seconds a turn waits for the database to come back
        self.media_dir = config.data_dir / "media"
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._groups_told: set[int] = set()
        self._flushes: set[asyncio.Task] = set()
        self._sweep: asyncio.Task | None = None
        self.webhook: Webhook | None = None

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Connects, registers the commands and starts the webhook; once this worker is the
        elected one (at once with one worker), also long polling (without a webhook) and
        sending (see bot/cluster.py)."""
        app = self.application
        await app.initialize()
        await app.start()
        self._stop.clear()
        self.assistant.announce_outbox = self._announce
        self.leadership.when_elected(self._elected)
        self.leadership.on_announced(self._announced)
        if self.settings.webhook_url:
            self.webhook = Webhook(self)
            await self.webhook.start(self.settings.webhook_listen, self.settings.webhook_port,
                                     shared=self.shared_ports)
        if self.own_leadership:
            await self.leadership.elect_now()
            self._tasks.append(asyncio.create_task(self.leadership.run(self._stop)))
        log.info("telegram channel started (%s)",
                 "webhook" if self.settings.webhook_url else "long polling")

    async def _elected(self) -> None:
        """This worker sends from now on: what a stopped one left half-done first. It alone
        tells Telegram the commands and the webhook (N workers asking at once would meet
        Telegram's limits)."""
        await self.register_commands()
        await asyncio.to_thread(self.sender.recover)
        await self.replay()
        if self.settings.webhook_url:
            await self.application.bot.set_webhook(self.settings.webhook_url,
                                                   secret_token=self.settings.secret_token,
                                                   allowed_updates=Update.ALL_TYPES)
        else:
            await self.application.updater.start_polling(
                poll_interval=0.0, timeout=30, allowed_updates=Update.ALL_TYPES,
                drop_pending_updates=False)
        self._tasks.append(asyncio.create_task(
            self.sender.run(self._stop, interval=self.push_interval, before=self._rounds)))

    def _announce(self, session, channel: str, chat_id: str) -> None:
        """In a turn's transaction: the elected worker is told to send, unless it is this one
        (which sends right after the turn, see `on_update`)."""
        if not self.leadership.is_leader:
            announce(session, channel, chat_id)

    def _announced(self, channel: str, chat_id: str) -> None:
        if channel == CHANNEL and not self._stop.is_set():
            self._flush_soon(chat_id, due=True)

    async def _rounds(self) -> None:
        """The elected worker's rounds: staff's news, and updates a killed worker left."""
        if not self.leadership.is_leader:
            return  # stepped down (its database connection broke): another may be elected
        await self.push_news()
        if self._sweep is None or self._sweep.done():
            self._sweep = asyncio.create_task(self.replay(
                received_before=utcnow() - timedelta(seconds=STRANDED_SECONDS)))

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            await task
        self._tasks = []
        if self._sweep is not None:
            await self._sweep
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

    async def replay(self, received_before=None) -> int:
        """Runs the updates a stopped process had stored but not finished, oldest first
        (those received before `received_before`, if given: older than any worker alive
        would leave them)."""
        pending = await asyncio.to_thread(self.inbox.unprocessed, received_before)
        for raw in pending:
            if self._stop.is_set() and received_before is not None:
                break
            await self.on_update(self.application.bot.read_update(raw), None)
        if pending:
            log.warning("ran %d update(s) left unfinished by a stopped worker", len(pending))
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
        if self.leadership.is_leader:  # else the turn announced its replies to the elected one
            self._flush_soon(str(chat.id), due=False)

    def _flush_soon(self, chat_id: str, due: bool) -> None:
        # Sending waits on the chat's rate limit: it must not hold up other residents' updates.
        task = asyncio.create_task(self._flush(chat_id, due))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self, chat_id: str, due: bool = False) -> None:
        try:
            await self.sender.flush_chat(chat_id, due=due)
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
        out_of_turn = 0
        while True:
            try:
                await self.assistant.handle(incoming, raise_errors=True)
                return
            except OutOfTurn:
                # An older update of this chat is waiting (another worker has it, or one that
                # was killed stored it): it runs first, then this one.
                out_of_turn += 1
                if out_of_turn > OUT_OF_TURN_TRIES:
                    log.warning("update %s waits behind an older one of its chat: left for "
                                "the elected worker", incoming.event_id)
                    return
                raw = await asyncio.to_thread(self.inbox.oldest_waiting, str(incoming.user_id))
                if raw is not None and raw.get("update_id") != incoming.event_id:
                    await self.on_update(self.application.bot.read_update(raw), None)
                else:
                    await asyncio.sleep(0.05 * out_of_turn)
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
                # Not run again: it would fail again, and the chat's next updates wait for it.
                await self._quietly_done(incoming.event_id)
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

    async def _quietly_done(self, update_id: int | None) -> None:
        if update_id is None:
            return
        try:
            await asyncio.to_thread(self.inbox.done, update_id)
        except DBAPIError as exc:
            log.warning("could not mark a failed update done (%s)", type(exc).__name__)

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
