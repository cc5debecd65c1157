"""The channel-agnostic Assistant: takes an Incoming message for a resident, returns Replies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from bot import clip_gaps
from bot import text as textutil
from bot.config import Config
from bot.db import TURN_LOCKS, Database, lock_for_transaction
from bot.i18n import Catalogs
from bot.keys import seal_message
from bot.messages import (
    OUTBOX,
    Capability,
    Incoming,
    Reply,
    Understanding,
    reply_from_stored,
    reply_to_stored,
    voice_payload,
)
from bot.models import NEWS_KINDS, OutboxMessage, Resident, Turn, utcnow
from bot.services import inbox, outbox
from bot.services.polls import find_receipt
from bot.speech import ModelMissing
from flows import registry
from flows.context import Context
from nlu.keywords import EmergencyKeywords

if TYPE_CHECKING:
    from flows.base import Flow

log = logging.getLogger(__name__)

MAX_STORED_TEXT = 4096
# Turns in progress at once in one process. Each holds a database connection from its start to
# its commit (the NLU is awaited in between): more than the pool holds would leave the next
# synchronous database call waiting for a connection with the event loop blocked, and the
# turns that hold them could not finish. See bot/wiring.py for the thread pools' share.
MAX_TURNS_AT_ONCE = 6


class Understander(Protocol):
    async def parse(self, text: str, language: str | None) -> Understanding: ...


class Heard(Protocol):
    text: str

    @property
    def clear(self) -> bool: ...


class Listener(Protocol):
    """Turns a voice note into text (bot.speech.Recogniser)."""

    def hears(self, language: str | None) -> bool: ...

    async def transcribe(self, audio: bytes, language: str) -> Heard: ...


class Assistant:
    """Routes each Incoming through commands, buttons and flows, inside one transaction."""

    def __init__(
        self,
        config: Config,
        db: Database,
        understander: Understander | None = None,
        channels: Mapping[str, frozenset[str]] | None = None,
        listener: Listener | None = None,
    ):
        """`channels`: what each channel carries, by name (bot.channels.base.ChannelRegistry,
        filled by bot/wiring.py); replies on a channel that carries OUTBOX go through the
        outbox (see bot/delivery.py) instead of being shown by the caller straight away.
        `listener` transcribes voice notes (bot.speech.Recogniser); without one they are kept
        for staff only."""
        self.config = config
        self.db = db
        self.channels: Mapping[str, frozenset[str]] = dict(channels or {})
        self.catalogs = Catalogs(config)
        self.understander = understander
        self.listener = listener
        self.flows: dict[str, Flow] = registry(self)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self.emergency_keywords = EmergencyKeywords(config)
        # Set by the serving process when another worker may be the one that sends: called
        # with (session, channel, chat id) in the transaction of a turn that queued messages.
        self.announce_outbox: Callable[[Session, str, str], None] | None = None

    def carries(self, channel: str, capability: Capability) -> bool:
        """Whether `channel` carries `capability` (bot.messages: PHOTO, VOICE, OUTBOX…)."""
        return capability in self.channels.get(channel, frozenset())

    def flow(self, name: str | None) -> Flow:
        return self.flows[name or "menu"]

    async def handle(self, incoming: Incoming, raise_errors: bool = False) -> list[Reply]:
        """Handles one message; replies are in the resident's language.

        A turn that fails is rolled back and answered with an apology; with `raise_errors`
        the exception is raised instead, for a channel that can retry the turn.
        """
        key = (incoming.channel, str(incoming.user_id))
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock, self._turn_slot():
            try:
                return await self._handle_fresh(incoming)
            except inbox.OutOfTurn:
                raise  # the channel runs the chat's older update first, then this one again
            except Exception:
                if raise_errors:
                    raise
                log.exception("turn failed on channel %s", incoming.channel)
                return self._apology(incoming)
            finally:
                if not lock._waiters:  # nobody queued behind us: forget the lock
                    self._locks.pop(key, None)

    def _turn_slot(self) -> asyncio.Semaphore:
        """One of MAX_TURNS_AT_ONCE places (a semaphore of the running loop: tests run each
        message in a loop of its own)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(MAX_TURNS_AT_ONCE))
        return self._slots[1]

    async def _handle_fresh(self, incoming: Incoming, attempts: int = 3) -> list[Reply]:
        """Runs the turn; again from the start if staff changed the resident meanwhile (the
        turn's transaction was rolled back whole, its replies unsent)."""
        for attempt in range(1, attempts):
            try:
                return await self._handle(incoming)
            except StaleDataError:
                log.info("resident changed during a turn on channel %s: running it again "
                         "(attempt %d)", incoming.channel, attempt + 1)
        return await self._handle(incoming)

    def apology_for(self, incoming: Incoming) -> list[Reply]:
        return self._apology(incoming)

    def _apology(self, incoming: Incoming) -> list[Reply]:
        language = None
        try:
            with self.db.session() as session:
                resident = self._find_resident(session, incoming)
                language = resident.language if resident else None
        except Exception:
            log.exception("could not read the resident's language for the apology")
        t = self.catalogs.translator(language or incoming.language_hint)
        text = t("Sorry, something went wrong on our side. Please try again in a moment.")
        return [Reply(text=text, rtl=t.rtl, language=t.language)]

    def _find_resident(self, session: Session, incoming: Incoming) -> Resident | None:
        return session.execute(
            select(Resident).where(
                Resident.channel == incoming.channel,
                Resident.channel_user_id == str(incoming.user_id),
            )
        ).scalar_one_or_none()

    async def _handle(self, incoming: Incoming) -> list[Reply]:
        with self.db.session() as session:
            if self.db.shared:  # other workers may run this resident's turns: one at a time
                await asyncio.to_thread(lock_for_transaction, session, TURN_LOCKS,
                                        f"{incoming.channel}:{incoming.user_id}")
            if incoming.event_id is not None and not inbox.claim(session, incoming):
                return []  # this update's turn has already run
            resident = self._find_resident(session, incoming)
            if resident is None:
                resident = Resident(
                    channel=incoming.channel,
                    channel_user_id=str(incoming.user_id),
                    display_name=(incoming.display_name or "")[:200] or None,
                    slots={},
                    offered=[],
                )
                session.add(resident)
                session.flush()
            push = incoming.kind == "push"
            if not push:
                resident.last_seen_at = utcnow()
            cleaned = textutil.clean(incoming.text) if incoming.kind == "text" else ""
            language = resident.language or self._first_contact_language(cleaned, incoming,
                                                                          resident)
            ctx = Context(self, session, resident, incoming, self.catalogs.translator(language))
            # A receipt code, typed at any step, is handled before the log and the NLU see it.
            receipt = None if push else find_receipt(cleaned)
            turn_in = None if push else self._record_in(ctx, cleaned, private=bool(receipt))

            if receipt and not self.emergency_keywords.match(cleaned):
                self.flow("polls").receipt_anywhere(ctx, receipt)
            elif not push:
                await self._route(ctx, cleaned)

            if ctx.resident not in session:  # /forget deleted the resident
                replies = self._only_last_buttons(ctx.replies)
                if self.carries(resident.channel, OUTBOX):  # their chat is still told so
                    outbox.enqueue(ctx.session, resident,
                                   [reply_to_stored(r, senior=bool(resident.senior_mode))
                                    for r in replies],
                                   erased=True)
                return replies
            news_from = len(ctx.replies)
            if not self.carries(resident.channel, OUTBOX):
                ctx.replies += [reply_from_stored(row.payload)
                                for row in self._take_outbox(session, resident)]
            self.deliver_notifications(ctx, news_from)
            replies = self._only_last_buttons(ctx.replies)
            self._finish(ctx, turn_in, replies)
            if self.carries(resident.channel, OUTBOX) and replies:
                self._queue(ctx, replies)
            return replies

    @staticmethod
    def _take_outbox(session: Session, resident: Resident) -> list:
        """Channels that show replies at once get queued messages (notices…) at their next turn."""
        rows = outbox.pending_for(session, resident)
        for row in rows:
            row.status, row.sent_at, row.attempts = "sent", utcnow(), row.attempts + 1
        return rows

    def _queue(self, ctx: Context, replies: list[Reply]) -> None:
        """The turn's replies into the outbox, in this transaction, with a voice note if on."""
        resident = ctx.resident
        kind = "push" if ctx.incoming.kind == "push" else "reply"
        batches: list[tuple[str, list[dict]]] = []
        for reply in replies:
            payload = reply_to_stored(reply, senior=bool(resident.senior_mode),
                                      location_label=ctx.t("📍 Share my location")
                                      if reply.request_location else None)
            # A secret reply is its own row, of kind "secret": its text is wiped once sent.
            row_kind = "secret" if reply.secret else kind
            if batches and batches[-1][0] == row_kind:
                batches[-1][1].append(payload)
            else:
                batches.append((row_kind, [payload]))
        spoken = [reply for reply in replies if not reply.secret]
        if resident.voice_on and spoken:
            batches.append((kind, [clip_gaps.voice_entry(
                ctx.session, self.config, ctx.t, resident, voice_payload(ctx.t, resident, spoken))]))
        for row_kind, payloads in batches:
            if row_kind == "secret":  # its text names a choice: never readable from the database
                payloads = [seal_message(self.config.data_dir, p) for p in payloads]
            outbox.enqueue(ctx.session, resident, payloads, kind=row_kind)
        if self.announce_outbox is not None:
            self.announce_outbox(ctx.session, resident.channel, resident.channel_user_id)

    def _first_contact_language(self, cleaned: str, incoming: Incoming,
                                resident: Resident) -> str | None:
        """A newcomer's language before they choose: the script of this message, else the one
        their first message showed, else the channel's hint (Telegram's app language)."""
        config = self.config
        guessed = (textutil.guess_language(cleaned, config.languages, config.default_language)
                   if cleaned else None)
        guessed = guessed or (resident.slots or {}).get("guessed")
        if guessed in config.language_ids:
            return guessed
        hint = (incoming.language_hint or "").replace("-", "_")
        for lang in config.language_ids:
            if hint and (hint == lang or hint.split("_")[0] == lang.split("_")[0]):
                return lang
        return None

    async def _route(self, ctx: Context, cleaned: str) -> None:
        incoming, t = ctx.incoming, ctx.t
        if incoming.kind == "resume":
            if ctx.resident.flow is None:
                self.flow("onboarding").start(ctx)
            else:
                ctx.show()
            return

        # A voice note that is understood is shown back, then handled as if it had been typed.
        spoken_media = None
        if incoming.kind == "voice" and self.listener is not None and ctx.resident.flow:
            heard = await self._hear(ctx)
            if heard is not None:
                cleaned, spoken_media = heard, dict(incoming.media or {})

        if incoming.kind == "text" or spoken_media is not None:
            if not textutil.has_visible_content(cleaned):
                ctx.say(t("I did not get any text. Please type a message or choose a number."))
                self._reshow_or_start(ctx)
                return
            if len(cleaned) > textutil.MAX_TEXT_LENGTH:
                ctx.say(
                    t(
                        "That message is too long ({length} characters). "
                        "Please keep it under {limit} characters.",
                        length=len(cleaned),
                        limit=textutil.MAX_TEXT_LENGTH,
                    )
                )
                self._reshow_or_start(ctx)
                return
            if cleaned.startswith("/") and spoken_media is None:
                self.flow("commands").run(ctx, cleaned)
                return
            if self.emergency_keywords.match(cleaned):
                ctx.understanding = Understanding("emergency", 1.0)
                self.emergency(ctx)
                self._reshow_or_start(ctx)
                return

        if ctx.resident.flow is None:
            if incoming.kind == "text":
                await self._first_contact(ctx, cleaned)
            else:
                self.flow("onboarding").start(ctx)
            return

        flow = self.flow(ctx.resident.flow)
        step = ctx.resident.step
        offered = list(ctx.resident.offered or [])

        if incoming.kind == "button":
            if incoming.payload not in offered:
                ctx.say(t("That menu has expired. Here is the current step again."))
                ctx.show()
                return
            self._press(ctx, incoming.payload)
            return

        if incoming.kind == "location":
            flow.on_location(ctx, step, incoming.latitude, incoming.longitude)
            return

        if incoming.kind in ("photo", "voice") and spoken_media is None:
            flow.on_media(ctx, step, incoming.kind, dict(incoming.media or {}))
            return

        if incoming.kind == "unsupported":
            what = str((incoming.media or {}).get("type", ""))
            if what == "edited":
                ctx.say(t("I do not read edited messages. "
                          "Please send the corrected text as a new message."))
            elif what.endswith("_too_large"):
                ctx.say(t("That file is too large for me. Please send one under 20 MB."))
            else:
                ctx.say(t("I can read text, buttons, voice notes, photos and locations, "
                          "but not this kind of message."))
            ctx.show()
            return

        # A bare number is a button press wherever buttons are offered: it is never a
        # description or a place on its own.
        number = textutil.parse_number(cleaned)
        if number is not None and offered:
            if 1 <= number <= len(offered):
                self._press(ctx, offered[number - 1])
            else:
                ctx.say(t("Please choose a number from 1 to {last}.", last=len(offered))
                        if len(offered) > 1 else t("Please choose 1: it is the only choice."))
                ctx.show()
            return

        if ctx.resident.language is None:  # a newcomer's words before they chose a language
            await self._first_contact(ctx, cleaned)
            return
        if flow.accepts_text(step):
            # Read against the step first where the flow asks for it (a poll's options)…
            if flow.claims_text(ctx, step, cleaned):
                return
            # …then typed text answers the step, unless it clearly means to leave it.
            if self.understander is not None and ctx.resident.language is not None:
                ctx.understanding = await self.understander.parse(cleaned, ctx.resident.language)
                if self.flow("intents").interrupts(ctx.understanding, cleaned):
                    self.flow("intents").handle(ctx, ctx.understanding, cleaned)
                    return
            if spoken_media is not None:
                flow.on_spoken_text(ctx, step, cleaned, spoken_media)
            else:
                flow.on_text(ctx, step, cleaned)
            return
        await self.understand(ctx, cleaned)

    def _press(self, ctx: Context, payload: str) -> None:
        """One offered button, pressed or typed as its number: the same thing either way."""
        if payload.startswith("intent:"):  # a "Did you mean…" guess, offered at any step
            self.flow("intents").on_button(ctx, payload)
        elif payload.startswith("notice:") and ctx.resident.flow != "notices":
            self.flow("notices").on_button(ctx, "main", payload)  # a pushed notice's button
        else:
            self.flow(ctx.resident.flow).on_button(ctx, ctx.resident.step, payload)

    async def _first_contact(self, ctx: Context, cleaned: str) -> None:
        """A newcomer's first words: understood now, in the language their script shows, and
        kept, so that they are acted on once the resident has confirmed the language."""
        understanding = None
        if (self.understander is not None and textutil.has_visible_content(cleaned)
                and not cleaned.startswith("/")):
            understanding = await self.understander.parse(cleaned, ctx.t.language)
            ctx.understanding = understanding
        self.flow("onboarding").first_message(ctx, cleaned, understanding)

    async def _hear(self, ctx: Context) -> str | None:
        """The text of the turn's voice note, said back to the resident ("I heard: …"); None
        (with the reason, in one line) when it is not understood: it is then kept for staff."""
        t, language = ctx.t, ctx.resident.language
        if not self.listener.hears(language):
            ctx.say(t("I cannot understand voice notes in this language yet. "
                      "Staff can listen to yours."))
            return None
        heard = None
        try:
            path = (ctx.incoming.media or {}).get("path")
            if path:
                audio = (self.config.data_dir / path).read_bytes()
                heard = await self.listener.transcribe(audio, language)
        except (OSError, ValueError, ModelMissing) as exc:  # these name a file, never words
            log.warning("voice note not transcribed (%s)", exc)
        except Exception as exc:  # noqa: BLE001  (a bug in the recogniser must not lose the turn)
            log.warning("voice note not transcribed (%s)", type(exc).__name__)
        if heard is None or not heard.clear:
            ctx.say(t("I could not make out your voice note. Staff can listen to it."))
            return None
        ctx.say(t("I heard: {text}", text=heard.text))
        return heard.text

    def _reshow_or_start(self, ctx: Context) -> None:
        if ctx.resident.flow is None:
            self.flow("onboarding").start(ctx)
        else:
            ctx.show()

    async def understand(self, ctx: Context, cleaned: str) -> None:
        """Free text where the step wants a choice: the NLU decides; without one, ask again."""
        t = ctx.t
        if self.understander is None:
            ctx.say(t("I did not understand that. Please choose one of the numbers below."))
            ctx.show()
            return
        ctx.understanding = await self.understander.parse(cleaned, ctx.resident.language)
        self.flow("intents").handle(ctx, ctx.understanding, cleaned)

    def emergency(self, ctx: Context) -> None:
        """The emergency numbers from config.yml, at once, whatever the resident was doing."""
        t = ctx.t
        lines = [t("If someone is in danger, call now:")]
        lines += [
            t("{number} · {service}", number=entry.number, service=t.name(entry.names))
            for entry in self.config.emergency_numbers
        ]
        lines.append(t("Linli cannot call for you."))
        ctx.say("\n".join(lines))

    def deliver_notifications(self, ctx: Context, news_from: int | None = None) -> None:
        """Tells the resident about status changes made by staff since their last turn.

        News never takes over the buttons: after anything that arrived between turns (these
        changes, or messages queued meanwhile from `news_from` on), the current step is shown
        again, so the last buttons on screen, and what a number means, are the step's.
        """
        news_from = len(ctx.replies) if news_from is None else news_from
        self.flow("notifications").deliver(ctx)
        if len(ctx.replies) > news_from:
            last = ctx.replies[-1]
            self._show_step_after_news(ctx, [b.payload for b in last.buttons] or None)
        elif ctx.incoming.kind == "push" and self.carries(ctx.resident.channel, OUTBOX):
            sent_last = self._news_sent_last(ctx.session, ctx.resident)
            if sent_last is not None:  # a notice or a poll's results went out meanwhile
                self._show_step_after_news(ctx, [data for _, data in
                                                 sent_last.get("buttons") or []] or None)

    def _show_step_after_news(self, ctx: Context, last_buttons: list[str] | None) -> None:
        """The current step again, unless the news already ended with its buttons (a staff
        answer at the handover step, the rating the news itself started)."""
        if ctx.resident.flow is None:
            return
        if last_buttons and (ctx.resident.flow, ctx.resident.step) == ("menu", "main"):
            return  # news with its own buttons (a notice) at the menu: nothing is interrupted
        before = len(ctx.replies)
        ctx.show()
        if [b.payload for r in ctx.replies[before:] for b in r.buttons] == last_buttons:
            del ctx.replies[before:]

    @staticmethod
    def _news_sent_last(session: Session, resident: Resident) -> dict | None:
        """The payload of the chat's newest message if it was news sent outside a turn."""
        row = session.execute(
            select(OutboxMessage.kind, OutboxMessage.payload)
            .where(OutboxMessage.resident_id == resident.id)
            .order_by(OutboxMessage.id.desc()).limit(1)
        ).first()
        return row.payload if row is not None and row.kind in NEWS_KINDS else None

    def _record_in(self, ctx: Context, cleaned: str, private: bool = False) -> Turn:
        """The incoming turn. Private (a receipt, or a step the flow lists in
        `private_steps`: a ballot, an opinion): stored from the start without text or button,
        so that no version of the row ever held them (PostgreSQL keeps old row versions)."""
        incoming = ctx.incoming
        flow = self.flows.get(ctx.resident.flow or "")
        private = private or (flow is not None and ctx.resident.step in flow.private_steps)
        kind = incoming.kind
        stored = cleaned
        if kind == "text" and cleaned.startswith("/"):
            kind = "command"
        if kind == "location":
            stored = f"{incoming.latitude},{incoming.longitude}"
        payload = incoming.payload
        if kind in ("photo", "voice", "unsupported"):
            payload = str((incoming.media or {}).get("path") or (incoming.media or {}).get("type")
                          or "")
        if private:
            stored, payload = "", None
        turn = Turn(
            resident_id=ctx.resident.id,
            channel=incoming.channel,
            direction="in",
            kind=kind,
            text=stored[:MAX_STORED_TEXT] if stored else None,
            payload=(payload or "")[:200] or None,
            language=ctx.t.language,
            flow=ctx.resident.flow,
            step=ctx.resident.step,
        )
        ctx.session.add(turn)
        return turn

    def _finish(self, ctx: Context, turn_in: Turn | None, replies: list[Reply]) -> None:
        offered = [b.payload for r in replies for b in r.buttons]
        if offered or turn_in is not None:  # news pushed without buttons keeps the step's
            ctx.resident.offered = offered
        if turn_in is not None and ctx.understanding is not None:
            turn_in.intent = ctx.understanding.intent
            turn_in.confidence = ctx.understanding.confidence
            turn_in.entities = ctx.understanding.entities
        if turn_in is not None and ctx.secret:
            turn_in.text, turn_in.payload, turn_in.entities = None, None, None
        for reply in replies:
            ctx.session.add(
                Turn(
                    resident_id=ctx.resident.id,
                    channel=ctx.incoming.channel,
                    direction="out",
                    kind="text",
                    text=None if reply.secret else reply.text[:MAX_STORED_TEXT],
                    language=reply.language,
                    flow=ctx.resident.flow,
                    step=ctx.resident.step,
                )
            )

    @staticmethod
    def _only_last_buttons(replies: list[Reply]) -> list[Reply]:
        """Only the last reply carrying buttons keeps them: numbers always mean those buttons."""
        last = max((i for i, r in enumerate(replies) if r.buttons), default=None)
        for i, reply in enumerate(replies):
            if i != last and reply.buttons:
                reply.buttons = []
        return replies
