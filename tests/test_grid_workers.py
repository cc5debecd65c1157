"""Grid workers (网格员): the building offered at onboarding, "my grid" in the console, urgent
requests pushed to a linked Telegram chat once, and 吹哨报到 escalation counted on the dashboard."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.console.models import StaffLinkCode
from bot.models import Escalation, OutboxMessage, Request, Resident, utcnow
from bot.services import grids as grid_service
from tests.conftest import Chat
from tests.console_helpers import add_staff, console, logged_in
from tests.test_console_browser import browser  # noqa: F401  (the Chromium fixture)

WORKER_CHAT = 7770001


def building_of(db, user_id: str) -> str | None:
    with db.session() as session:
        return session.execute(select(Resident.building).where(
            Resident.channel_user_id == user_id)).scalar_one()


def request_row(db, number: str) -> Request:
    with db.session() as session:
        row = session.execute(select(Request).where(
            Request.tracking_number == number)).scalar_one()
        session.expunge_all()
        return row


def section(page: str, section_id: str) -> str:
    return page.split(f'id="{section_id}"')[1].split("</section>")[0]


def new_resident(assistant, user_id: str, language: str) -> Chat:
    """/start, a language, no voice: at the building offer."""
    resident = Chat(assistant, user_id)
    resident.send("/start")
    resident.press_payload(f"lang:{language}")
    if resident.state()[:2] == ("onboarding", "voice"):
        resident.press_payload("voice:off")
    assert resident.state()[:2] == ("onboarding", "building")
    return resident


# --- onboarding and settings ------------------------------------------------------------------

@pytest.mark.parametrize("language,typed,grid", [
    ("zh_Hans", "5号楼", "西区网格"),
    ("en", "building 5", "West grid"),
    ("mn", "5-р байр", "Баруун хэсэг"),
    ("ug", "5-بىنا", "غەربىي رايون"),
    ("zh_Hant", "我住3號樓", "東區網格"),
])
def test_onboarding_offers_the_building_and_free_text_names_it(assistant, db, language, typed,
                                                               grid):
    resident = new_resident(assistant, f"home-{language}", language)
    # Offered beside the main menu's choices, with a skip button of its own.
    assert resident.payloads[:2] == ["menu:report", "menu:requests"]
    assert resident.payloads[-1] == "building:skip"
    resident.send(typed)
    assert resident.t("It is in {grid}.", grid=grid) in resident.text
    assert resident.state()[:2] == ("menu", "main")
    assert building_of(db, f"home-{language}") in (typed, "3號樓")


def test_the_building_offer_is_skipped_by_its_button_by_number_or_by_a_menu_choice(assistant,
                                                                                  db):
    by_button = new_resident(assistant, "skip-button", "en")
    by_button.press_payload("building:skip")
    assert "You can set your building any time under Settings." in by_button.text
    assert by_button.state()[:2] == ("menu", "main")

    by_number = new_resident(assistant, "skip-number", "zh_Hans")
    skip = by_number.payloads.index("building:skip") + 1
    by_number.send(str(skip))  # a resident who only types numbers
    assert by_number.t("You can set your building any time under Settings.") in by_number.text
    assert by_number.state()[:2] == ("menu", "main")
    by_number.send("/menu")  # offered once: never again
    assert "building:skip" not in by_number.payloads

    by_menu = new_resident(assistant, "skip-menu", "en")
    by_menu.send("1")  # the menu's first choice, where it always is
    assert by_menu.state()[:2] == ("report", "category")
    for user in ("skip-button", "skip-number", "skip-menu"):
        assert building_of(db, user) is None


def test_an_unlisted_building_is_kept_as_typed_with_a_plain_confirmation(assistant, db):
    resident = new_resident(assistant, "unlisted", "zh_Hans")
    resident.send("12号楼")
    assert resident.t("It is not on the community's list of buildings, so it is kept as you "
                      "typed it.") in resident.text
    assert building_of(db, "unlisted") == "12号楼"


def test_a_problem_typed_at_the_building_offer_is_acted_on_and_a_building_is_kept(
        config, db, nlu_assistant):
    resident = new_resident(nlu_assistant, "reporter", "zh_Hans")
    resident.send("3号楼的电梯坏了")  # names a building, but is a report
    assert resident.state()[:2] == ("report", "location")
    assert building_of(db, "reporter") is None
    neighbour = new_resident(nlu_assistant, "neighbour", "zh_Hans")
    neighbour.send("5号楼")
    assert neighbour.state()[:2] == ("menu", "main") and building_of(db, "neighbour") == "5号楼"


def test_settings_change_the_building(chat, db):
    resident = chat("mover")
    resident.onboard("en")
    resident.press_payload("menu:settings")
    resident.press_payload("set:building")
    resident.send("Building 2, entrance 1")
    assert "It is in East grid." in resident.text
    assert building_of(db, "mover") == "Building 2"
    resident.press_payload("set:building")
    resident.send("Riverside cottages")
    assert "not on the community's list of buildings" in resident.text
    assert building_of(db, "mover") == "Riverside cottages"
    assert resident.state()[:2] == ("settings", "main")


# --- my grid ----------------------------------------------------------------------------------

def test_a_request_from_building_5_is_on_zhaos_grid_page_and_not_on_lius(config, db, assistant):
    for name in ("zhao", "liu"):
        add_staff(db, name, "staff")
    add_staff(db, "boss", "admin")
    resident = Chat(assistant, "west-resident")
    resident.onboard("zh_Hans")
    number = resident.file_request("facility_repair", "电梯坏了", "5号楼2单元")
    urgent = resident.file_request("safety_hazard", "消防通道被堵", "5号楼楼下")
    # A resident of building 6 asks for staff: on the west grid's list of people waiting.
    asking = new_resident(assistant, "asking", "zh_Hans")
    asking.send("6号楼")
    asking.press_payload("menu:staff")
    with db.session() as session:
        asking_id = asking.resident(session).id

    app = console(config, db)
    zhao, liu, boss = (logged_in(app, name) for name in ("zhao", "liu", "boss"))
    page = zhao.get("/grid").text
    assert number in page and urgent in page and f"/handover/{asking_id}" in page
    assert f'href="/requests/{number}"' in page  # each request links to its page to act on
    assert re.search(rf"{urgent}</a> <span class=\"badge\">Urgent", page)
    other = liu.get("/grid").text
    assert "East grid" in other
    assert number not in other and urgent not in other and f"/handover/{asking_id}" not in other
    # The live box: new urgent requests of the grid, as JSON.
    live = zhao.get("/grid/urgent.json?after=0").json()
    assert [item["tracking_number"] for item in live["urgent"]] == [urgent]
    assert liu.get("/grid/urgent.json?after=0").json()["urgent"] == []
    newest = live["urgent"][0]["id"]
    assert zhao.get(f"/grid/urgent.json?after={newest}").json()["urgent"] == []
    # An admin sees every grid and picks one.
    assert 'id="grid-choice"' in boss.get("/grid").text
    assert number in boss.get("/grid?grid=west").text
    assert number not in boss.get("/grid?grid=east").text


def test_an_escalation_restarts_the_time_limit_shows_in_the_history_and_is_counted(
        config, db, assistant):
    for name in ("zhao", "liu"):
        add_staff(db, name, "staff")
    add_staff(db, "boss", "admin")
    resident = Chat(assistant, "escalated")
    resident.onboard("zh_Hans")
    number = resident.file_request("facility_repair", "电梯坏了三天", "5号楼2单元")
    with db.session() as session:  # filed three days ago: long overdue
        session.execute(update(Request).where(Request.tracking_number == number).values(
            created_at=utcnow() - timedelta(days=3), due_at=utcnow() - timedelta(days=1)))
    app = console(config, db)
    zhao, liu, boss = (logged_in(app, name) for name in ("zhao", "liu", "boss"))
    assert number in section(zhao.get("/grid").text, "overdue-section")
    assert 'id="escalate-form"' not in liu.get(f"/requests/{number}").text
    refused = liu.post(f"/requests/{number}/escalate",
                       {"department": "community_police", "note": "不是我的网格"})
    assert refused.status_code == 403
    assert 'id="escalate-form"' in zhao.get(f"/requests/{number}").text
    before = utcnow()
    done = zhao.post(f"/requests/{number}/escalate",
                     {"department": "community_police", "note": "电梯困人风险，请警务室协调"})
    assert done.status_code == 303
    row = request_row(db, number)
    assert row.department_id == "community_police" and row.status == "submitted"
    limit = timedelta(hours=config.category("facility_repair").time_limit_hours)
    assert before + limit <= row.due_at <= utcnow() + limit
    page = zhao.get(f"/requests/{number}").text
    history = page.split('id="history"')[1]
    assert "已转交部门办理：社区警务室。" in history  # in the resident's language
    assert "电梯困人风险，请警务室协调" in page.split('id="escalations"')[1]
    assert number not in section(zhao.get("/grid").text, "overdue-section")
    # The resident sees which department has it; the staff note stays with staff.
    resident.send("/myrequests")
    resident.press(number)
    assert "社区警务室" in resident.text and "请警务室协调" not in resident.text
    # An escalation needs a note; a finished request cannot be escalated.
    assert zhao.post(f"/requests/{number}/escalate",
                     {"department": "property_office", "note": " "}).status_code == 303
    assert request_row(db, number).department_id == "community_police"

    dashboard = boss.get("/").text
    assert re.search(r'id="escalation-count">1<', dashboard)
    assert "0 of 1" in dashboard.split('id="escalation-in-time"')[1][:200]
    boss.post(f"/requests/{number}/status", {"status": "resolved", "note": "已修好"})
    dashboard = boss.get("/").text
    assert "100%" in dashboard.split('id="escalation-in-time"')[1][:200]
    with db.session() as session:
        assert len(session.execute(select(Escalation)).scalars().all()) == 1


# --- urgent requests on Telegram ----------------------------------------------------------------

def link_code(config, db, name: str) -> str:
    app = console(config, db)
    worker = logged_in(app, name)
    page = worker.post("/grid/link-code").text
    return re.search(r'id="link-code">/link (\d{4} \d{4})<', page).group(1)


def test_a_linked_grid_worker_gets_each_urgent_request_of_their_grid_once(config, db, fake,
                                                                         assistant):
    from tests.test_telegram import Bot, Resident_, texts

    add_staff(db, "zhao", "staff")
    add_staff(db, "liu", "staff")
    code = link_code(config, db, "zhao")
    with db.session() as session:  # only a digest of the code is kept
        stored = session.execute(select(StaffLinkCode.code_hash)).scalar_one()
    assert code.replace(" ", "") not in stored
    resident = Chat(assistant, "urgent-resident")
    resident.onboard("zh_Hans")

    def pushed() -> list[str]:
        return [s.text for s in fake.sent_to(WORKER_CHAT)
                if s.text and "R-" in s.text]

    async def scenario() -> tuple[str, str, str]:
        worker = Resident_(fake, db, chat_id=WORKER_CHAT)
        async with Bot(config, db, fake):
            sent = await worker.says("/link 0000 0000")
            assert "这个验证码无效" in texts(sent)
            sent = await worker.says(f"/link {code}")
            assert "此聊天已绑定工作人员账号：zhao" in texts(sent)
            sent = await worker.says(f"/link {code}")  # used once only
            assert "这个验证码无效" in texts(sent)
            # The resident files on another channel, in its own loop, as the terminal does.
            file = resident.file_request
            quiet = await asyncio.to_thread(file, "facility_repair", "楼道灯不亮", "5号楼")
            east = await asyncio.to_thread(file, "safety_hazard", "电线露在外面", "2号楼")
            urgent = await asyncio.to_thread(file, "safety_hazard", "电线露在外面", "5号楼1单元")
            deadline = time.monotonic() + 20
            while not pushed() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # several sending rounds: nothing more arrives
        async with Bot(config, db, fake):  # a restart sends nothing again
            await asyncio.sleep(1.0)
        return quiet, east, urgent

    quiet, east, urgent = asyncio.run(scenario())
    messages = pushed()
    assert len(messages) == 1, messages
    assert urgent in messages[0] and "紧急诉求" in messages[0] and "西区网格" in messages[0]
    assert quiet not in messages[0] and east not in messages[0]
    with db.session() as session:
        rows = session.execute(select(OutboxMessage).where(
            OutboxMessage.kind == grid_service.URGENT_KIND)).scalars().all()
        assert [(r.chat_id, r.status) for r in rows] == [(str(WORKER_CHAT), "sent")]
        # The /link turn is logged without the code.
        from bot.models import Turn
        logged = session.execute(select(Turn.text).where(Turn.kind == "command")).scalars().all()
        assert not any(code.replace(" ", "") in (text or "").replace(" ", "") for text in logged)
    # The grid page says the account is linked.
    assert 'id="linked"' in logged_in(console(config, db), "zhao").get("/grid").text


def test_a_link_code_expires_after_ten_minutes(config, db, assistant):
    add_staff(db, "zhao", "staff")
    code = link_code(config, db, "zhao")
    with db.session() as session:
        session.execute(update(StaffLinkCode).values(
            expires_at=utcnow() - timedelta(seconds=1)))
    worker = Chat(assistant, "late-worker", channel="telegram")
    worker.send(f"/link {code}")
    assert "这个验证码无效" in worker.text


def test_the_demo_seeds_the_grid_workers_whose_pages_show_their_grids(config, db, assistant):
    from bot.demo import grid_worker_passwords, seed, seed_staff

    seed(db, config)
    admin, _ = seed_staff(db, config.data_dir)
    passwords = dict(grid_worker_passwords(config.data_dir))
    assert set(passwords) == {"liu", "zhao"} and all(passwords.values())
    assert seed_staff(db, config.data_dir)[0] == admin  # a second seed keeps the accounts
    assert dict(grid_worker_passwords(config.data_dir)) == passwords
    app = console(config, db)
    with db.session() as session:
        west = session.execute(select(Request.tracking_number).where(
            Request.grid_id == "west")).scalars().all()
    for name, grid in (("zhao", "西区网格"), ("liu", "东区网格")):
        client = logged_in_with(app, name, passwords[name])
        page = client.get("/grid").text
        assert grid in page
        assert any(number in page for number in west) == (name == "zhao")


def logged_in_with(app, name: str, password: str):
    from tests.console_helpers import StaffClient

    client = StaffClient(app)
    assert client.login(name, password).status_code == 303
    return client


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
def test_in_chromium_an_urgent_request_appears_live_and_is_escalated_from_its_page(
        config, db, assistant, browser):  # noqa: F811  (the imported fixture)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.test_console_browser import log_in, screenshot, served

    add_staff(db, "zhao", "staff")
    resident = Chat(assistant, "live-resident")
    resident.onboard("zh_Hans")
    with served(console(config, db)) as base:
        log_in(browser, base, "zhao")
        browser.get(base + "/grid")
        assert browser.find_element(By.ID, "grid-name").text == "West grid"
        number = resident.file_request("elderly_help", "需要人陪着看病", "6号楼")
        live = WebDriverWait(browser, 20).until(ready.text_to_be_present_in_element(
            (By.ID, "urgent-new"), number))
        assert live and browser.find_element(By.ID, "urgent-reload").is_displayed()
        screenshot(browser, "grid-urgent")
        browser.find_element(By.LINK_TEXT, number).click()
        Select(browser.find_element(By.ID, "escalate-department")).select_by_value(
            "residents_committee")
        browser.find_element(By.ID, "escalate-note").send_keys("独居老人，请居委会今天上门")
        browser.find_element(By.ID, "escalate").click()
        flash = WebDriverWait(browser, 10).until(
            ready.presence_of_element_located((By.CLASS_NAME, "flash")))
        assert flash.text == "Escalated. The department's time limit starts now."
        assert "独居老人" in browser.find_element(By.ID, "escalations").text
        assert "Residents' committee" in browser.find_element(By.ID, "department").text
