"""Conversation flows, one module each; `registry` builds them for an Assistant."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Assistant
    from flows.base import Flow


def registry(assistant: Assistant) -> dict[str, Flow]:
    from flows.commands import Commands
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
    from flows.settings import Settings

    flows = [
        Commands, Handover, Intents, MainMenu, MyRequests, Notices, Notifications, Onboarding, Polls, Rating,
        ReportProblem, Settings,
    ]
    return {flow.name: flow(assistant) for flow in (cls for cls in flows)}
