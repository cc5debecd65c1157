"""Faults around the Telegram channel: timeouts, dead voice engines, a database restart."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import func, select

from bot.config import PROJECT_ROOT, load_config
from bot.db import Database, sync_catalogue, upgrade
from bot.models import OutboxMessage, Request, Resident
from tests.test_telegram import CHAT, Bot, Resident_, closed_port_url


def test_a_timeout_after_telegram_took_the_message_does_not_send_it_twice(config, db, fake):
    async def scenario():
        resident = Resident_(fake, db, language="en")
        async with Bot(config, db, fake, settings={"read_timeout": 0.5}):
            fake.fail_next("sendMessage", delay=1.5)  # answers after the client gave up
            sent = await resident.says("/start")
            await asyncio.sleep(2.0)
            return sent

    sent = asyncio.run(scenario())
    assert len(fake.sent_to(CHAT)) == 1 and "English" in str(sent[0].buttons)
    with db.session() as session:
        assert session.execute(select(OutboxMessage.status)).scalars().all() == ["unconfirmed"]


def test_every_voice_engine_failing_still_delivers_the_text(config, db, fake):
    from bot.voice import Voice

    async def scenario():
        resident = Resident_(fake, db, language="en")
        async with Bot(config, db, fake) as bot:
            bot.channel.sender.transport.voice = Voice(
                config, gtts_url=closed_port_url(), espeak_binary="/nonexistent/espeak-ng")
            sent = await resident.says("/start")
            sent = await resident.press(sent, "English")
            sent = await resident.press(sent, "Yes")  # voice on
            return sent

    sent = asyncio.run(scenario())
    assert {s.method for s in sent} == {"sendMessage"}
    # After the voice step: the building question, shown with the main menu's buttons.
    assert "Which building do you live in?" in "\n".join(s.text for s in sent[:-1])
    assert "no voice for this language" in sent[-1].text


def test_a_database_restart_in_the_middle_of_traffic_loses_no_request(tmp_path, monkeypatch,
                                                                      fake, caplog):
    from tests.postgres import PostgresServer

    server = PostgresServer().start()
    try:
        url = server.new_database()
        monkeypatch.setenv("LINLI_DATABASE_URL", url)
        monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path / "var"))
        monkeypatch.setenv("LINLI_MODELS_DIR", str(tmp_path / "no-models"))
        config = load_config(PROJECT_ROOT / "config.yml")
        upgrade(url)
        db = Database(url)
        sync_catalogue(db, config)
        residents = [7000 + i for i in range(10)]
        with db.session() as session:
            for chat in residents:
                session.add(Resident(
                    channel="telegram", channel_user_id=str(chat), language="en",
                    flow="report", step="confirm", offered=["confirm:submit", "cancel"],
                    slots={"category": "utilities", "description": f"No water in flat {chat}",
                           "location_text": "Building 2"}))

        async def outage():
            await asyncio.sleep(0.8)
            await asyncio.to_thread(server.kill)
            await asyncio.sleep(2.0)
            await asyncio.to_thread(server.restart)

        async def scenario():
            async with Bot(config, db, fake) as bot:
                bot.channel.storage_patience = 60
                restart = asyncio.create_task(outage())
                for chat in residents:  # one press every 0.3 s, before, during and after
                    fake.press(chat, "confirm:submit", "en")
                    await asyncio.sleep(0.3)
                await restart
                for _ in range(300):
                    if all(any("R-" in (s.text or "") for s in fake.sent_to(c))
                           for c in residents):
                        break
                    await asyncio.sleep(0.1)

        asyncio.run(scenario())
        assert "Connection refused" in caplog.text  # the bot did meet the outage
        with db.session() as session:
            assert session.execute(select(func.count(Request.id))).scalar_one() == len(residents)
        for chat in residents:
            numbers = re.findall(r"R-\d{6}", "\n".join(s.text or "" for s in fake.sent_to(chat)))
            assert len(numbers) == 1, (chat, numbers)
        db.dispose()
    finally:
        server.stop()


def test_a_crash_during_a_big_push_strands_only_the_messages_in_flight(config, db, fake):
    """Rows are claimed after the rate limit's wait, so a crash can catch only a few."""
    from bot.delivery import Sender
    from bot.services import outbox

    async def scenario():
        async with Bot(config, db, fake) as bot:
            bot.channel._stop.set()  # only the sender below sends
            await asyncio.gather(*bot.channel._tasks)
            with db.session() as session:
                for chat in range(8000, 8050):
                    resident = Resident(channel="telegram", channel_user_id=str(chat),
                                        slots={}, offered=[], language="en")
                    session.add(resident)
                    session.flush()
                    outbox.enqueue(session, resident, [{"text": "notice", "buttons": []}],
                                   key=f"notice:1:{resident.id}")
            sender = Sender(db, bot.channel.sender.transport, rate=10)
            push = asyncio.create_task(sender.drain_once())
            await asyncio.sleep(1.0)
            push.cancel()  # the process dies here
            await asyncio.gather(push, return_exceptions=True)

    asyncio.run(scenario())
    with db.session() as session:
        statuses = [s for s in session.execute(select(OutboxMessage.status)).scalars()]
    assert statuses.count("sending") <= 2
    # the first second: a burst of 10 and 10 more; the rest still waits, not stranded
    assert 5 <= statuses.count("sent") <= 25 and statuses.count("pending") >= 25
