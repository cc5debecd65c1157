"""Area alerts (应急预警) through the real core, flows, `linli` CLI and database.

An alert to a grid reaches each of its residents once and nobody else, ahead of everything
queued before it; "I need help" and the silence of a resident flagged by staff put them on the
grid's check list; a fan-out killed half-way and run again loses and doubles nothing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select, update

from bot.config import PROJECT_ROOT
from bot.core import Assistant
from bot.models import Alert, AlertRecipient, OutboxMessage, Resident, utcnow
from bot.services import alerts as service
from bot.services import notices as notice_service
from bot.services import outbox
from bot.specs import SpecError, load_alert
from flows.alerts import renderer
from tests.conftest import Chat, run_cli
from tests.test_console_browser import browser  # noqa: F401  (the Chromium fixture)

EXAMPLE = PROJECT_ROOT / "docs" / "examples" / "alert.yml"
# Who lives where: (chat id, language, building as they typed it, grid)
PEOPLE = [
    ("e1", "zh_Hans", "3号楼", "east"),
    ("e2", "en", "Building 2", "east"),
    ("e3", "mn", "4-р байр", "east"),
    ("e4", "bo", "1号楼", "east"),
    ("w1", "ug", "5号楼", "west"),
    ("w2", "zh_Hant", "7棟", "west"),
    ("n1", "en", None, None),  # no building given: in no grid
]


def alert_file(tmp_path: Path, name: str = "alert.yml", **changes) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    return path


def cli(env: dict, *args: str):
    result = run_cli(env, *args)
    assert result.returncode == 0, result.stderr
    return result


def onboard(assistant: Assistant, people=PEOPLE) -> dict[str, Chat]:
    """Each resident onboards in their language and gives their building in the settings."""
    chats = {}
    for user, language, building, _ in people:
        resident = Chat(assistant, user)
        resident.onboard(language)
        if building is not None:
            resident.press_payload("menu:settings")
            resident.press_payload("set:building")
            resident.send(building)
            resident.press_payload("menu")
        chats[user] = resident
    return chats


def recipients(db) -> dict[str, int]:
    """Chat id → how many outbox rows of alerts were queued for them."""
    with db.session() as session:
        rows = session.execute(
            select(OutboxMessage.chat_id, func.count())
            .where(OutboxMessage.kind == "alert").group_by(OutboxMessage.chat_id)).all()
    return dict(rows)


def only_alert(db) -> Alert:
    with db.session() as session:
        alert = session.execute(select(Alert)).scalar_one()
        session.expunge(alert)
        return alert


def test_an_alert_to_grid_east_reaches_every_east_resident_once_and_no_one_else(
        assistant, db, env, tmp_path):
    chats = onboard(assistant)
    path = alert_file(tmp_path, target={"grids": ["east"]})
    first = cli(env, "alerts", "send", str(path))
    assert "4 resident(s) in its area, 4 newly queued" in first.stderr
    assert "alert 1 on terminal: sent 0, failed 0, pending 4, unconfirmed 0" in first.stdout
    again = cli(env, "alerts", "continue", "1")
    assert "4 resident(s) in its area, 0 newly queued" in again.stderr
    assert recipients(db) == {"e1": 1, "e2": 1, "e3": 1, "e4": 1}

    texts = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["texts"]
    for user, language, _, grid in PEOPLE:
        resident = chats[user]
        resident.send("1")  # typed for the menu before the alert was shown: not an answer
        shown = resident.text
        if grid == "east":
            assert shown.count(texts[language]["body"]) == 1, shown
            assert resident.payloads == ["alert:1:safe", "alert:1:help"]
            assert resident.state()[:2] == ("alerts", "ask")
        else:
            assert not any(t["body"] in shown for t in texts.values())
            assert resident.state()[:2] != ("alerts", "ask")
    with db.session() as session:
        assert session.execute(select(func.count(AlertRecipient.id))).scalar_one() == 4
        assert not session.execute(
            select(AlertRecipient).where(AlertRecipient.answer.is_not(None))).first()


def test_buildings_and_everyone_are_targets_too(assistant, db, config, tmp_path):
    onboard(assistant)
    render = renderer(config, assistant.catalogs, assistant.channels)
    spec = load_alert(alert_file(tmp_path, target={"buildings": ["5", "3号楼"]}), config)
    with db.session() as session:
        by_building = service.add(session, spec, created_by="test").id
        everyone = service.add(session, load_alert(alert_file(
            tmp_path, "all.yml", target="everyone"), config), "test").id
    assert service.send(db, config, by_building, render) == (2, 2)
    assert service.send(db, config, everyone, render) == (7, 7)
    with db.session() as session:
        got = session.execute(
            select(Resident.channel_user_id).join(
                AlertRecipient, AlertRecipient.resident_id == Resident.id)
            .where(AlertRecipient.alert_id == by_building)).scalars()
        assert sorted(got) == ["e1", "w1"]


def test_answers_by_number_and_by_name_and_the_check_list(assistant, db, config, env,
                                                          tmp_path):
    chats = onboard(assistant)
    e1 = chats["e1"]
    e1.press_payload("menu:notices")  # reading notices when the alert comes
    cli(env, "alerts", "send", str(alert_file(tmp_path, target={"grids": ["east"]},
                                              check_after_minutes=30)))
    with db.session() as session:
        ids = {r.channel_user_id: r.id for r in session.execute(select(Resident)).scalars()}
        # Staff flagged e3 (lives alone) and e4 (elderly); e2 is not flagged.
        service.set_flags(session, ids["e3"], lives_alone=True, elderly=False)
        service.set_flags(session, ids["e4"], lives_alone=False, elderly=True)

    e1.send("2")  # meant for the notices: the alert is shown instead
    assert e1.payloads == ["alert:1:safe", "alert:1:help"]
    e1.send("2")  # "I need help", by its number
    assert e1.t("Thank you for telling us. Your grid worker will check on you soon.") \
        in e1.text
    assert "110" in e1.text  # the emergency numbers, at once
    assert e1.state()[:2] == ("notices", "main")  # back where they were
    e2 = chats["e2"]
    e2.send("hello")
    e2.send("I am safe")  # the button's label, typed
    assert e2.t("Thank you. We are glad you are safe.") in e2.text
    assert e2.state()[:2] == ("menu", "main")

    alert = only_alert(db)
    with db.session() as session:
        assert service.counts(session, alert.id) == {
            "east": {"safe": 1, "help": 1, "no_answer": 2}}
        listed = service.check_list(session, alert)
        assert [(e.resident_id, e.building, e.reason) for e in listed] == [
            (ids["e1"], "3", "help")]
        # Half an hour later: e3 and e4 (flagged) have not answered; e2 answered.
        session.execute(update(Alert).values(sent_at=utcnow() - timedelta(minutes=31)))
        alert = session.get(Alert, alert.id)
        listed = service.check_list(session, alert)
        assert sorted((e.resident_id, e.building, e.reason) for e in listed) == sorted([
            (ids["e1"], "3", "help"), (ids["e3"], "4", "no_answer"),
            (ids["e4"], "1", "no_answer")])

    # The serving process records it when the time comes (here: it has come already).
    async def watch():
        stop = asyncio.Event()
        task = asyncio.create_task(service.watch_checks(db, stop, longest=0.1))
        await asyncio.sleep(0.3)
        stop.set()
        await task

    asyncio.run(watch())
    with db.session() as session:
        reasons = dict(session.execute(
            select(AlertRecipient.resident_id, AlertRecipient.check_reason)).all())
    assert reasons == {ids["e1"]: "help", ids["e2"]: None, ids["e3"]: "no_answer",
                       ids["e4"]: "no_answer"}
    status = cli(env, "alerts", "status", "1").stdout
    assert "east\tsafe 1\tneed help 1\tno answer 2" in status
    assert "check\teast\tbuilding 4\t" in status and "3号楼" not in status


def test_an_unflagged_silent_resident_is_not_on_the_check_list(assistant, db, config,
                                                                tmp_path):
    onboard(assistant, PEOPLE[:2])
    render = renderer(config, assistant.catalogs, assistant.channels)
    with db.session() as session:
        alert_id = service.add(session, load_alert(alert_file(tmp_path), config), "t").id
    service.send(db, config, alert_id, render)
    with db.session() as session:
        session.execute(update(Alert).values(sent_at=utcnow() - timedelta(days=1)))
        assert service.record_overdue(session) == 0
        assert service.check_list(session, session.get(Alert, alert_id)) == []


def test_the_alert_goes_before_notices_queued_earlier(config, db, fake):
    """Telegram subscribers have a notice waiting; the alert queued after it arrives first."""
    from bot.delivery import Sender
    from tests.test_telegram import Bot

    chats = [9100 + i for i in range(6)]

    async def scenario():
        async with Bot(config, db, fake) as bot:
            bot.channel._stop.set()  # only the sender below sends
            await asyncio.gather(*bot.channel._tasks)
            with db.session() as session:
                for chat in chats:
                    resident = Resident(channel="telegram", channel_user_id=str(chat),
                                        slots={}, offered=[], language="en", flow="menu",
                                        step="main", building="2号楼")
                    session.add(resident)
                    session.flush()
                    notice_service.subscribe(session, resident, "elderly_care")
                notice = notice_service.add(session, _notice_spec(config))
            with db.session() as session:
                notice_service.publish(session, notice.id, lambda r, n: [
                    {"text": "older notice", "buttons": []}])
                alert_id = service.add(session, load_alert(EXAMPLE, config), "t").id
            service.send(db, config, alert_id, renderer(config, bot.assistant.catalogs,
                                                        bot.assistant.channels))
            sender = Sender(db, bot.channel.sender.transport, rate=5)
            while await sender.drain_once():
                await asyncio.sleep(0.05)

    asyncio.run(scenario())
    order = [s.text for s in fake.sent]
    assert len(order) == 12
    alerts = [i for i, text in enumerate(order) if "Cold wave" in text]
    notices = [i for i, text in enumerate(order) if text == "older notice"]
    assert len(alerts) == len(notices) == 6 and max(alerts) < min(notices), order
    buttons = next(s.buttons for s in fake.sent if "Cold wave" in s.text)
    assert [data for _, data in buttons] == ["alert:1:safe", "alert:1:help"]


def _notice_spec(config):
    from bot.specs import load_notice

    return load_notice(PROJECT_ROOT / "docs" / "examples" / "notice.yml", config)


def test_a_crash_mid_fan_out_loses_and_doubles_nothing(assistant, db, config):
    """The fan-out dies in its third batch; run again, it queues exactly the rest."""
    with db.session() as session:
        for i in range(23):
            session.add(Resident(channel="terminal", channel_user_id=f"r{i}", slots={},
                                 offered=[], language="zh_Hans", flow="menu", step="main",
                                 building=f"{1 + i % 8}号楼"))
        alert_id = service.add(session, load_alert(EXAMPLE, config), "t").id
    render = renderer(config, assistant.catalogs, assistant.channels)
    done = []

    def dying(session, resident, alert):
        if len(done) == 11:
            raise KeyboardInterrupt  # the process is killed here
        done.append(resident.id)
        return render(session, resident, alert)

    with pytest.raises(KeyboardInterrupt):
        service.send(db, config, alert_id, dying, batch=5)
    with db.session() as session:
        queued = session.execute(select(func.count(OutboxMessage.id))
                                 .where(outbox.keyed(service.delivery_prefix(alert_id)))
                                 ).scalar_one()
        stored = session.execute(select(func.count(AlertRecipient.id))).scalar_one()
    # East grid and building 6: 2 of every 8 buildings … the batches before the crash stay.
    assert 0 < queued == stored < 11
    area, newly = service.send(db, config, alert_id, render, batch=5)
    expected = [f"r{i}" for i in range(23) if 1 + i % 8 in (1, 2, 3, 4, 6)]
    assert area == len(expected) and newly == len(expected) - queued
    got = recipients(db)
    assert sorted(got) == sorted(expected) and set(got.values()) == {1}


@pytest.mark.parametrize("changes,message", [
    ({"severity": "urgent"}, "severity: 'urgent' is not one of info, warning, danger"),
    ({"target": {"grids": ["north"]}}, "target.grids[0]: 'north' is not a grid of config.yml"),
    ({"target": {"buildings": ["99号楼"]}},
     "target.buildings[0]: '99号楼' is not a building of config.yml's grids"),
    ({"check_after_minutes": 0}, "check_after_minutes: must be a whole number of minutes"),
    ({"texts": {"en": {"title": "x", "body": "y"}}}, "texts.zh_Hans: missing"),
    ({"colour": "red"}, "colour: unknown key"),
])
def test_the_cli_refuses_a_bad_alert_file_naming_the_key(db, env, tmp_path, changes,
                                                          message):
    path = alert_file(tmp_path, **changes)
    result = run_cli(env, "alerts", "send", str(path))
    assert result.returncode == 2
    assert f"{path}: {message}" in result.stderr
    with db.session() as session:
        assert session.execute(select(func.count(Alert.id))).scalar_one() == 0


def test_the_example_file_is_valid(config):
    spec = load_alert(EXAMPLE, config)
    assert set(spec.texts) == set(config.language_ids)
    assert spec.grids == ["east"] and spec.buildings == ["6"]
    with pytest.raises(SpecError):
        load_alert(EXAMPLE.with_name("missing.yml"), config)


def test_the_console_sends_an_alert_flags_residents_and_shows_the_check_list(
        assistant, db, config):
    """Staff flag a resident on the conversation page (audited), send an alert from the form,
    and watch answers and the check list; a viewer sees no names or phones."""
    from bot.console.models import AuditEntry
    from tests.console_helpers import add_staff, console, logged_in

    chats = onboard(assistant, PEOPLE[:2] + PEOPLE[4:5])
    add_staff(db, "sam", "staff")
    add_staff(db, "vic", "viewer")
    app = console(config, db)
    staff, viewer = logged_in(app, "sam"), logged_in(app, "vic")
    with db.session() as session:
        ids = {r.channel_user_id: r.id for r in session.execute(select(Resident)).scalars()}
        session.get(Resident, ids["e2"]).phone = "13800138000"
    assert viewer.post(f"/residents/{ids['e2']}/flags", {"elderly": "1"}).status_code == 403
    staff.get(f"/conversations/{ids['e2']}")
    assert staff.post(f"/residents/{ids['e2']}/flags",
                      {"elderly": "1"}).status_code == 303
    page = staff.get(f"/conversations/{ids['e2']}").text
    assert 'name="elderly" value="1" checked' in page
    assert 'name="lives_alone" value="1" checked' not in page

    form = {"severity": "danger", "check_after_minutes": "5", "target": "area",
            "grid_east": "1", "buildings": "",
            "title_zh_Hans": "燃气泄漏", "body_zh_Hans": "3号楼附近燃气泄漏，请勿用火。",
            "title_en": "Gas leak", "body_en": "Gas leak near building 3. No open flames."}
    staff.get("/alerts/new")
    refused = staff.post("/alerts", {**form, "severity": "urgent"})
    assert refused.status_code == 400 and "severity: &#39;urgent&#39; is not one of" in \
        refused.text
    assert viewer.post("/alerts", form).status_code == 403
    sent = staff.post("/alerts", form)
    assert sent.status_code == 303 and sent.headers["location"] == "/alerts/1"
    assert recipients(db) == {"e1": 1, "e2": 1}

    chats["e1"].send("2")  # shown the alert
    assert "燃气泄漏" in chats["e1"].text
    chats["e1"].send("2")  # "I need help"
    status = staff.get("/alerts/1/status.json").json()
    assert status["grids"] == [{"grid": "east", "name": "East grid", "safe": 0, "help": 1,
                                "no_answer": 1}]
    assert [(c["building"], c["reason"]) for c in status["checks"]] == [("3", "help")]
    with db.session() as session:  # five minutes later e2 (flagged) has not answered
        session.execute(update(Alert).values(sent_at=utcnow() - timedelta(minutes=6)))
    status = staff.get("/alerts/1/status.json").json()
    assert [(c["building"], c["reason"], c["phone"]) for c in status["checks"]] == [
        ("2", "no_answer", "13800138000"), ("3", "help", "")]
    seen = viewer.get("/alerts/1/status.json").json()["checks"]
    assert [c["phone"] for c in seen] == ["138******00", ""] and not any(c["name"]
                                                                          for c in seen)
    page = viewer.get("/alerts/1").text
    assert "East grid" in page and "13800138000" not in page
    with db.session() as session:
        actions = [e.action for e in session.execute(select(AuditEntry)).scalars()]
    assert {"resident.flags", "alert.create", "alert.send"} <= set(actions)


def test_the_alert_is_spoken_to_residents_with_voice_on(assistant, db, config):
    """On Telegram, a resident with voice on gets the alert's spoken version after its text,
    the two answers read out with their numbers; one with voice off gets the text only."""
    with db.session() as session:
        for chat, voice in (("9201", True), ("9202", False)):
            session.add(Resident(channel="telegram", channel_user_id=chat, slots={},
                                 offered=[], language="zh_Hans", flow="menu", step="main",
                                 building="2号楼", voice_on=voice))
        alert_id = service.add(session, load_alert(EXAMPLE, config), "t").id
    service.send(db, config, alert_id, renderer(config, assistant.catalogs,
                                                assistant.channels))
    with db.session() as session:
        rows = {chat: [r.payload for r in session.execute(
            select(OutboxMessage).where(OutboxMessage.chat_id == chat)
            .order_by(OutboxMessage.id)).scalars()] for chat in ("9201", "9202")}
    assert len(rows["9202"]) == 1 and not rows["9202"][0].get("voice")
    text, spoken = rows["9201"]
    assert spoken["voice"] and spoken["language"] == "zh_Hans" and spoken["cache"]
    assert "今晚寒潮大风" in spoken["text"]
    assert "\n1. 我很安全.\n2. 我需要帮助." in spoken["text"]
    assert text["buttons"] == [["我很安全", f"alert:{alert_id}:safe"],
                               ["我需要帮助", f"alert:{alert_id}:help"]]


def test_killed_while_sending_an_alert_continue_delivers_the_rest_once(db, env, tmp_path):
    """A real `linli alerts send` to 30 Telegram residents at 2 a second, killed with SIGKILL
    while a message is on its way; `linli alerts continue` sends the rest, nobody twice."""
    import signal
    import subprocess
    import sys
    import time

    from tests.fake_bot_api import FakeBotAPI

    inside = [7100 + i for i in range(30)]
    with db.session() as session:
        for i, chat in enumerate([*inside, 7200, 7201]):
            session.add(Resident(channel="telegram", channel_user_id=str(chat), slots={},
                                 offered=[], language=("zh_Hans", "mn", "ug", "bo")[i % 4],
                                 flow="menu", step="main",
                                 building="5号楼" if chat >= 7200 else f"{1 + i % 4}号楼"))
    fake = FakeBotAPI().start()
    telegram = {**env, "LINLI_TELEGRAM_TOKEN": fake.token, "LINLI_TELEGRAM_BASE_URL": fake.root}
    path = alert_file(tmp_path, target={"grids": ["east"]})
    command = [sys.executable, "-m", "bot.cli", "alerts", "send", str(path), "--rate", "2"]
    try:
        push = subprocess.Popen(command, cwd=PROJECT_ROOT, env=telegram, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(fake.sent) < 8:
            assert time.monotonic() < deadline and push.poll() is None, push.stderr.read()
            time.sleep(0.05)
        fake.fail_next("sendMessage", delay=3)  # held: the kill lands while it is on its way
        calls = len([c for c in fake.calls if c[0] == "sendMessage"])
        while len([c for c in fake.calls if c[0] == "sendMessage"]) <= calls:
            time.sleep(0.01)
        push.send_signal(signal.SIGKILL)
        push.wait(10)
        with db.session() as session:
            statuses = Counter(session.execute(select(OutboxMessage.status)).scalars())
        assert statuses["sending"] == 1 and 8 <= statuses["sent"] < 30

        time.sleep(3.5)  # the held request reaches the fake Telegram after all
        second = run_cli(telegram, "alerts", "continue", "1", "--rate", "10")
        assert second.returncode == 0, second.stderr
        assert "30 resident(s) in its area, 0 newly queued" in second.stderr
        got = {chat: len([s for s in fake.sent_to(chat) if s.buttons]) for chat in inside}
        assert set(got.values()) == {1}, got  # every one once, the interrupted one included
        assert not fake.sent_to(7200) and not fake.sent_to(7201)
        assert "alert 1 on telegram: sent 29, failed 0, pending 0, unconfirmed 1" \
            in second.stdout
    finally:
        if push.poll() is None:
            push.kill()
        fake.stop()


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
def test_the_alert_page_follows_the_answers_in_the_browser(config, db, assistant,
                                                           browser):  # noqa: F811 (fixture)
    """Chromium: a staff member writes and sends an alert from the form; as a resident answers
    "I need help", the grid's count and the check list change without a reload."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.console_helpers import add_staff, console
    from tests.test_console_browser import log_in, screenshot, served

    chats = onboard(assistant, PEOPLE[:1] + PEOPLE[4:5])
    add_staff(db, "zhang", "staff", language="zh_Hans")
    app = console(config, db)

    def count(key: str) -> str:
        return browser.find_element(
            By.CSS_SELECTOR, f'#answers tr[data-grid="east"] td[data-count="{key}"]').text

    with served(app) as base:
        log_in(browser, base, "zhang")
        browser.get(f"{base}/alerts/new")
        browser.find_element(By.CSS_SELECTOR, 'input[name="target"][value="area"]').click()
        browser.find_element(By.NAME, "grid_east").click()
        browser.find_element(By.NAME, "title_zh_Hans").send_keys("停水通知")
        browser.find_element(By.NAME, "body_zh_Hans").send_keys("今天下午东区停水。")
        browser.find_element(By.CSS_SELECTOR, 'form.compose button[type="submit"]').click()
        WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "alert-status"))
        assert count("no_answer") == "1" and count("help") == "0"
        assert "没有需要查看的居民" in browser.page_source
        chats["e1"].send("2")  # the alert is shown
        chats["e1"].send("2")  # "I need help"
        WebDriverWait(browser, 10).until(lambda d: count("help") == "1")
        assert count("no_answer") == "0"
        row = browser.find_element(By.CSS_SELECTOR, "#checks tbody tr").text
        assert "东区网格" in row and "3" in row and "求助" in row
        screenshot(browser, "alert-check-list")
    assert recipients(db) == {"e1": 1}
