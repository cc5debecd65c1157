"""The NLU asked over HTTP: Rasa's own server (`linli nlu serve`) answering `/model/parse`."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx

from bot.config import Config, ConfigError
from bot.messages import NLU_UNAVAILABLE, Understanding
from nlu.engine import understanding_from
from nlu.keywords import EmergencyKeywords

log = logging.getLogger(__name__)

# A parse takes 10–30 ms (docs/benchmarks.md); a busy server queues. After this the resident
# is answered as without a model rather than kept waiting.
TIMEOUT = httpx.Timeout(5.0, connect=2.0)
# While the server does not answer, one warning a minute (with the count), not one a message.
WARN_EVERY = 60.0


def server_url(value: str) -> str:
    """LINLI_NLU_URL, checked: where `linli nlu serve` listens, e.g. http://127.0.0.1:5005."""
    url = httpx.URL(value.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"LINLI_NLU_URL: expected http://host:port (the address of "
                          f"`linli nlu serve`), not {value!r}")
    return str(url).rstrip("/")


def server_answers(url: str) -> bool:
    """Whether Rasa's server at `url` has its model loaded (GET /status answers 200)."""
    try:
        return httpx.get(f"{url}/status", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


class HttpUnderstander:
    """Parses through Rasa's HTTP API (`rasa run --enable-api`): the same model, held by one
    server process instead of by every worker. The request carries the text only, which is
    all the in-process understander gives the model too (one model reads all six languages).
    """

    def __init__(self, config: Config, url: str, timeout: httpx.Timeout | float = TIMEOUT):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.keywords = EmergencyKeywords(config)
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._failures = 0
        self._warned_at: float | None = None

    def client(self) -> httpx.AsyncClient:
        """One client (one connection pool) for the process. Its connections belong to the
        event loop that opened them, so a new loop (a test's asyncio.run per turn) gets a new
        client; `linli serve` runs one loop and keeps one."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(timeout=self.timeout)
            self._client_loop = loop
        return self._client

    async def parse(self, text: str, language: str | None = None) -> Understanding:
        try:
            response = await self.client().post(f"{self.url}/model/parse", json={"text": text})
            response.raise_for_status()
            understanding = understanding_from(response.json(), text, self.keywords)
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self._unavailable(exc)
            if self.keywords.match(text):  # as the core's own check: never missed
                return Understanding("emergency", 1.0)
            return Understanding(NLU_UNAVAILABLE, 0.0)
        if self._failures:
            log.warning("the NLU server at %s answers again (%d messages were not understood)",
                        self.url, self._failures)
            self._failures, self._warned_at = 0, None
        return understanding

    def _unavailable(self, exc: Exception) -> None:
        """Logs why (the error's kind and status, never the message's text)."""
        self._failures += 1
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < WARN_EVERY:
            return
        self._warned_at = now
        status = ""
        if isinstance(exc, httpx.HTTPStatusError):
            status = f" {exc.response.status_code}"
        log.warning("the NLU server at %s did not answer (%s%s): %d message(s) answered as "
                    "not understood", self.url, type(exc).__name__, status, self._failures)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
