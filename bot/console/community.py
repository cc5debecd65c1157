"""Console pages for notices, consultations and the "talk to staff" queue (mixed into Console)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timezone

from sqlalchemy import distinct, select
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, RedirectResponse, Response

from bot.console import auth, charts
from bot.console.i18n import StaffTranslator
from bot.models import Notice, OutboxMessage, Poll, Resident, utcnow
from bot.services import notices as notice_service
from bot.services import outbox
from bot.services import polls as poll_service
from bot.specs import MAX_OPTION, MAX_OPTIONS, MAX_TITLE, NOTICE_PARTS, POLL_PARTS, PollSpec
from flows import handover

log = logging.getLogger(__name__)

PUSH_STATUSES = ("sent", "pending", "failed", "unconfirmed")
OPTION_ROWS = 6  # empty option rows on the form; a poll may have up to MAX_OPTIONS
QUEUE_REFRESH_SECONDS = 15


class FormError(Exception):
    """A form that cannot be saved; the message (in the staff member's language) says why."""


@dataclass
class Draft:
    """What a staff member typed into a notice or poll form, kept to show it again."""

    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str:
        return self.values.get(key, "")


def push_progress(session, key_prefix: str) -> dict:
    """Residents per delivery status and channel for one push (a notice, a poll's results)."""
    channels = sorted(session.execute(
        select(distinct(OutboxMessage.channel)).where(outbox.keyed(key_prefix))).scalars())
    per_channel = {}
    total = dict.fromkeys(PUSH_STATUSES, 0)
    for channel in channels:
        counts = outbox.counts(session, key_prefix, channel=channel, first_only=True)
        per_channel[channel] = {status: counts.get(status, 0) for status in PUSH_STATUSES}
        for status in PUSH_STATUSES:
            total[status] += per_channel[channel][status]
    return {"channels": per_channel, "total": total}


def notice_state(notice: Notice, now: datetime) -> str:
    if notice.published_at is None:
        return "draft"
    if notice.expires_at is not None and notice.expires_at <= now:
        return "expired"
    return "published"


class CommunityPages:
    """Notices, consultations and handover; expects Console's render, refuse, db, config and
    actions (bot.staff.StaffActions)."""

    # shared helpers ----------------------------------------------------------------------
    def _t(self, request: HttpRequest) -> StaffTranslator:
        return StaffTranslator(request.state.staff.language)

    def _local_to_utc(self, value: datetime) -> datetime:
        return value.replace(tzinfo=self.config.tz).astimezone(timezone.utc).replace(tzinfo=None)

    def _topic_name(self, request: HttpRequest):
        language = request.state.staff.language
        names = {tp.id: tp.names.get(language) or tp.names[self.config.default_language]
                 for tp in self.config.notice_topics}
        return lambda topic: names.get(topic, topic)

    def _missing(self, texts: dict) -> list[str]:
        return [lang for lang in self.config.language_ids if lang not in (texts or {})]

    def _per_language(self, draft: Draft, parts: tuple[str, ...], t) -> dict:
        """{language: {part: text}}: the default language in full, others whole or empty."""
        texts = {}
        for language in self.config.language_ids:
            entry = {part: draft.get(f"{part}_{language}").strip() for part in parts}
            filled = [part for part, text in entry.items() if text]
            if not filled:
                if language == self.config.default_language:
                    raise FormError(t("The default language ({language}) is required.",
                                      language=language))
                continue
            if len(filled) != len(parts):
                raise FormError(t("{language}: fill in every field, or leave them all empty.",
                                  language=language))
            texts[language] = entry
        return texts

    # notices -----------------------------------------------------------------------------
    def notice_list(self, request: HttpRequest) -> Response:
        now = utcnow()
        with self.db.session() as session:
            rows = [(n, notice_state(n, now), self._missing(n.texts),
                     push_progress(session, notice_service.delivery_prefix(n.id))["total"])
                    for n in notice_service.staff_list(session)]
            return self.render(request, "notices.html", rows=rows,
                               topic_name=self._topic_name(request),
                               default_language=self.config.default_language)

    def notice_new(self, request: HttpRequest, draft: Draft | None = None,
                   error: str | None = None, notice_id: int | None = None) -> Response:
        return self.render(request, "notice_form.html", draft=draft or Draft(), error=error,
                           action=f"/notices/{notice_id}/edit" if notice_id else "/notices",
                           topics=self.config.notice_topics, languages=self.config.languages,
                           parts=NOTICE_PARTS, default_language=self.config.default_language,
                           max_title=MAX_TITLE, status_code=400 if error else 200)

    def notice_edit_page(self, request: HttpRequest) -> Response:
        notice_id = request.path_params["item_id"]
        t = self._t(request)
        with self.db.session() as session:
            notice = session.get(Notice, notice_id)
            if notice is None:
                return self.refuse(request, 404, t("Not found."))
            if notice.published_at is not None:
                return self.refuse(request, 409, t("A published notice cannot be changed."))
            values = {"topic": notice.topic, "expires": self.when(notice.expires_at)[:10]}
            for language, parts in (notice.texts or {}).items():
                values.update({f"{part}_{language}": text for part, text in parts.items()})
        return self.notice_new(request, Draft(values), notice_id=notice_id)

    def notice_create(self, request: HttpRequest) -> Response:
        """Saves a new draft, or (at /notices/<id>/edit) changes a draft not yet published."""
        staff = request.state.staff
        t = self._t(request)
        notice_id = request.path_params.get("item_id")
        draft = Draft({k: str(v) for k, v in request.state.form.items() if k != "csrf_token"})
        try:
            topic = draft.get("topic")
            if topic not in {tp.id for tp in self.config.notice_topics}:
                raise FormError(t("Choose a topic."))
            texts = self._per_language(draft, NOTICE_PARTS, t)
            for language, parts in texts.items():
                if len(parts["title"]) > MAX_TITLE:
                    raise FormError(t("{language}: the title is longer than {limit} characters.",
                                      language=language, limit=MAX_TITLE))
            expires_at = None
            if draft.get("expires"):
                try:
                    day = datetime.strptime(draft.get("expires"), "%Y-%m-%d")
                except ValueError:
                    raise FormError(t("The expiry date is not a date.")) from None
                expires_at = self._local_to_utc(datetime.combine(day.date(), time(23, 59)))
                if expires_at <= utcnow():
                    raise FormError(t("The expiry date has passed."))
        except FormError as exc:
            return self.notice_new(request, draft, str(exc), notice_id)
        with self.db.session() as session:
            if notice_id is None:
                notice = Notice(topic=topic, texts=texts, expires_at=expires_at,
                                source=f"console:{staff.name}")
                session.add(notice)
                session.flush()
                action = "notice.add"
            else:
                notice = session.get(Notice, notice_id)
                if notice is None:
                    return self.refuse(request, 404, t("Not found."))
                if notice.published_at is not None:
                    return self.refuse(request, 409, t("A published notice cannot be changed."))
                notice.topic, notice.texts, notice.expires_at = topic, texts, expires_at
                action = "notice.edit"
            notice_id = notice.id
            auth.audit(session, staff.name, action, f"notice:{notice_id}",
                       {"topic": topic, "languages": sorted(texts)})
        request.session["flash"] = t("Saved as a draft.")
        return RedirectResponse(f"/notices/{notice_id}", status_code=303)

    def notice_page(self, request: HttpRequest) -> Response:
        notice_id = request.path_params["item_id"]
        with self.db.session() as session:
            notice = session.get(Notice, notice_id)
            if notice is None:
                return self.refuse(request, 404, self._t(request)("Not found."))
            return self.render(
                request, "notice.html", notice=notice, state=notice_state(notice, utcnow()),
                topic_name=self._topic_name(request),
                missing=self._missing(notice.texts), languages=self.config.languages,
                parts=NOTICE_PARTS, statuses=PUSH_STATUSES,
                progress=push_progress(session, notice_service.delivery_prefix(notice.id)),
                progress_url=f"/notices/{notice.id}/progress.json")

    def notice_publish(self, request: HttpRequest) -> Response:
        """Publishes and queues the pushes as `linli notices publish` does; the running
        `linli serve` sends the Telegram ones, terminal residents see it at their next turn."""
        staff = request.state.staff
        notice_id = request.path_params["item_id"]
        t = self._t(request)
        try:
            with self.db.session() as session:
                _, subscribers, queued = self.actions.publish_notice(session, notice_id)
                auth.audit(session, staff.name, "notice.publish", f"notice:{notice_id}",
                           {"subscribers": subscribers, "queued": queued})
            request.session["flash"] = t("Published: {queued} of {subscribers} subscriber(s) "
                                         "queued now.", queued=queued, subscribers=subscribers)
        except notice_service.NoticeError as exc:
            request.session["flash"] = str(exc)
        return RedirectResponse(f"/notices/{notice_id}", status_code=303)

    def notice_progress(self, request: HttpRequest) -> Response:
        with self.db.session() as session:
            return JSONResponse(push_progress(
                session, notice_service.delivery_prefix(request.path_params["item_id"])))

    # consultations -----------------------------------------------------------------------
    def poll_list(self, request: HttpRequest) -> Response:
        with self.db.session() as session:
            rows = [(p, self._missing(p.texts)) for p in poll_service.staff_list(session)]
            return self.render(request, "polls.html", rows=rows,
                               default_language=self.config.default_language)

    def poll_new(self, request: HttpRequest, draft: Draft | None = None,
                 error: str | None = None) -> Response:
        rows = OPTION_ROWS
        if draft is not None:
            rows = max(rows, max((i for i in range(1, MAX_OPTIONS + 1)
                                  if any(draft.get(f"option{i}_{lang}")
                                         for lang in self.config.language_ids)), default=0))
        return self.render(request, "poll_form.html", draft=draft or Draft(), error=error,
                           languages=self.config.languages, parts=POLL_PARTS,
                           option_rows=range(1, min(rows, MAX_OPTIONS) + 1),
                           default_language=self.config.default_language,
                           status_code=400 if error else 200)

    def _poll_spec(self, draft: Draft, staff_name: str, t) -> PollSpec:
        texts = self._per_language(draft, POLL_PARTS, t)
        options = []
        for i in range(1, MAX_OPTIONS + 1):
            labels = {lang: draft.get(f"option{i}_{lang}").strip()
                      for lang in self.config.language_ids}
            labels = {lang: text for lang, text in labels.items() if text}
            if not labels:
                continue
            for language in texts:
                if language not in labels:
                    raise FormError(t("Option {number}: missing in {language}, in which the "
                                      "question is written.", number=i, language=language))
            for language, text in labels.items():
                if len(text) > MAX_OPTION:
                    raise FormError(t("Option {number}: longer than {limit} characters.",
                                      number=i, limit=MAX_OPTION))
            options.append({"id": f"option{i}", "text": labels})
        if not 2 <= len(options) <= MAX_OPTIONS:
            raise FormError(t("A consultation needs 2 to {limit} options.", limit=MAX_OPTIONS))
        try:
            closes = datetime.strptime(draft.get("closes"), "%Y-%m-%dT%H:%M")
        except ValueError:
            raise FormError(t("Give the closing time as a date and time.")) from None
        closes_at = self._local_to_utc(closes)
        if closes_at <= utcnow():
            raise FormError(t("The closing time has passed."))
        buildings = [b.strip() for b in draft.get("buildings").replace("，", ",")
                     .replace("\n", ",").split(",") if b.strip()]
        return PollSpec(texts=texts, options=options, buildings=buildings,
                        allow_change=draft.get("allow_change") == "1", opens_at=None,
                        closes_at=closes_at, source=f"console:{staff_name}")

    def poll_create(self, request: HttpRequest) -> Response:
        staff = request.state.staff
        t = self._t(request)
        draft = Draft({k: str(v) for k, v in request.state.form.items() if k != "csrf_token"})
        try:
            spec = self._poll_spec(draft, staff.name, t)
        except FormError as exc:
            return self.poll_new(request, draft, str(exc))
        with self.db.session() as session:
            poll_id = poll_service.add(session, spec).id
            auth.audit(session, staff.name, "poll.add", f"poll:{poll_id}",
                       {"options": len(spec.options), "languages": sorted(spec.texts)})
        request.session["flash"] = t("Saved as a draft.")
        return RedirectResponse(f"/polls/{poll_id}", status_code=303)

    def poll_page(self, request: HttpRequest) -> Response:
        poll_id = request.path_params["item_id"]
        staff = request.state.staff
        lang = staff.language if staff.language in self.config.language_ids else \
            self.config.default_language
        with self.db.session() as session:
            poll = session.get(Poll, poll_id)
            if poll is None:
                return self.refuse(request, 404, self._t(request)("Not found."))
            outcome = poll_service.results(session, poll)

            def label(option):
                return option["text"].get(lang) or option["text"][self.config.default_language]

            # Counts exist only once the poll is closed: a running count beside a transcript
            # would name each vote as it comes in (docs/polls.md).
            chart = charts.bars([(label(o), outcome.counts[o["id"]],
                                  f"{outcome.counts[o['id']]} ({outcome.percent(o['id']):.0f}%)")
                                 for o in poll.options]) if outcome.counted else ([], 0)
            return self.render(
                request, "poll.html", poll=poll, outcome=outcome, chart=chart, label=label,
                missing=self._missing(poll.texts), languages=self.config.languages,
                parts=POLL_PARTS, statuses=PUSH_STATUSES,
                progress=push_progress(session, poll_service.result_prefix(poll.id)),
                progress_url=f"/polls/{poll.id}/progress.json")

    def poll_action(self, request: HttpRequest) -> Response:
        """Opens or closes a poll; closing queues the results to participants as
        `linli polls close` does."""
        staff = request.state.staff
        poll_id = request.path_params["item_id"]
        t = self._t(request)
        closing = request.url.path.endswith("/close")
        try:
            with self.db.session() as session:
                if closing:
                    _, queued = self.actions.close_poll(session, poll_id)
                    auth.audit(session, staff.name, "poll.close", f"poll:{poll_id}",
                               {"queued": queued})
                    flash = t("Closed: results queued for {queued} participant(s).",
                              queued=queued)
                else:
                    self.actions.open_poll(session, poll_id)
                    auth.audit(session, staff.name, "poll.open", f"poll:{poll_id}")
                    flash = t("Opened for votes.")
            request.session["flash"] = flash
        except poll_service.PollError as exc:
            request.session["flash"] = str(exc)
        return RedirectResponse(f"/polls/{poll_id}", status_code=303)

    def poll_progress(self, request: HttpRequest) -> Response:
        with self.db.session() as session:
            return JSONResponse(push_progress(
                session, poll_service.result_prefix(request.path_params["item_id"])))

    # talk to staff -----------------------------------------------------------------------
    def handover_queue(self, request: HttpRequest) -> Response:
        now = utcnow()
        with self.db.session() as session:
            waiting = handover.queue(session)
            return self.render(request, "handover_queue.html", waiting=waiting, now=now,
                               refresh=QUEUE_REFRESH_SECONDS, minutes=_minutes,
                               places=self.places(session, [w.resident.id for w in waiting]))

    def handover_page(self, request: HttpRequest) -> Response:
        resident_id = request.path_params["resident_id"]
        with self.db.session() as session:
            resident = session.get(Resident, resident_id)
            if resident is None:
                return self.refuse(request, 404, self._t(request)("Not found."))
            active = resident.flow == handover.FLOW
            entries = []
            if active:
                entries = [(turn.at, "in", turn) for turn in handover.messages(session, resident)]
                entries += [(row.created_at, "staff", row)
                            for row in handover.answers(session, resident)]
                entries.sort(key=lambda entry: entry[0])
            return self.render(request, "handover.html", resident=resident, active=active,
                               entries=entries, max_answer=handover.MAX_ANSWER,
                               answer_text=_answer_text,
                               places=self.places(session, [resident.id]))

    def handover_answer(self, request: HttpRequest) -> Response:
        staff = request.state.staff
        resident_id = request.path_params["resident_id"]
        text = str(request.state.form.get("answer", ""))
        t = self._t(request)
        try:
            def send(session):
                self.actions.answer(session, resident_id, text)
                auth.audit(session, staff.name, "handover.answer", f"resident:{resident_id}",
                           {"characters": len(text.strip())})

            self.db.run(send)
            request.session["flash"] = t("Answer sent.")
        except handover.HandoverError as exc:
            request.session["flash"] = t(str(exc), limit=handover.MAX_ANSWER)
        return RedirectResponse(f"/handover/{resident_id}", status_code=303)

    def handover_back(self, request: HttpRequest) -> Response:
        staff = request.state.staff
        resident_id = request.path_params["resident_id"]
        t = self._t(request)
        try:
            def give_back(session):
                self.actions.hand_back(session, resident_id)
                auth.audit(session, staff.name, "handover.hand_back", f"resident:{resident_id}")

            self.db.run(give_back)
            request.session["flash"] = t("Handed back to the assistant.")
            return RedirectResponse("/handover", status_code=303)
        except handover.HandoverError as exc:
            request.session["flash"] = t(str(exc))
            return RedirectResponse(f"/handover/{resident_id}", status_code=303)


def _minutes(since: datetime | None, now: datetime) -> int | None:
    if since is None:
        return None
    return max(0, int((now - since).total_seconds() // 60))


def _answer_text(row: OutboxMessage) -> str:
    """The staff member's words in an answer row (its first line is the resident's heading)."""
    text = str((row.payload or {}).get("text", ""))
    return text.split("\n", 1)[1] if "\n" in text else text
