"""The Telegram channel's settings, read from the environment and checked once.

Environment: LINLI_TELEGRAM_TOKEN (required), LINLI_TELEGRAM_BASE_URL (the Bot API's address,
default https://api.telegram.org; a local server in tests), LINLI_TELEGRAM_WEBHOOK_URL (webhook
mode instead of long polling), LINLI_TELEGRAM_WEBHOOK_LISTEN / _PORT / _SECRET,
LINLI_TELEGRAM_RATE.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

DEFAULT_API = "https://api.telegram.org"
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts


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
