"""Consultations: open polls, background, one vote (button, number or the option's name),
a written opinion, changing a vote with a receipt code, and the results at closing.

Steps: list → detail (vote) → detail; detail → stance → opinion; detail → receipt → detail;
detail (a longer text that names no option) → keep_opinion → stance → detail. What a resident
sends at any of these steps is logged without its text or button (`private_steps`), and a
receipt code typed anywhere is taken out before the log and the NLU (`receipt_anywhere`,
called from bot/core.py). The reply naming a choice is wiped from the outbox once sent
(docs/polls.md). Drawn in flows/polls.mmd.
"""

from __future__ import annotations

from bot.i18n import Translator
from bot.keys import BallotKeys, ballot_keys
from bot.messages import VOICE, Reply, reply_to_stored, voice_payload
from bot.models import Poll, Resident
from bot.services import notices as notice_service
from bot.services import polls as service
from flows.base import Flow
from flows.notices import short

MAX_QUOTES = 2  # per position in the digest of opinions
MAX_QUOTE = 200
# Free text at the "which option?" step that names no option and is at least this long is
# taken for an opinion (offered to be kept as one), not for a failed vote or a problem report.
OPINION_WORDS = 4  # words, in scripts that put spaces between them
OPINION_HAN = 6  # Chinese characters
OPINION_SYLLABLES = 4  # Tibetan syllables (separated by tsheg)


def poll_text(poll: Poll, language: str, default_language: str) -> tuple[dict, bool]:
    texts = poll.texts or {}
    if language in texts:
        return texts[language], True
    return texts[default_language], False


def option_label(option: dict, language: str, default_language: str) -> str:
    return option["text"].get(language) or option["text"][default_language]


def _unspaced(ch: str) -> bool:
    """Han and Tibetan: scripts that do not put spaces between words."""
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\u0f00" <= ch <= "\u0fff"


def names_option(typed: str, label: str) -> bool:
    """Does the folded message name this folded option label?

    The whole label in the message ("I'd say beside the east gate"), or the message as a part of
    the label: any two characters or more of Chinese or Tibetan ("东门"), whole words elsewhere
    ("east gate", but not "no" inside "do not build it").
    """
    if not label or not typed:
        return False
    if label in typed:
        return True
    if any(_unspaced(ch) for ch in typed):
        return len(typed) >= 2 and typed in label
    return len(typed) >= 3 and f" {typed} " in f" {label} "


def is_longer_opinion(text: str) -> bool:
    """Is this message long enough to be an opinion rather than an answer or a command?"""
    han = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")
    if han >= OPINION_HAN:
        return True
    syllables = [part for part in text.replace("།", "་").replace(" ", "་").split("་")
                 if any("\u0f40" <= ch <= "\u0fbc" for ch in part)]
    if len(syllables) >= OPINION_SYLLABLES:
        return True
    words = [word for word in text.split() if any(ch.isalpha() for ch in word)]
    return len(words) >= OPINION_WORDS


def percent(value: float) -> str:
    return f"{value:.0f}%"


def results_text(t: Translator, config, outcome: service.Results) -> str:
    """The results as a participant reads them: counts, shares, turnout, a digest of opinions
    in which every position that was written about appears, the smallest ones too."""
    poll, language, default = outcome.poll, t.language, config.default_language
    texts, _ = poll_text(poll, language, default)
    lines = [t("The consultation has closed: {question}", question=texts["question"])]
    for option in poll.options:
        lines.append(t.ngettext("{option}: {count} vote ({percent})",
                                "{option}: {count} votes ({percent})",
                                outcome.counts[option["id"]],
                                option=option_label(option, language, default),
                                percent=percent(outcome.percent(option["id"]))))
    lines.append(t.ngettext("Turnout: {voters} of {count} resident who could vote ({percent}).",
                            "Turnout: {voters} of {count} residents who could vote ({percent}).",
                            outcome.eligible, voters=outcome.voters,
                            percent=percent(outcome.turnout)))
    if outcome.opinions:
        lines.append(t("Written opinions: {count}. Some of them, as they were written:",
                       count=len(outcome.opinions)))
        # Smallest positions first, so that a minority view is never cut off.
        stances = [o["id"] for o in sorted(poll.options, key=lambda o: outcome.counts[o["id"]])]
        for stance in stances + [None]:
            group = [o for o in outcome.opinions if o.stance == stance]
            if not group:
                continue
            group.sort(key=lambda o: o.language != language)  # the reader's language first
            if stance is None:
                lines.append(t("In general ({count}):", count=len(group)))
            else:
                option = next(o for o in poll.options if o["id"] == stance)
                lines.append(t("For “{option}” ({count}):",
                               option=option_label(option, language, default),
                               count=len(group)))
            lines += [f"– {short(' '.join(o.text.split()), MAX_QUOTE)}"
                      for o in group[:MAX_QUOTES]]
    else:
        lines.append(t("No written opinions were shared."))
    lines.append(t("Thank you for taking part."))
    return "\n".join(lines)


