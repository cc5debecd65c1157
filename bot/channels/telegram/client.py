"""python-telegram-bot's Bot for Linli: each update read on its own, stored before it is taken."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import DBAPIError
from telegram import Update
from telegram import error as tg_error
from telegram._utils.defaultvalue import DEFAULT_NONE, DefaultValue
from telegram.ext import Application, ApplicationBuilder, ExtBot
from telegram.request import HTTPXRequest

from bot.channels.telegram.settings import Settings
from bot.services.inbox import Inbox

log = logging.getLogger(__name__)


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
