"""The staff console in real headless Chromium (Debian's chromium and chromedriver), served by
uvicorn on a free port, with the resident on the real terminal channel."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from bot.config import PROJECT_ROOT
from bot.core import Assistant
from bot.models import Turn
from bot.services import requests as service
from tests.conftest import Chat, TerminalSession
from tests.console_helpers import PASSWORD, UnsureUnderstander, add_staff, console, served

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run")
ARTIFACTS = PROJECT_ROOT / "var" / "test-artifacts"

# Chromium runs on SQLite only: the HTTP tests cover every page on PostgreSQL too.
pytestmark = pytest.mark.parametrize("env", ["sqlite"], indirect=True)


@pytest.fixture
def browser(tmp_path):
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument("--window-size=1280,1000")
    options.add_argument("--lang=zh-CN")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def log_in(driver, base: str, name: str) -> None:
    driver.get(base + "/")
    assert "/login" in driver.current_url  # sent to the login page first
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, 10).until(ready.presence_of_element_located((By.ID, "over-time")))


def test_staff_change_a_status_with_a_note_and_the_resident_is_told(config, db, assistant,
                                                                    browser):
    add_staff(db, "wang.li", "staff", language="zh_Hans")
    resident = Chat(assistant, "lin")
    resident.onboard("zh_Hans")
    number = resident.file_request("facility_repair", "5号楼电梯坏了，我妈妈80岁了下不了楼",
                                   "5号楼2单元")

    with served(console(config, db)) as base:
        log_in(browser, base, "wang.li")
        screenshot(browser, "dashboard")
        browser.find_element(By.LINK_TEXT, "诉求").click()
        browser.find_element(By.LINK_TEXT, number).click()
        assert "5号楼电梯坏了" in browser.find_element(By.ID, "description").text
        Select(browser.find_element(By.ID, "new-status")).select_by_value("accepted")
        browser.find_element(By.ID, "note").send_keys("电工今天下午三点到")
        browser.find_element(By.ID, "change-status").click()
        flash = WebDriverWait(browser, 10).until(
            ready.presence_of_element_located((By.CLASS_NAME, "flash")))
        assert flash.text == "状态已更改。"
        assert "电工今天下午三点到" in browser.find_element(By.ID, "history").text
        screenshot(browser, "request-accepted")
        browser.set_window_size(390, 844)  # a phone
        browser.refresh()
        screenshot(browser, "request-phone")

    with db.session() as session:
        assert service.find(session, number).status == "accepted"
    told = TerminalSession(assistant, "lin").send("/menu")
    department = config.department("property_office").names["zh_Hans"]
    assert resident.t("Your request {tracking_number} has been accepted by {department}.",
                      tracking_number=number, department=department) in told
    assert resident.t("Note from staff: {note}", note="电工今天下午三点到") in told


def test_staff_label_an_inbox_turn_and_export_it(config, db, browser, tmp_path, monkeypatch):
    nlu_dir = tmp_path / "nlu"
    shutil.copytree(PROJECT_ROOT / "nlu", nlu_dir, ignore=shutil.ignore_patterns("tests", "*.py"))
    monkeypatch.setenv("LINLI_NLU_DIR", str(nlu_dir))
    add_staff(db, "sam", "staff", language="en")
    assistant = Assistant(config, db, understander=UnsureUnderstander())
    resident = Chat(assistant, "anna")
    resident.onboard("en")
    resident.send("the elevator in block 5 makes scary noises")
    with db.session() as session:
        turn_id = session.execute(select(Turn.id).where(
            Turn.text == "the elevator in block 5 makes scary noises")).scalar_one()

    with served(console(config, db)) as base:
        log_in(browser, base, "sam")
        browser.get(base + "/nlu")
        item = browser.find_element(By.ID, f"turn-{turn_id}")
        assert "nlu_fallback 0.31" in item.text
        Select(item.find_element(By.CLASS_NAME, "intent-choice")).select_by_value(
            "report_problem")
        example = item.find_element(By.CLASS_NAME, "example")
        example.clear()
        example.send_keys("the [elevator](category) in block 5 makes scary noises")
        screenshot(browser, "nlu-inbox")
        item.find_element(By.CLASS_NAME, "label-button").click()
        waiting = WebDriverWait(browser, 10).until(
            ready.presence_of_element_located((By.ID, "waiting")))
        assert "report_problem" in waiting.text
        browser.find_element(By.ID, "export").click()
        diff = WebDriverWait(browser, 10).until(
            ready.presence_of_element_located((By.ID, "diff")))
        assert "+    - the [elevator](category) in block 5 makes scary noises" in diff.text
        screenshot(browser, "nlu-export")

    data = yaml.safe_load((nlu_dir / "en.yml").read_text(encoding="utf-8"))
    examples = next(item["examples"] for item in data["nlu"]
                    if item.get("intent") == "report_problem")
    assert "- the [elevator](category) in block 5 makes scary noises\n" in examples
