"""Outbox rows as Telegram messages: buttons rendered, long text split, errors sorted for the
Sender (bot/delivery.py)."""

from __future__ import annotations

import httpx
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)
from telegram import error as tg_error

from bot.channels.telegram import CHANNEL
from bot.delivery import PermanentError, RetryLater, TransientError, Unconfirmed
from bot.messages import numbered, numbered_choices
from bot.models import OutboxMessage

MAX_TEXT = 4096  # Telegram's limit for one message
MAX_VENUE_TEXT = 256  # a venue's title and address are kept short


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
            elif row.payload.get("venue"):  # a map pin, one call: a retry sends it once
                venue = row.payload["venue"]
                await self.bot.send_venue(
                    chat_id=int(row.chat_id), latitude=venue["latitude"],
                    longitude=venue["longitude"], title=venue["title"][:MAX_VENUE_TEXT],
                    address=venue["address"][:MAX_VENUE_TEXT],
                    reply_markup=render_markup(row.payload))
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
            from bot.voice import clip_id  # bot.voice loads numpy and scipy: only with voice on

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