def result_payloads(t: Translator, config, resident: Resident,
                    outcome: service.Results, carries: frozenset[str]) -> list[dict]:
    """What a participant gets at closing, in their language; `carries`: what their channel
    carries (bot.channels.base.ChannelRegistry)."""
    reply = Reply(text=results_text(t, config, outcome), rtl=t.rtl, language=t.language,
                  shared=True)
    payloads = [reply_to_stored(reply, senior=bool(resident.senior_mode))]
    if resident.voice_on and VOICE in carries:
        payloads.append(voice_payload(t, resident, [reply]))
    return payloads


class Polls(Flow):
    name = "polls"
    text_steps = frozenset({"detail", "receipt", "opinion"})
    # What arrives at these steps (a vote, a stance, an opinion, a receipt) is logged with no
    # text and no button: bot/core.py stores the turn without them from the start.
    private_steps = frozenset({"detail", "stance", "opinion", "receipt", "keep_opinion"})

    @staticmethod
    def keys(ctx) -> BallotKeys:
        return ballot_keys(ctx.config.data_dir)

    def start(self, ctx) -> None:
        ctx.go(self.name, "list", slots={})

    def open(self, ctx, poll_id: int) -> bool:
        poll = ctx.session.get(Poll, poll_id)
        if poll is None or poll.status == "draft":
            return False
        ctx.go(self.name, "detail", slots={"poll": poll.id})
        return True

    def _poll(self, ctx) -> Poll | None:
        poll = ctx.session.get(Poll, int(ctx.slots.get("poll") or 0))
        if poll is None or poll.status == "draft":
            ctx.go(self.name, "list", slots={})
            return None
        return poll

    def _label(self, ctx, option: dict) -> str:
        return option_label(option, ctx.t.language, ctx.config.default_language)

    # --- prompts ------------------------------------------------------------------------
    def prompt(self, ctx, step):
        if step == "detail":
            self._detail(ctx)
        elif step == "stance":
            self._stance(ctx)
        elif step == "opinion":
            ctx.say(ctx.t("Please write your opinion in a few sentences. Do not write your "
                          "name or address: opinions are shared without them. Staff read "
                          "opinions before they are shared with the results."),
                    [self.cancel_button(ctx)])
        elif step == "keep_opinion":
            ctx.say(ctx.t("Do you want to keep what you wrote as your opinion in this "
                          "consultation? Opinions are shared without your name, so it should "
                          "not contain your name or address. Staff read it first."),
                    [ctx.button(ctx.t("Yes, keep it as my opinion"), "p:keep"),
                     ctx.button(ctx.t("No, do not keep it"), "cancel")])
        elif step == "receipt":
            ctx.say(ctx.t("Please send the receipt code you got when you voted. "
                          "It looks like ABCDE-FGHJK."), [self.cancel_button(ctx)])
        else:
            self._list(ctx)

    def _list(self, ctx) -> None:
        t = ctx.t
        polls = service.open_polls(ctx.session, ctx.resident)
        if not polls:
            ctx.say(t("There are no open consultations for you right now."))
            ctx.go("menu", "main", slots={})
            return
        buttons = [ctx.button(short(poll_text(p, t.language, ctx.config.default_language)[0]
                                    ["question"]), f"poll:{p.id}") for p in polls]
        ctx.say(t("Open consultations. Choose one to read it and vote."),
                buttons + [self.menu_button(ctx)])

    def _detail(self, ctx) -> None:
        t = ctx.t
        poll = self._poll(ctx)
        if poll is None:
            return
        texts, translated = poll_text(poll, t.language, ctx.config.default_language)
        lines = [texts["question"], texts["background"]]
        if not translated:
            lines.append(t("This consultation is not in your language yet, so it is shown "
                           "in {language}.",
                           language=ctx.config.language(ctx.config.default_language)
                           .native_name))
        back = ctx.button(t("Back to consultations"), "back")
        if poll.status == "closed" or not service.is_open(poll):
            lines.append(t("This consultation is closed. Its results go to everyone who "
                           "took part."))
            ctx.say("\n".join(lines), [back, self.menu_button(ctx)])
            return
        lines.append(t("Closes: {deadline}", deadline=t.datetime(poll.closes_at)))
        if not service.is_eligible(poll, ctx.resident):
            lines.append(t("Only residents of these buildings or areas can vote: {buildings}. "
                           "If you live there, add your building under Settings.",
                           buildings=", ".join(poll.buildings)))
            ctx.say("\n".join(lines), [back, self.menu_button(ctx)])
            return
        opinion = ctx.button(t("Write an opinion"), "p:opinion")
        if service.has_voted(ctx.session, poll, ctx.resident, self.keys(ctx)):
            lines.append(t("You have voted in this consultation."))
            buttons = [opinion, back, self.menu_button(ctx)]
            if poll.allow_change:
                buttons.insert(0, ctx.button(t("Change my vote"), "p:change"))
            ctx.say("\n".join(lines), buttons)
            return
        lines.append(t("Choose your answer by its number, or write it. Your vote is secret."))
        buttons = [ctx.button(self._label(ctx, option), f"vote:{option['id']}")
                   for option in poll.options]
        ctx.say("\n".join(lines), buttons + [opinion, back, self.menu_button(ctx)])

    def _stance(self, ctx) -> None:
        t = ctx.t
        poll = self._poll(ctx)
        if poll is None:
            return
        buttons = [ctx.button(self._label(ctx, option), f"stance:{option['id']}")
                   for option in poll.options]
        ctx.say(t("Which option is your opinion about? This is shared with your opinion, "
                  "not taken from your vote."),
                buttons + [ctx.button(t("The consultation in general"), "stance:"),
                           self.cancel_button(ctx)])

    # --- answers ------------------------------------------------------------------------
    def on_button(self, ctx, step, payload):
        kind, _, value = payload.partition(":")
        if step == "list" and kind == "poll" and value.isdigit() and self.open(ctx, int(value)):
            return
        if step == "detail" and kind == "vote":
            ctx.secret = True
            self.vote(ctx, value)
        elif step == "detail" and payload == "p:opinion":
            ctx.go(self.name, "stance")
        elif step == "detail" and payload == "p:change":
            ctx.go(self.name, "receipt")
        elif step == "stance" and kind == "stance" and ctx.slots.get("draft"):
            draft = ctx.slots["draft"]
            ctx.set_slots(draft=None, stance=None)
            self.opinion(ctx, draft, value or None)
        elif step == "stance" and kind == "stance":
            ctx.set_slots(stance=value or None)
            ctx.go(self.name, "opinion")
        elif step == "keep_opinion" and payload == "p:keep":
            ctx.go(self.name, "stance")
        elif payload == "back":
            ctx.go(self.name, "list", slots={})
        elif payload == "cancel" and step in ("stance", "opinion", "receipt", "keep_opinion"):
            ctx.say(ctx.t("Cancelled. Nothing was saved."))
            ctx.go(self.name, "detail", slots={"poll": ctx.slots.get("poll")})
        else:
            super().on_button(ctx, step, payload)

    def claims_text(self, ctx, step, text: str) -> bool:
        """Free text at the "which option?" step is read against the step before the NLU may
        take it elsewhere: an option's name is a vote; a longer text that names no option is
        offered to be kept as an opinion (held in the slots until the resident says yes)."""
        if step != "detail":
            return False
        poll = ctx.session.get(Poll, int(ctx.slots.get("poll") or 0))
        if poll is None or not service.is_open(poll) or not \
                service.is_eligible(poll, ctx.resident):
            return False
        found = self._named_options(poll, text)
        if len(found) == 1:
            ctx.secret = True
            self.vote(ctx, found[0])
            return True
        if not found and is_longer_opinion(text):
            ctx.secret = True
            ctx.set_slots(draft=text[:service.MAX_OPINION], stance=None)
            ctx.go(self.name, "keep_opinion")
            return True
        return False

    def receipt_anywhere(self, ctx, code: str) -> None:
        """A receipt code typed at any step (bot/core.py found it before the log and the NLU):
        withdraws that ballot and shows the poll's options, or says briefly that it matches
        nothing this resident can change now."""
        t = ctx.t
        ctx.secret = True
        poll = None
        if ctx.resident.language is not None:
            poll = service.withdraw_anywhere(ctx.session, ctx.resident, code, self.keys(ctx))
        if poll is None:
            ctx.say(t("That code does not match a vote you can change now."))
            if ctx.resident.flow is None:
                self.assistant.flow("onboarding").start(ctx)
            else:
                ctx.show()
            return
        ctx.say(t("Your earlier vote is withdrawn. Please choose again."))
        ctx.go(self.name, "detail", slots={"poll": poll.id})

    def on_text(self, ctx, step, text):
        if step == "detail":
            ctx.secret = True  # a typed choice is a ballot, even a refused one
            self.vote_by_name(ctx, text)
        elif step == "receipt":
            ctx.secret = True
            self.change(ctx, text)
        elif step == "opinion":
            self.opinion(ctx, text)
        else:
            super().on_text(ctx, step, text)

    def vote_by_name(self, ctx, text: str) -> None:
        t = ctx.t
        poll = self._poll(ctx)
        if poll is None:
            return
        found = self._named_options(poll, text)
        if len(found) != 1:
            ctx.say(t("I could not tell which option you mean. "
                      "Please press a button or type its number."))
            ctx.show()
            return
        self.vote(ctx, found[0])

    @staticmethod
    def _named_options(poll: Poll, text: str) -> list[str]:
        typed = notice_service.fold(text)
        return [option["id"] for option in poll.options
                if any(names_option(typed, notice_service.fold(label))
                       for label in option["text"].values())]

    def vote(self, ctx, option_id: str) -> None:
        t = ctx.t
        poll = self._poll(ctx)
        if poll is None:
            return
        try:
            receipt = service.cast(ctx.session, poll, ctx.resident, option_id, self.keys(ctx))
        except service.AlreadyVoted:
            text = t("You have already voted in this consultation, and each resident "
                     "votes once.")
            if poll.allow_change:
                text += "\n" + t("You can change your vote until it closes: choose "
                                 "“Change my vote” and send your receipt code.")
            ctx.say(text)
            ctx.show()
            return
        except service.NotOpen:
            ctx.say(t("This consultation is not open for votes."))
            ctx.show()
            return
        except (service.NotEligible, service.UnknownOption):
            ctx.show()
            return
        option = next(o for o in poll.options if o["id"] == option_id)
        ctx.say(t("Thank you. Your vote is counted."))
        lines = [t("You chose: {option}", option=self._label(ctx, option))]
        if receipt:
            lines += [t("Your receipt code: {receipt}", receipt=receipt),
                      t("Keep this code to yourself. Only with it can your vote be changed "
                        "before the consultation closes.")]
        ctx.say("\n".join(lines), secret=True)
        ctx.go(self.name, "detail")

    def change(self, ctx, text: str) -> None:
        t = ctx.t
        poll = self._poll(ctx)
        if poll is None:
            return
        try:
            service.withdraw(ctx.session, poll, ctx.resident, text, self.keys(ctx))
        except service.BadReceipt:
            ctx.say(t("That code does not match a vote in this consultation. "
                      "Please check it and send it again."))
            ctx.show()
            return
        except (service.NotOpen, service.ChangeNotAllowed):
            ctx.say(t("This vote cannot be changed now."))
            ctx.go(self.name, "detail")
            return
        ctx.say(t("Your earlier vote is withdrawn. Please choose again."))
        ctx.go(self.name, "detail")

    def opinion(self, ctx, text: str, stance: str | None = None) -> None:
        t = ctx.t
        poll = self._poll(ctx)
        if poll is None:
            return
        if len(text) < service.MIN_OPINION or not any(ch.isalpha() for ch in text):
            ctx.say(t("Please write a little more."))
            ctx.show()
            return
        try:
            service.add_opinion(ctx.session, poll, t.language, text,
                                stance or ctx.slots.get("stance"))
        except (service.NotOpen, service.UnknownOption):
            ctx.say(t("This consultation is not open for opinions."))
            ctx.go(self.name, "detail", slots={"poll": poll.id})
            return
        ctx.say(t("Thank you. Your opinion will be shared with the results once staff "
                  "have read it."))
        ctx.go(self.name, "detail", slots={"poll": poll.id})
