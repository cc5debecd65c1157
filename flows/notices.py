"""Notices: the latest, by topic, by keyword; summary first, full text on request; subscriptions.

Steps: main (latest) → notice (summary) → full; main → topics → topic; main → search →
results; main → subs (toggle a topic). Drawn in flows/notices.mmd.
"""

from __future__ import annotations

from bot.i18n import Translator
from bot.messages import OUTBOX, VOICE, Button, Reply, reply_to_stored, voice_payload
from bot.models import Notice, Resident
from bot.services import notices as service
from flows.base import Flow

MAX_LABEL = 60
MAX_QUERY = 100


def short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def topic_name(t: Translator, config, topic_id: str) -> str:
    for topic in config.notice_topics:
        if topic.id == topic_id:
            return t.name(topic.names)
    return topic_id


def untranslated_line(t: Translator, config) -> str:
    return t("This notice is not in your language yet, so it is shown in {language}.",
             language=config.language(config.default_language).native_name)


def push_payloads(t: Translator, config, resident: Resident, notice: Notice,
                  carries: frozenset[str]) -> list[dict]:
    """The message a subscriber gets when the notice is published, in their language;
    `carries`: what their channel carries (bot.channels.base.ChannelRegistry)."""
    texts, translated = service.text_for(notice, t.language, config.default_language)
    lines = [t("New notice: {title}", title=texts["title"]),
             t("Topic: {topic}", topic=topic_name(t, config, notice.topic))]
    if not translated:
        lines.append(untranslated_line(t, config))
    lines += [texts["summary"], t("To read it in full, choose 1.")]
    buttons = [Button(t("Read the full notice"), f"notice:{notice.id}"),
               Button(t("Main menu"), "menu")]
    reply = Reply(text="\n".join(lines), buttons=buttons, rtl=t.rtl, language=t.language,
                  shared=True)
    # Sent outside a turn to a resident at the main menu, the notice is the latest message with
    # buttons there: its numbers are the ones that count. Anywhere else the resident's step is
    # shown again below it (news never takes over the buttons), and a channel that shows the
    # notice at the next turn sets the numbers then.
    if OUTBOX in carries and (resident.flow or "menu", resident.step or
                              "main") == ("menu", "main"):
        resident.offered = [button.payload for button in buttons]
    payloads = [reply_to_stored(reply, senior=bool(resident.senior_mode))]
    if resident.voice_on and VOICE in carries:
        payloads.append(voice_payload(t, resident, [reply]))
    return payloads


