"""Property tests of the core: any sequence of messages leaves a resident in a valid state.

Hypothesis draws sequences of typed text, presses of offered buttons, forged buttons,
locations, photos, voice notes and reconnects; after every step the resident's state must be
one the flows can show, and no turn may end in the apology that a crash produces.
"""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.core import Assistant
from bot.messages import Incoming
from bot.models import Request, Resident
from bot.wiring import installed_channels

TEXTS = st.one_of(
    st.sampled_from(["/start", "/menu", "/cancel", "/help", "/language", "/voice", "/forget",
                     "/myrequests", "1", "2", "3", "9", "0", "yes", "no", "是", "R-123456",
                     "电梯坏了", "the lift is broken", "", "   ", "x" * 1200, "\u202e1",
                     "building 3", "救命", "help"]),
    st.text(max_size=40),
)
ACTIONS = st.one_of(
    st.tuples(st.just("text"), TEXTS),
    st.tuples(st.just("press"), st.integers(min_value=0, max_value=20)),
    st.tuples(st.just("forged"), st.sampled_from(["confirm:submit", "cat:nope", "rate:9",
                                                  "lang:xx", "menu:report", "", "forget:yes"])),
    st.tuples(st.just("location"), st.tuples(st.floats(-200, 200), st.floats(-200, 200))),
    st.tuples(st.just("photo"), st.none()),
    st.tuples(st.just("voice"), st.none()),
    st.tuples(st.just("resume"), st.none()),
)
APOLOGY = "Sorry, something went wrong"
_users = itertools.count()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(actions=st.lists(ACTIONS, min_size=1, max_size=15),
       channel=st.sampled_from(["terminal", "telegram"]))
def test_any_sequence_of_messages_leaves_a_valid_state(config, db, actions, channel):
    assistant = Assistant(config, db, channels=installed_channels())
    user = f"p{next(_users)}"
    media = {"kind": "photo", "file_id": "f", "path": None, "mime": "image/jpeg", "size": 1}

    async def run():
        for kind, value in actions:
            offered = _offered(db, channel, user)
            if kind == "text":
                incoming = Incoming(channel, user, "text", text=value, language_hint="en")
            elif kind == "press":
                if not offered:
                    continue
                incoming = Incoming(channel, user, "button", payload=offered[value % len(offered)])
            elif kind == "forged":
                incoming = Incoming(channel, user, "button", payload=value)
            elif kind == "location":
                incoming = Incoming(channel, user, "location", latitude=value[0],
                                    longitude=value[1])
            elif kind in ("photo", "voice"):
                incoming = Incoming(channel, user, kind,
                                    media={**media, "kind": kind, "duration": 2.0})
            else:
                incoming = Incoming(channel, user, "resume")
            replies = await assistant.handle(incoming)
            assert replies, (kind, value)
            assert not any(APOLOGY in r.text for r in replies), (kind, value)
            _check_state(assistant, db, channel, user)

    asyncio.run(run())


def _offered(db, channel, user) -> list[str]:
    with db.session() as session:
        resident = _resident(session, channel, user)
        return list(resident.offered) if resident else []


def _resident(session, channel, user):
    return session.execute(select(Resident).where(
        Resident.channel == channel, Resident.channel_user_id == user)).scalar_one_or_none()


def _check_state(assistant: Assistant, db, channel: str, user: str) -> None:
    with db.session() as session:
        resident = _resident(session, channel, user)
        if resident is None:  # /forget deleted the profile
            return
        assert resident.flow is None or resident.flow in assistant.flows
        assert (resident.flow is None) == (resident.step is None) or resident.flow == "menu"
        assert isinstance(resident.slots, dict) and isinstance(resident.offered, list)
        assert len(set(resident.offered)) == len(resident.offered)
        if resident.flow not in (None, "onboarding"):  # the picker is shown before a choice
            assert resident.language in assistant.config.language_ids
        # A request exists only for a confirmed draft with a description or a voice note.
        for request in session.execute(select(Request).where(
                Request.resident_id == resident.id)).scalars():
            assert request.description or any(a.kind == "voice" for a in request.attachments)


def test_requests_come_only_from_confirmations(config, db):
    """Forged confirmations alone never file a request."""
    assistant = Assistant(config, db, channels=installed_channels())

    async def run():
        for payload in ["confirm:submit"] * 5:
            await assistant.handle(Incoming("terminal", "forger", "button", payload=payload))

    asyncio.run(run())
    with db.session() as session:
        assert session.execute(select(func.count(Request.id))).scalar_one() == 0
