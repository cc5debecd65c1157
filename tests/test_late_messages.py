"""A late message never takes over the buttons: news that arrives between turns (a staff
answer, a status change, a pushed notice) is followed by the current step again, so the last
buttons on screen, and what a typed number means, are the step's."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import func, select

from bot.i18n import Catalogs
from bot.models import Resident
from bot.services import requests as service
from flows import handover
from tests.conftest import TerminalSession
from tests.test_telegram import CHAT, Bot, Resident_, _until, texts

NUMBERED = re.compile(r"^\s*\u200f?\s*(\d+)\. (.+)$")


def last_buttons(output: str) -> list[str]:
    """The numbered choices at the end of a terminal block (what a typed number presses)."""
    lines = [line for line in output.splitlines() if line.strip()]
    labels = []
    for line in reversed(lines):
        match = NUMBERED.match(line)
        if match is None:
            break
        labels.insert(0, match.group(2))
    return labels


def residents(db) -> int:
    with db.session() as session:
        return session.execute(select(func.count(Resident.id))).scalar_one()


def resident_id(db, user_id: str, channel: str = "terminal") -> int:
    with db.session() as session:
        return session.execute(select(Resident.id).where(
            Resident.channel == channel, Resident.channel_user_id == user_id)).scalar_one()


def test_a_staff_answer_arriving_mid_confirmation_leaves_the_confirmation_s_buttons_last(
        assistant, config, db):
    terminal = TerminalSession(assistant, "fiona")
    terminal.send("/start")
    terminal.send("3")  # English
    terminal.send("2")  # no voice
    terminal.send("5")  # Talk to staff
    terminal.send("My balcony door is stuck")
    with db.session() as session:  # staff answer from the console
        handover.answer(session, Catalogs(config), resident_id(db, "fiona"),
                        "We will come at 3 pm. Call 13700001111 if you are out.")

    shown = terminal.send("/forget")

    assert "Reply from the community staff:" in shown and "We will come at 3 pm" in shown
    assert shown.index("We will come at 3 pm") < shown.rindex("Erasing your data")
    assert last_buttons(shown) == ["No, keep my data", "Yes, erase"]
    shown = terminal.send("1")  # what the confirmation's button 1 says
    assert "Nothing was erased." in shown and residents(db) == 1


def test_a_status_change_arriving_mid_confirmation_is_followed_by_the_confirmation(
        assistant, chat, db):
    resident = chat("george")
    resident.onboard("en")
    tracking_number = resident.file_request("general", "Broken bench", "Park")
    terminal = TerminalSession(assistant, "george")
    assert last_buttons(terminal.send("/forget")) == ["No, keep my data", "Yes, erase"]
    with db.session() as session:
        service.change_status(session, tracking_number, "accepted", "staff:li",
                              note="The carpenter comes on Monday")

    shown = terminal.send("hello")  # anything: the news comes with the next turn

    assert f"Your request {tracking_number} has been accepted" in shown
    assert shown.rindex("Erasing your data") > shown.index("The carpenter comes on Monday")
    assert last_buttons(shown) == ["No, keep my data", "Yes, erase"]
    shown = terminal.send("1")
    assert "Nothing was erased." in shown and residents(db) == 1


def test_news_at_the_main_menu_shows_the_menu_again_and_a_rating_it_starts_is_not_repeated(
        assistant, chat, db):
    resident = chat("hana")
    resident.onboard("en")
    tracking_number = resident.file_request("general", "Broken bench", "Park")
    terminal = TerminalSession(assistant, "hana")
    with db.session() as session:
        service.change_status(session, tracking_number, "accepted", "staff:li")
    shown = terminal.send("/menu")
    assert shown.rindex("What would you like to do?") > shown.index("has been accepted")
    assert last_buttons(shown)[0] == "Report a problem"
    with db.session() as session:
        service.change_status(session, tracking_number, "resolved", "staff:li")
    shown = terminal.send("/menu")
    # The news starts the rating: its question is the step, shown once, last.
    assert shown.count("How happy are you") == 1
    assert last_buttons(shown)[-1] == "Later"


def test_on_telegram_a_status_change_mid_confirmation_is_followed_by_the_confirmation(
        config, db, fake):
    async def scenario():
        resident = Resident_(fake, db, language="en")
        async with Bot(config, db, fake):
            sent = await resident.onboard_in_english()
            sent = await resident.press(sent, "Report a problem")
            sent = await resident.press(sent, config.category("general").names["en"])
            await resident.says("Broken bench")
            sent = await resident.says("Park")
            if any("photo" in (s.text or "") for s in sent):
                sent = await resident.press(sent, "No photo")
            sent = await resident.press(sent, "Submit")
            tracking_number = re.findall(r"R-\d{6}", texts(sent))[0]
            sent = await resident.says("/forget")
            assert sent[-1].buttons and "No, keep my data" in sent[-1].buttons[0][0]

            before = len(fake.sent_to(CHAT))
            with db.session() as session:
                service.change_status(session, tracking_number, "in_progress", "staff:li",
                                      note="The carpenter is on his way")
            # The notice carries its own buttons; wait for the step shown again below it.
            got = await asyncio.wait_for(_until(lambda: fake.sent_to(CHAT)[before:],
                                                lambda s: any(x.buttons for x in s[1:])), 20)
            assert "The carpenter is on his way" in texts(got)
            last = fake.sent_to(CHAT)[-1]
            assert [label for label, _ in last.buttons] == ["1. No, keep my data",
                                                            "2. Yes, erase"]
            sent = await resident.says("1")
            assert "Nothing was erased." in texts(sent)
            assert residents(db) == 1

    asyncio.run(scenario())


def test_a_notice_pushed_by_linli_mid_confirmation_is_followed_by_the_confirmation(
        config, db, env, fake):
    """`linli notices publish` sends the notice, then the step the resident is at."""
    from bot.config import PROJECT_ROOT
    from bot.core import Assistant
    from bot.messages import Incoming
    from bot.models import OutboxMessage
    from bot.services import notices as notice_service
    from bot.wiring import installed_channels
    from tests.conftest import run_cli

    chat = 8001
    assistant = Assistant(config, db, channels=installed_channels())

    def says(text: str) -> None:
        asyncio.run(assistant.handle(Incoming("telegram", str(chat), "text", text=text)))
        with db.session() as session:  # as `linli serve` would have sent them
            for row in session.execute(select(OutboxMessage)).scalars():
                row.status = "sent"

    for text in ("/start", "3", "2", "/forget"):
        says(text)
    with db.session() as session:
        resident = session.execute(select(Resident)).scalar_one()
        assert (resident.flow, resident.step) == ("settings", "forget")
        notice_service.subscribe(session, resident, "elderly_care")
    added = run_cli(env, "notices", "add", str(PROJECT_ROOT / "docs" / "examples" / "notice.yml"))
    notice_id = re.search(r"notice (\d+) added", added.stdout).group(1)
    telegram = {**env, "LINLI_TELEGRAM_TOKEN": fake.token, "LINLI_TELEGRAM_BASE_URL": fake.root}
    published = run_cli(telegram, "notices", "publish", notice_id)
    assert published.returncode == 0, published.stderr

    sent = fake.sent_to(chat)
    assert "New notice" in sent[0].text
    assert [label for label, _ in sent[-1].buttons] == ["1. No, keep my data", "2. Yes, erase"]
    assert "sent 1, failed 0, pending 0, unconfirmed 0" in published.stdout  # the notice alone
    says("1")
    assert residents(db) == 1
    with db.session() as session:
        answer = session.execute(select(OutboxMessage).order_by(OutboxMessage.id.desc())
                                 .limit(2)).scalars().all()
        assert "Nothing was erased." in [row.payload["text"] for row in answer]


def test_a_notice_published_from_the_console_is_followed_by_the_step_in_linli_serve(
        config, db, fake):
    """Published in the console, the notice is sent by the running channel; its next push round
    shows the resident's step again below it."""
    from bot.i18n import Catalogs
    from bot.services import notices as notice_service
    from bot.specs import load_notice
    from bot.wiring import installed_channels
    from flows.notices import push_payloads

    catalogs = Catalogs(config)
    channels = installed_channels()

    def render(resident, notice):
        return push_payloads(catalogs.translator(resident.language), config, resident, notice,
                             channels[resident.channel])

    async def scenario():
        resident = Resident_(fake, db, language="en")
        async with Bot(config, db, fake):
            await resident.onboard_in_english()
            await resident.says("/forget")
            with db.session() as session:
                row = session.execute(select(Resident)).scalar_one()
                notice_service.subscribe(session, row, "elderly_care")
                notice = notice_service.add(session, load_notice(
                    config.path.parent / "docs" / "examples" / "notice.yml", config))
                notice_id = notice.id
            before = len(fake.sent_to(CHAT))
            with db.session() as session:
                notice_service.publish(session, notice_id, render)
            # The notice carries its own buttons; wait for the step shown again below it.
            got = await asyncio.wait_for(_until(lambda: fake.sent_to(CHAT)[before:],
                                                lambda s: any(x.buttons for x in s[1:])), 20)
            assert "New notice" in got[0].text
            assert [label for label, _ in got[-1].buttons] == ["1. No, keep my data",
                                                               "2. Yes, erase"]
            sent = await resident.says("1")
            assert "Nothing was erased." in texts(sent) and residents(db) == 1

    asyncio.run(scenario())