class Notices(Flow):
    name = "notices"
    text_steps = frozenset({"search"})

    def start(self, ctx, step: str = "main", **slots) -> None:
        ctx.go(self.name, step, slots=slots)

    def open(self, ctx, notice_id: int) -> bool:
        """Shows one published notice's summary; False if there is none by that number."""
        notice = service.find_visible(ctx.session, notice_id)
        if notice is None:
            return False
        ctx.go(self.name, "notice", slots={"notice": notice.id})
        return True

    def open_topic(self, ctx, topic: str) -> bool:
        if topic not in {t.id for t in ctx.config.notice_topics}:
            return False
        ctx.go(self.name, "topic", slots={"topic": topic})
        return True

    # --- prompts ------------------------------------------------------------------------
    def prompt(self, ctx, step):
        {
            "topics": self._topics, "topic": self._topic, "search": self._search,
            "results": self._results, "notice": self._notice, "full": self._full,
            "subs": self._subs,
        }.get(step, self._main)(ctx)

    def _notice_buttons(self, ctx, notices) -> list:
        t = ctx.t
        buttons = []
        for notice in notices:
            texts, _ = service.text_for(notice, t.language, ctx.config.default_language)
            buttons.append(ctx.button(
                t("{title} · {date}", title=short(texts["title"]),
                  date=t.date(notice.published_at)),
                f"notice:{notice.id}"))
        return buttons

    def _main(self, ctx) -> None:
        t = ctx.t
        notices = service.latest(ctx.session)
        text = (t("The latest notices. Choose one to read it.") if notices
                else t("There are no notices yet."))
        ctx.say(text, self._notice_buttons(ctx, notices) + [
            ctx.button(t("Notices by topic"), "n:topics"),
            ctx.button(t("Search the notices"), "n:search"),
            ctx.button(t("Get new notices by topic"), "n:subs"),
            self.menu_button(ctx),
        ])

    def _topics(self, ctx) -> None:
        t = ctx.t
        buttons = [ctx.button(t.name(topic.names), f"topic:{topic.id}")
                   for topic in ctx.config.notice_topics]
        ctx.say(t("Choose a topic."), buttons + [self._back(ctx), self.menu_button(ctx)])

    def _topic(self, ctx) -> None:
        t = ctx.t
        topic = ctx.slots.get("topic", "")
        name = topic_name(t, ctx.config, topic)
        notices = service.latest(ctx.session, topic=topic)
        text = (t("Notices about {topic}:", topic=name) if notices
                else t("There are no notices about {topic} yet.", topic=name))
        subscribed = topic in service.topics_of(ctx.session, ctx.resident)
        toggle = (ctx.button(t("Stop new notices about this topic"), f"unsub:{topic}")
                  if subscribed else
                  ctx.button(t("Get new notices about this topic"), f"sub:{topic}"))
        ctx.say(text, self._notice_buttons(ctx, notices) + [
            toggle, self._back(ctx), self.menu_button(ctx)])

    def _search(self, ctx) -> None:
        t = ctx.t
        ctx.say(t("Type a word or two to look for in the notices."),
                [self._back(ctx), self.menu_button(ctx)])

    def _results(self, ctx) -> None:
        t = ctx.t
        query = ctx.slots.get("query", "")
        notices = [n for n in (service.find_visible(ctx.session, i)
                               for i in ctx.slots.get("found", [])) if n is not None]
        ctx.say(t("Notices with “{query}”:", query=query),
                self._notice_buttons(ctx, notices) + [
                    ctx.button(t("Search again"), "n:search"), self._back(ctx),
                    self.menu_button(ctx)])

    def _current(self, ctx) -> Notice | None:
        notice = service.find_visible(ctx.session, int(ctx.slots.get("notice") or 0))
        if notice is None:
            ctx.say(ctx.t("That notice is not available any more."))
            ctx.go(self.name, "main", slots={})
        return notice

    def _notice(self, ctx) -> None:
        t = ctx.t
        notice = self._current(ctx)
        if notice is None:
            return
        texts, translated = service.text_for(notice, t.language, ctx.config.default_language)
        lines = [texts["title"],
                 t("Topic: {topic}", topic=topic_name(t, ctx.config, notice.topic)),
                 t("Published: {date}", date=t.date(notice.published_at))]
        if notice.expires_at is not None:
            lines.append(t("Valid until: {date}", date=t.date(notice.expires_at)))
        if not translated:
            lines.append(untranslated_line(t, ctx.config))
        lines.append(texts["summary"])
        ctx.say("\n".join(lines), [
            ctx.button(t("Read the full text"), "n:full"),
            ctx.button(t("Back to notices"), "back"),
            self.menu_button(ctx),
        ], shared=True)

    def _full(self, ctx) -> None:
        t = ctx.t
        notice = self._current(ctx)
        if notice is None:
            return
        texts, translated = service.text_for(notice, t.language, ctx.config.default_language)
        lines = [texts["title"]]
        if not translated:
            lines.append(untranslated_line(t, ctx.config))
        lines.append(texts["body"])
        ctx.say("\n".join(lines), [ctx.button(t("Back to notices"), "back"),
                                   self.menu_button(ctx)], shared=True)

    def _subs(self, ctx) -> None:
        t = ctx.t
        mine = service.topics_of(ctx.session, ctx.resident)
        buttons = [
            ctx.button(f"✓ {t.name(topic.names)}" if topic.id in mine else t.name(topic.names),
                       f"{'unsub' if topic.id in mine else 'sub'}:{topic.id}")
            for topic in ctx.config.notice_topics
        ]
        ctx.say(t("New notices on the topics marked ✓ come to this chat. "
                  "Choose a topic to start or stop them."),
                buttons + [self._back(ctx), self.menu_button(ctx)])

    def _back(self, ctx):
        return ctx.button(ctx.t("Back to notices"), "back")

    # --- answers ------------------------------------------------------------------------
    def on_button(self, ctx, step, payload):
        kind, _, value = payload.partition(":")
        if kind == "notice" and value.isdigit():
            if not self.open(ctx, int(value)):
                ctx.say(ctx.t("That notice is not available any more."))
                ctx.go(self.name, "main", slots={})
        elif payload == "n:full" and step == "notice":
            ctx.go(self.name, "full")
        elif payload == "n:topics":
            ctx.go(self.name, "topics", slots={})
        elif payload == "n:search":
            ctx.go(self.name, "search", slots={})
        elif payload == "n:subs":
            ctx.go(self.name, "subs", slots={})
        elif kind == "topic" and self.open_topic(ctx, value):
            return
        elif kind in ("sub", "unsub") and value in {t.id for t in ctx.config.notice_topics}:
            self.set_subscription(ctx, value, kind == "sub")
            ctx.show()
        elif payload == "back":
            back = {"full": "notice", "topic": "topics"}.get(step, "main")
            if back == "notice":
                ctx.go(self.name, back)
            elif back == "topics":
                ctx.go(self.name, back, slots={})
            else:
                ctx.go(self.name, "main", slots={})
        else:
            super().on_button(ctx, step, payload)

    def set_subscription(self, ctx, topic: str, on: bool) -> None:
        t = ctx.t
        name = topic_name(t, ctx.config, topic)
        if on:
            service.subscribe(ctx.session, ctx.resident, topic)
            ctx.say(t("You will get new notices about {topic} in this chat.", topic=name))
        else:
            service.unsubscribe(ctx.session, ctx.resident, topic)
            ctx.say(t("You will no longer get notices about {topic}.", topic=name))

    def on_text(self, ctx, step, text):
        t = ctx.t
        if step != "search":
            super().on_text(ctx, step, text)
            return
        query = text[:MAX_QUERY]
        if not service.fold(query):
            ctx.say(t("Please type a word to look for."))
            ctx.show()
            return
        found = service.search(ctx.session, query)
        if not found:
            ctx.say(t("No notice contains “{query}”. Try another word.", query=query))
            ctx.show()
            return
        ctx.go(self.name, "results", slots={"query": query, "found": [n.id for n in found]})
