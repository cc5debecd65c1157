"""Area alerts: the alert as a resident gets it, and its two answers, "I am safe" / "I need help".

When an alert is queued for a resident, answering it becomes their current step (`ask`), so
that 1 and 2 mean its two buttons on every channel, a pressed button is an offered one, and the
step shown again after other news is the alert. What they were doing is kept and comes back
once they have answered. Drawn in flows/alerts.mmd.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Config
from bot.i18n import N_, Catalogs, Translator
from bot.messages import VOICE, Button, Reply, reply_to_stored, voice_payload
from bot.models import Alert, OutboxMessage, Resident
from bot.services import alerts as service
from bot.services import outbox
from bot.services.notices import fold
from flows.base import Flow

SEVERITY_NAMES = {
    "info": N_("Information"),
    "warning": N_("Warning"),
    "danger": N_("Danger"),
}
SEVERITY_MARKS = {"info": "ℹ️", "warning": "⚠️", "danger": "🚨"}


def answer_buttons(t: Translator, alert_id: int) -> list[Button]:
    return [Button(t("I am safe"), f"alert:{alert_id}:safe"),
            Button(t("I need help"), f"alert:{alert_id}:help")]


def alert_reply(t: Translator, config: Config, alert: Alert) -> Reply:
    """The alert in the resident's language (else the default language, with a line saying
    so), asking for one of the two answers."""
    texts, translated = service.text_for(alert, t.language, config.default_language)
    lines = [t("{mark} Area alert ({severity}): {title}",
               mark=SEVERITY_MARKS[alert.severity],
               severity=t(SEVERITY_NAMES[alert.severity]), title=texts["title"])]
    if not translated:
        lines.append(t("This alert is not in your language yet, so it is shown in {language}.",
                       language=config.language(config.default_language).native_name))
    lines += [texts["body"],
              t("Please tell us how you are. Choose 1 if you are safe, 2 if you need help.")]
    return Reply(text="\n".join(lines), buttons=answer_buttons(t, alert.id), rtl=t.rtl,
                 language=t.language, shared=True)


def take_step(resident: Resident, alert_id: int) -> None:
    """Makes answering the alert the resident's step, keeping what they were doing (the step
    of an earlier unanswered alert is not kept: this one replaces it)."""
    slots = dict(resident.slots or {})
    if resident.flow == Alerts.name:
        back = slots.get("back")
    else:
        back = [resident.flow, resident.step, slots]
    resident.flow, resident.step = Alerts.name, "ask"
    resident.slots = {"alert": alert_id, "back": back}
    resident.offered = [f"alert:{alert_id}:safe", f"alert:{alert_id}:help"]


def alert_payloads(t: Translator, config: Config, resident: Resident, alert: Alert,
                   carries: frozenset[str]) -> list[dict]:
    """What the resident's chat is sent: the alert, and its spoken version if voice is on."""
    reply = alert_reply(t, config, alert)
    take_step(resident, alert.id)
    payloads = [reply_to_stored(reply, senior=bool(resident.senior_mode))]
    if resident.voice_on and VOICE in carries:
        payloads.append(voice_payload(t, resident, [reply]))
    return payloads


def renderer(config: Config, catalogs: Catalogs, channels: Mapping[str, frozenset[str]]
             ) -> Callable[[Session, Resident, Alert], list[dict]]:
    """The fan-out's `render` (bot.services.alerts.send) for an installation's channels."""

    def render(session: Session, resident: Resident, alert: Alert) -> list[dict]:
        return alert_payloads(catalogs.translator(resident.language), config, resident, alert,
                              channels.get(resident.channel, frozenset()))

    return render


class Alerts(Flow):
    name = "alerts"
    text_steps = frozenset({"ask"})

    def _alert(self, ctx) -> Alert | None:
        alert_id = ctx.slots.get("alert")
        return ctx.session.get(Alert, alert_id) if alert_id else None

    def _unseen(self, ctx, alert_id: int) -> bool:
        """The alert is still waiting in the outbox: the resident has not been shown it, so
        what they sent was meant for their earlier step (it is shown to them now instead)."""
        key = f"{service.delivery_prefix(alert_id)}{ctx.resident.id}#"
        return ctx.session.execute(
            select(OutboxMessage.id).where(OutboxMessage.resident_id == ctx.resident.id,
                                           OutboxMessage.status == "pending",
                                           outbox.keyed(key)).limit(1)
        ).first() is not None

    def prompt(self, ctx, step):
        alert = self._alert(ctx)
        if alert is None:
            self._back(ctx)
            return
        reply = alert_reply(ctx.t, ctx.config, alert)
        ctx.say(reply.text, reply.buttons, shared=True)

    def on_button(self, ctx, step, payload):
        alert = self._alert(ctx)
        parts = payload.split(":")
        if (alert is None or len(parts) != 3 or parts[0] != "alert"
                or parts[1] != str(alert.id) or parts[2] not in service.ANSWERS):
            super().on_button(ctx, step, payload)
            return
        if self._unseen(ctx, alert.id):
            return
        self._answer(ctx, alert, parts[2])

    def claims_text(self, ctx, step, text) -> bool:
        alert = self._alert(ctx)
        if alert is None:
            return False
        if self._unseen(ctx, alert.id):
            return True
        typed = fold(text)
        for button in answer_buttons(ctx.t, alert.id):
            if typed and typed == fold(button.label):
                self._answer(ctx, alert, button.payload.rsplit(":", 1)[1])
                return True
        ctx.say(ctx.t("Please choose 1 if you are safe, or 2 if you need help."))
        ctx.show()
        return True

    def _answer(self, ctx, alert: Alert, choice: str) -> None:
        t = ctx.t
        service.answer(ctx.session, alert.id, ctx.resident, choice)
        if choice == "safe":
            ctx.say(t("Thank you. We are glad you are safe."))
        else:
            ctx.say(t("Thank you for telling us. Your grid worker will check on you soon."))
            self.assistant.emergency(ctx)
        self._back(ctx)

    def _back(self, ctx) -> None:
        """Back to what the resident was doing when the alert came."""
        back = ctx.slots.get("back")
        if back and back[0] in self.assistant.flows and back[0] != self.name:
            ctx.go(back[0], back[1], slots=dict(back[2] or {}))
        else:
            ctx.main_menu()
