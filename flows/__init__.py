"""Conversation flows, one module each; `registry` builds them for an Assistant."""

from __future__ import annotations

from flows.alerts import Alerts
from flows.base import Flow
from flows.commands import Commands
from flows.context import Host
from flows.handover import Handover
from flows.intents import Intents
from flows.menu import MainMenu
from flows.myrequests import MyRequests
from flows.notices import Notices
from flows.notifications import Notifications
from flows.onboarding import Onboarding
from flows.polls import Polls
from flows.rating import Rating
from flows.requests import ReportProblem
from flows.services import Services
from flows.settings import Settings
from flows.volunteers import Volunteers

FLOWS: tuple[type[Flow], ...] = (
    Alerts, Commands, Handover, Intents, MainMenu, MyRequests, Notices, Notifications,
    Onboarding, Polls, Rating, ReportProblem, Services, Settings, Volunteers,
)


def registry(assistant: Host) -> dict[str, Flow]:
    return {flow.name: flow(assistant) for flow in FLOWS}
