"""A small Telegram Bot API server on 127.0.0.1 for tests: the real protocol, a fake Telegram.

It runs in its own thread and event loop, so a test drives it from plain code. Residents' actions
are queued as updates (served by getUpdates, long polling included, or POSTed one by one to the
bot's webhook once it sets one, again until it answers 2xx, as Telegram does); everything the
bot sends is recorded per chat. Faults can be scripted per method: a 429 with retry_after, a 500, a delay, or
a dropped connection.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

BOT_USER = {"id": 999000, "is_bot": True, "first_name": "Linli", "username": "LinliTestBot"}


@dataclass
class Sent:
    """One call the bot made that puts something in a chat."""

    method: str
    chat_id: int
    text: str | None = None
    reply_markup: dict | None = None
    voice: bytes | None = None
    venue: dict | None = None  # sendVenue: latitude, longitude, title, address
    message_id: int = 0
    at: float = field(default_factory=time.monotonic)

    @property
    def buttons(self) -> list[tuple[str, str | None]]:
        """(label, callback data or None) of the inline or reply keyboard."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [(b["text"] if isinstance(b, dict) else b,
                 b.get("callback_data") if isinstance(b, dict) else None)
                for row in rows for b in row]


@dataclass
class Fault:
    method: str
    status: int = 0  # 429, 500… or 0 for a delay / dropped connection only
    retry_after: int = 1
    delay: float = 0.0
    drop: bool = False


