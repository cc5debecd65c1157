"""Telegram's webhook calls, received by Linli's own small server (not PTB's)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import Route

from bot.console.server import bind, start_server

if TYPE_CHECKING:
    from bot.channels.telegram.channel import TelegramChannel

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


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

    async def start(self, host: str, port: int, shared: bool = False) -> None:
        sock = bind(host, port, "the Telegram webhook", shared)
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
