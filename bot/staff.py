"""Staff actions, the same from the CLI and the console: publish, open and close, answer, hand back.

Each writes through the services in the caller's transaction and queues what residents are
told, rendered in each resident's language for what their channel carries. The caller audits
(the console) or reports (the CLI) and sends (`linli serve`, or bot/push.py at once).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from bot.config import Config
from bot.i18n import Catalogs
from bot.keys import ballot_keys
from bot.models import Notice, OutboxMessage, Poll, Resident
from bot.services import notices as notice_service
from bot.services import polls as poll_service
from bot.services import requests as request_service
from flows import handover
from flows.notices import push_payloads
from flows.polls import result_payloads


class StaffActions:
    """What staff do that residents hear about, for one installation's channels."""

    def __init__(self, config: Config, catalogs: Catalogs,
                 channels: Mapping[str, frozenset[str]]):
        """`channels`: what each channel carries (bot.wiring.installed_channels())."""
        self.config, self.catalogs, self.channels = config, catalogs, channels

    def _carries(self, resident: Resident) -> frozenset[str]:
        return self.channels.get(resident.channel, frozenset())

    def publish_notice(self, session: Session, notice_id: int) -> tuple[Notice, int, int]:
        """Publishes the notice and queues it for each subscriber: (notice, subscribers,
        newly queued), as bot.services.notices.publish."""

        def render(resident: Resident, notice: Notice) -> list[dict]:
            return push_payloads(self.catalogs.translator(resident.language), self.config,
                                 resident, notice, self._carries(resident))

        return notice_service.publish(session, notice_id, render)

    def open_poll(self, session: Session, poll_id: int) -> Poll:
        return poll_service.open_poll(session, poll_id)

    def close_poll(self, session: Session, poll_id: int) -> tuple[Poll, int]:
        """Closes the poll and queues its results for everyone who took part: (poll, newly
        queued), as bot.services.polls.close."""

        def render(resident: Resident, outcome: poll_service.Results) -> list[dict]:
            return result_payloads(self.catalogs.translator(resident.language), self.config,
                                   resident, outcome, self._carries(resident))

        return poll_service.close(session, poll_id, render, ballot_keys(self.config.data_dir))

    def change_status(self, session: Session, tracking_number: str, status: str, *, actor: str,
                      note: str | None = None, department_id: str | None = None,
                      duplicate_of: str | None = None):
        """A request's new status (closing it included); the resident is told at their next
        turn, or by `linli serve`'s push round."""
        return request_service.change_status(
            session, tracking_number, status, actor=actor, note=note,
            department_id=department_id, duplicate_of=duplicate_of,
            data_dir=self.config.data_dir)

    def answer(self, session: Session, resident_id: int, text: str) -> OutboxMessage:
        """Queues a staff answer to a resident who asked to talk to staff."""
        return handover.answer(session, self.catalogs, resident_id, text)

    def hand_back(self, session: Session, resident_id: int) -> Resident:
        """Returns a resident talking to staff to the assistant, and tells them so."""
        return handover.hand_back(session, self.catalogs, resident_id)