class FakeBotAPI:
    def __init__(self, token: str = "123456:TEST-token"):
        self.token = token
        self.updates: list[dict] = []
        self.sent: list[Sent] = []
        self.calls: list[tuple[str, dict]] = []
        self.files: dict[str, bytes] = {}
        self.faults: list[Fault] = []
        self.commands: dict[str | None, list[dict]] = {}
        self.blocked: set[int] = set()  # chats whose user blocked the bot
        self.on_sent = None  # called (in the server's thread) with each Sent, for benchmarks
        self.webhook: dict | None = None  # {"url", "secret"} once the bot set one
        self.webhook_calls: list[tuple[int, int]] = []  # (update_id, HTTP status; 0: no answer)
        self.on_webhook_answer = None  # called (in the server's thread) with each call's status
        self.webhook_retry = 0.3  # seconds before an update the bot did not take is sent again
        # Calls to the webhook at once, each on its own connection, as Telegram makes up to
        # `max_connections` (40 by default): 1 keeps them one at a time, in order.
        self.webhook_parallel = 1
        self._waiting: asyncio.Queue | None = None  # updates for the parallel webhook calls
        self._delivery: asyncio.Task | None = None
        self._acked = 0
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new_update: asyncio.Condition | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0  # known once started

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeBotAPI:
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-bot-api", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("fake Bot API did not start")
        return self

    async def _serve(self) -> None:
        self._new_update = asyncio.Condition()
        self._waiting = asyncio.Queue()
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)  # the OS picks a free port: no race
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._loop is None:
            return
        async def shutdown():
            await self._runner.cleanup()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # --- what residents do --------------------------------------------------------------------
    def _push(self, update: dict) -> None:
        update["update_id"] = next(self._update_ids)

        async def add():
            async with self._new_update:
                self.updates.append(update)
                self._waiting.put_nowait(update)
                self._new_update.notify_all()

        asyncio.run_coroutine_threadsafe(add(), self._loop).result(5)

    @staticmethod
    def user(chat_id: int, language: str = "zh-hans", name: str = "Resident") -> dict:
        return {"id": chat_id, "is_bot": False, "first_name": name, "language_code": language}

    def _message(self, chat_id: int, language: str, chat_type: str = "private", **content):
        chat = {"id": chat_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "Building 5"
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": self.user(abs(chat_id) if chat_type == "private" else 4242, language),
            **content,
        }

    def send_text(self, chat_id: int, text: str, language: str = "zh-hans",
                  chat_type: str = "private") -> None:
        content = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        self._push({"message": self._message(chat_id, language, chat_type, **content)})

    def text_update(self, chat_id: int, text: str, language: str = "zh-hans") -> dict:
        """A text message's update, not queued: for a test that calls the webhooks of several
        workers itself, choosing which worker gets which update."""
        return {"update_id": next(self._update_ids),
                "message": self._message(chat_id, language, text=text)}

    def edit_text(self, chat_id: int, text: str, language: str = "zh-hans") -> None:
        message = self._message(chat_id, language, text=text)
        message["edit_date"] = int(time.time())
        self._push({"edited_message": message})

    def press(self, chat_id: int, data: str, language: str = "zh-hans",
              message_id: int | None = None) -> None:
        message = self._message(chat_id, language, text="…")
        if message_id is not None:
            message["message_id"] = message_id
        message["from"] = BOT_USER
        self._push({"callback_query": {
            "id": str(next(self._update_ids) * 7), "from": self.user(chat_id, language),
            "chat_instance": str(chat_id), "data": data, "message": message}})

    def share_location(self, chat_id: int, latitude: float, longitude: float,
                       language: str = "zh-hans") -> None:
        self._push({"message": self._message(
            chat_id, language, location={"latitude": latitude, "longitude": longitude})})

    def send_photo(self, chat_id: int, data: bytes, language: str = "zh-hans") -> str:
        file_id = self._add_file(data, "photos/p.jpg")
        sizes = [{"file_id": file_id, "file_unique_id": file_id + "u", "width": 640,
                  "height": 480, "file_size": len(data)}]
        self._push({"message": self._message(chat_id, language, photo=sizes)})
        return file_id

    def send_voice_note(self, chat_id: int, data: bytes, duration: int,
                        language: str = "zh-hans", file_size: int | None = None) -> str:
        file_id = self._add_file(data, "voice/v.oga")
        voice = {"file_id": file_id, "file_unique_id": file_id + "u", "duration": duration,
                 "mime_type": "audio/ogg", "file_size": file_size or len(data)}
        self._push({"message": self._message(chat_id, language, voice=voice)})
        return file_id

    def send_sticker(self, chat_id: int, language: str = "zh-hans") -> None:
        sticker = {"file_id": "stk", "file_unique_id": "stku", "type": "regular", "width": 512,
                   "height": 512, "is_animated": False, "is_video": False}
        self._push({"message": self._message(chat_id, language, sticker=sticker)})

    def _add_file(self, data: bytes, path: str) -> str:
        file_id = f"file{len(self.files) + 1}"
        with self._lock:
            self.files[file_id] = data
        return file_id

    # --- what the bot did ---------------------------------------------------------------------
    def sent_to(self, chat_id: int) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.chat_id == chat_id]

    def wait_for(self, chat_id: int, count: int, timeout: float = 20.0) -> list[Sent]:
        """Waits until the chat has received `count` messages in all; returns them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.sent_to(chat_id)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"chat {chat_id} got {len(self.sent_to(chat_id))} of {count} "
                             f"messages: {[s.text for s in self.sent_to(chat_id)]}")

    def fail_next(self, method: str, **kwargs) -> None:
        with self._lock:
            self.faults.append(Fault(method, **kwargs))

    # --- the protocol -------------------------------------------------------------------------
    async def _method(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params = await _params(request)
        with self._lock:
            self.calls.append((method, {k: v for k, v in params.items()
                                        if not isinstance(v, bytes)}))
            fault = next((f for f in self.faults if f.method == method), None)
            if fault is not None:
                self.faults.remove(fault)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                request.transport.close()
                return web.Response(status=500)
            if fault.status == 429:
                return web.json_response(
                    {"ok": False, "error_code": 429,
                     "description": f"Too Many Requests: retry after {fault.retry_after}",
                     "parameters": {"retry_after": fault.retry_after}}, status=429)
            if fault.status:
                return web.json_response({"ok": False, "error_code": fault.status,
                                          "description": "Internal Server Error"},
                                         status=fault.status)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404,
                                      "description": "Not Found: method not found"}, status=404)
        result = await handler(params)
        if isinstance(result, web.Response):
            return result
        return web.json_response({"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].split("/")[-1]
        data = self.files.get(file_id)
        if data is None or request.match_info["token"] != self.token:
            return web.Response(status=404)
        return web.Response(body=data)

    async def _api_getMe(self, params):
        return BOT_USER

    async def _api_deleteWebhook(self, params):
        self.webhook = None
        return True

    async def _api_setWebhook(self, params):
        self.webhook = {"url": params["url"], "secret": params.get("secret_token")}
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.create_task(
                self._deliver() if self.webhook_parallel == 1 else self._deliver_in_parallel())
        return True

    async def _deliver_in_parallel(self) -> None:
        await asyncio.gather(*(self._deliver_one_by_one() for _ in range(self.webhook_parallel)))

    async def _deliver_one_by_one(self) -> None:
        """One of `webhook_parallel` connections: the next update waiting, again until it is
        answered 2xx (it goes back in the queue meanwhile)."""
        from aiohttp import ClientSession, ClientTimeout

        async with ClientSession(timeout=ClientTimeout(total=10)) as http:
            while self.webhook is not None:
                update = await self._waiting.get()
                if not 200 <= await self._call_webhook(http, update) < 300:
                    await asyncio.sleep(self.webhook_retry)
                    self._waiting.put_nowait(update)

    async def _call_webhook(self, http, update: dict) -> int:
        """One webhook call as Telegram makes it; its HTTP status (0: no answer), recorded."""
        from aiohttp import ClientError

        hook = self.webhook
        headers = {"X-Telegram-Bot-Api-Secret-Token": hook["secret"]} if hook["secret"] else {}
        try:
            async with http.post(hook["url"], json=update, headers=headers) as response:
                status = response.status
        except (ClientError, asyncio.TimeoutError, OSError):
            status = 0
        with self._lock:
            self.webhook_calls.append((update["update_id"], status))
        if self.on_webhook_answer is not None:
            self.on_webhook_answer(update["update_id"], status)
        return status

    async def _deliver(self) -> None:
        """Telegram's side of a webhook: each update in turn, again until answered 2xx."""
        from aiohttp import ClientSession, ClientTimeout

        async with ClientSession(timeout=ClientTimeout(total=10)) as http:
            while self.webhook is not None:
                async with self._new_update:
                    ready = [u for u in self.updates if u["update_id"] >= self._acked]
                    if not ready:
                        try:
                            await asyncio.wait_for(self._new_update.wait(), 0.5)
                        except asyncio.TimeoutError:
                            pass
                        continue
                update = ready[0]
                status = await self._call_webhook(http, update)
                if 200 <= status < 300:
                    self._acked = max(self._acked, update["update_id"] + 1)
                else:
                    await asyncio.sleep(self.webhook_retry)

    async def _api_setMyCommands(self, params):
        with self._lock:
            self.commands[params.get("language_code")] = params["commands"]
        return True

    async def _api_getUpdates(self, params):
        if self.webhook is not None:
            return web.json_response({"ok": False, "error_code": 409, "description":
                                      "Conflict: can't use getUpdates method while webhook is "
                                      "active; use deleteWebhook to delete the webhook first"},
                                     status=409)
        # As Telegram does: an offset confirms every update below it, which is then gone for
        # good, even for a later process that asks without an offset.
        self._acked = max(self._acked, int(params.get("offset") or 0))
        offset = self._acked
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        async with self._new_update:
            while True:
                ready = [u for u in self.updates if u["update_id"] >= offset]
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0:
                    return ready[: int(params.get("limit") or 100)]
                try:
                    await asyncio.wait_for(self._new_update.wait(), remaining)
                except asyncio.TimeoutError:
                    pass

    def _record(self, method: str, params: dict, **extra) -> dict | web.Response:
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked:
            return web.json_response({"ok": False, "error_code": 403,
                                      "description": "Forbidden: bot was blocked by the user"},
                                     status=403)
        sent = Sent(method=method, chat_id=chat_id, text=params.get("text"),
                    reply_markup=params.get("reply_markup"), message_id=next(self._message_ids),
                    **extra)
        with self._lock:
            self.sent.append(sent)
        if self.on_sent is not None:
            self.on_sent(sent)
        return {"message_id": sent.message_id, "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"}, "from": BOT_USER}

    async def _api_sendMessage(self, params):
        if len(params.get("text", "")) > 4096:
            return web.json_response({"ok": False, "error_code": 400,
                                      "description": "Bad Request: message is too long"},
                                     status=400)
        result = self._record("sendMessage", params)
        if isinstance(result, dict):
            result["text"] = params["text"]
        return result

    async def _api_sendVoice(self, params):
        voice = params.get("voice")
        if not isinstance(voice, bytes):
            return web.json_response({"ok": False, "error_code": 400,
                                      "description": "Bad Request: no voice"}, status=400)
        result = self._record("sendVoice", params, voice=voice)
        if not isinstance(result, dict):
            return result
        file_id = self._add_file(voice, "voice/out.ogg")
        result["voice"] = {"file_id": file_id, "file_unique_id": file_id + "u",
                           "duration": int(params.get("duration") or 1)}
        return result

    async def _api_sendVenue(self, params):
        missing = [key for key in ("latitude", "longitude", "title", "address")
                   if not str(params.get(key) or "").strip()]
        if missing:
            return web.json_response({"ok": False, "error_code": 400,
                                      "description": f"Bad Request: {missing[0]} is empty"},
                                     status=400)
        venue = {"latitude": float(params["latitude"]), "longitude": float(params["longitude"]),
                 "title": params["title"], "address": params["address"]}
        result = self._record("sendVenue", params, venue=venue)
        if isinstance(result, dict):
            location = {"latitude": venue["latitude"], "longitude": venue["longitude"]}
            result["venue"] = {"location": location, "title": venue["title"],
                               "address": venue["address"]}
            result["location"] = location
        return result

    async def _api_sendPhoto(self, params):
        result = self._record("sendPhoto", params)
        if not isinstance(result, dict):
            return result
        result["photo"] = [{"file_id": "x", "file_unique_id": "xu", "width": 1, "height": 1}]
        return result

    async def _api_answerCallbackQuery(self, params):
        return True

    async def _api_editMessageText(self, params):
        return True

    async def _api_editMessageReplyMarkup(self, params):
        return True

    async def _api_getFile(self, params):
        file_id = params["file_id"]
        if file_id not in self.files:
            return web.json_response({"ok": False, "error_code": 400,
                                      "description": "Bad Request: invalid file_id"}, status=400)
        return {"file_id": file_id, "file_unique_id": file_id + "u",
                "file_size": len(self.files[file_id]), "file_path": f"files/{file_id}"}


async def _params(request: web.Request) -> dict:
    """The call's parameters, from a query string, a form, multipart or JSON, as PTB sends."""
    params: dict = dict(request.query)
    if request.method == "POST":
        if request.content_type == "application/json":
            params.update(await request.json())
        else:
            form = await request.post()
            for key, value in form.items():
                params[key] = value.file.read() if hasattr(value, "file") else value
    for key in ("reply_markup", "commands", "allowed_updates"):
        if isinstance(params.get(key), str):
            params[key] = json.loads(params[key])
    return params


