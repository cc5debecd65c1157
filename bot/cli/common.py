"""What the command groups share: logging, the NLU model, local times, delivering a push."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import warnings
from datetime import timezone

from bot.config import load_config

log = logging.getLogger("linli")


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request's URL at INFO, and the Bot API's URLs contain the bot's token.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def load_understander():
    """The trained NLU model, or None (buttons and numbers still work) with a warning; with
    LINLI_NLU_URL set, the model as Rasa's HTTP server there holds it (`linli nlu serve`)."""
    from nlu.engine import NoModel, RasaUnderstander

    url = os.environ.get("LINLI_NLU_URL", "").strip()
    if url:
        from nlu.remote import HttpUnderstander, server_answers, server_url

        url = server_url(url)
        if not server_answers(url):
            log.warning("the NLU server at %s does not answer yet: free text is not understood "
                        "until it does (`linli nlu serve`)", url)
        return HttpUnderstander(load_config(), url)
    try:
        config = load_config()
        if sys.stdin.isatty():
            print("loading the language model…", file=sys.stderr)
        return RasaUnderstander(config)
    except NoModel as exc:
        log.warning("free text will not be understood: %s", exc)
        return None


def silence_library_warnings() -> None:
    """Residents at the terminal see none of the libraries' warnings (TensorFlow, jax,
    SQLAlchemy, matplotlib): TensorFlow's C++ log level is read once, when it is imported,
    and the libraries add warning filters of their own on import, so warnings are also not
    shown at all: they are logged at DEBUG, by category only."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    warnings.simplefilter("ignore")

    def to_debug_log(message, category, filename, lineno, file=None, line=None) -> None:
        log.debug("library warning %s from %s", category.__name__, filename)

    warnings.showwarning = to_debug_log


def local_time(config, moment) -> str:
    """A stored (naive UTC) time in the community's zone, for staff."""
    if moment is None:
        return "-"
    return f"{moment.replace(tzinfo=timezone.utc).astimezone(config.tz):%Y-%m-%d %H:%M}"


def deliver(config, db, key_prefix: str, rate: float, what: str) -> None:
    """Sends the Telegram rows of one push now (if a token is set), then prints the count
    per channel: sent, failed, pending, unconfirmed."""
    from bot.push import counts, push_telegram, summary

    if rate <= 0:
        raise SystemExit("linli: --rate must be above 0")
    token = os.environ.get("LINLI_TELEGRAM_TOKEN", "").strip()
    if token and counts(db, key_prefix, "telegram"):
        asyncio.run(push_telegram(config, db, key_prefix, rate))
    for channel in channels_with(db, key_prefix):
        note = ""
        if channel == "terminal":
            note = " (a terminal resident sees it with their next message)"
        elif channel == "telegram" and not token:
            note = " (LINLI_TELEGRAM_TOKEN is not set: `linli serve` sends the pending ones)"
        print(f"{what} on {channel}: {summary(counts(db, key_prefix, channel))}{note}")


def channels_with(db, key_prefix: str) -> list[str]:
    from sqlalchemy import distinct, select

    from bot.models import OutboxMessage
    from bot.services import outbox

    with db.session() as session:
        return sorted(session.execute(
            select(distinct(OutboxMessage.channel)).where(outbox.keyed(key_prefix))
        ).scalars())
