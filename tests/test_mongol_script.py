"""Traditional Mongolian script (mn_Mong), added as data only (issue 17): recognised from a first
message, in the picker, a report by numbers and by free text, staff news and the rating in it,
a one-tap switch with Cyrillic Mongolian, and a vertical web chat page with its own font."""

from __future__ import annotations

import re

import pytest

from bot.services import requests as service
from tests.conftest import LANGUAGES, Chat, TerminalSession
from tests.console_helpers import served
from tests.test_webchat import (  # the web chat's fixtures and helpers
    Visitor,
    app,  # noqa: F401  (a fixture)
    chat_screenshot,
    chromium,  # noqa: F401  (a fixture)
    phone,
    press,
    web,  # noqa: F401  (a fixture)
)

HELLO = "ᠰᠠᠶᠢᠨ ᠪᠠᠶᠢᠨ᠎ᠠ ᠤᠤ"  # "hello", with the vowel separator before its final a
MONGOLIAN_LETTER = re.compile(r"[\u1820-\u18af]")


def choose(resident: Chat, payload: str) -> None:
    """Types the number of the offered choice with this payload, as a senior would."""
    resident.send(str(resident.payloads.index(payload) + 1))


def test_a_first_message_in_traditional_script_is_answered_in_it(chat):
    resident = chat("first-mong")
    replies = resident.send(HELLO)
    assert [r.language for r in replies] == ["mn_Mong"]
    config = resident.assistant.config
    # The greeting names the community in traditional script, and says nothing in Cyrillic.
    assert config.community_names["mn_Mong"] in resident.text
    assert not re.search(r"[\u0400-\u04ff]", resident.text)
    assert resident.payloads == ["lang:mn_Mong"] + [
        f"lang:{lang}" for lang in LANGUAGES if lang != "mn_Mong"]
    resident.send("1")  # one tap confirms it
    assert resident.state()[4] == "mn_Mong"
    # the building question (offered once, beside the menu) is in traditional script too
    assert resident.state()[:2] == ("onboarding", "building")
    question = resident.t("Which building do you live in? Type it, for example: building 5. Or "
                          "choose a number below; you can set it later under Settings.")
    assert question in resident.text and MONGOLIAN_LETTER.search(question)
    resident.press_payload("building:skip")
    assert resident.state()[:2] == ("menu", "main")
    assert MONGOLIAN_LETTER.search(resident.text)


def test_the_picker_shows_traditional_mongolian_in_its_own_script(chat):
    resident = chat("picker-mong")
    resident.send("/start")
    labels = {b.payload: b.label for b in resident.buttons}
    assert labels["lang:mn_Mong"] == "ᠮᠣᠩᠭᠣᠯ"
    assert labels["lang:mn"] == "Монгол"
    assert "ᠬᠡᠯᠡ\u202fᠪᠡᠨ ᠰᠣᠩᠭᠣᠭᠠᠷᠠᠢ᠃" in resident.text  # "Please choose your language."


def test_a_cyrillic_writer_is_offered_cyrillic_and_each_switches_to_the_other_in_one_tap(chat):
    cyrillic = chat("cyr")
    cyrillic.send("Сайн байна уу")
    assert cyrillic.payloads[0] == "lang:mn" and "lang:mn_Mong" in cyrillic.payloads
    cyrillic.press_payload("lang:mn_Mong")  # one tap to traditional script
    assert cyrillic.state()[4] == "mn_Mong"

    traditional = chat("trad")
    traditional.send(HELLO)
    assert traditional.payloads[0] == "lang:mn_Mong" and "lang:mn" in traditional.payloads
    traditional.press_payload("lang:mn")  # one tap to Cyrillic
    assert traditional.state()[4] == "mn"
    assert "Сайн байна уу" not in traditional.text and re.search(r"[\u0400-\u04ff]",
                                                                    traditional.text)


def test_a_full_report_by_numbers_then_the_status_change_and_the_rating_in_traditional_script(
        chat, db, config):
    resident = chat("numbers-mong")
    resident.send("/start")
    choose(resident, "lang:mn_Mong")
    if resident.state()[:2] == ("onboarding", "voice"):
        choose(resident, "voice:off")
    # the building, typed as the catalog's example writes it, is found with its grid's name
    assert resident.state()[:2] == ("onboarding", "building")
    resident.send("7 ᠳᠤᠭᠠᠷ ᠪᠠᠢᠱᠢᠩ")
    west = config.grid("west").names["mn_Mong"]
    assert resident.t("It is in {grid}.", grid=west) in resident.text
    assert resident.state()[:2] == ("menu", "main")
    choose(resident, "menu:report")
    choose(resident, "cat:facility_repair")
    problem = config.category("facility_repair").common_problems[0]["mn_Mong"]
    # the common problems, numbered, in traditional script
    assert problem in [b.label for b in resident.buttons]
    resident.send(str([b.label for b in resident.buttons].index(problem) + 1))
    resident.send("7 ᠳᠤᠭᠠᠷ ᠪᠠᠢᠱᠢᠩ")
    assert resident.state()[:2] == ("report", "confirm")
    assert resident.t("Please check your request:\nCategory: {category}\nProblem: {description}"
                      "\nPlace: {place}", category=config.category("facility_repair")
                      .names["mn_Mong"], description=problem, place="7 ᠳᠤᠭᠠᠷ ᠪᠠᠢᠱᠢᠩ") \
        in resident.text
    choose(resident, "confirm:submit")
    tracking_number = re.findall(r"R-\d{6}", resident.text)[0]
    department = config.department("property_office").names["mn_Mong"]
    assert department in resident.text and MONGOLIAN_LETTER.search(resident.text)
    assert "Thank you" not in resident.text

    with db.session() as session:
        for status in ("accepted", "in_progress", "resolved"):
            service.change_status(session, tracking_number, status, actor="staff")
    resident.send("/menu")
    resolved = resident.t("Your request {tracking_number} has been resolved.",
                          tracking_number=tracking_number)
    assert resolved in resident.text and MONGOLIAN_LETTER.search(resolved)
    assert resident.t("Your request {tracking_number} has been accepted by {department}.",
                      tracking_number=tracking_number, department=department) in resident.text
    assert resident.state()[:2] == ("rating", "score")
    resident.send("5")
    thanks = resident.t("Thank you for your rating. Request {tracking_number} is now closed.",
                        tracking_number=tracking_number)
    assert thanks in resident.text and thanks.startswith("ᠦᠨᠡᠯᠡᠯ")
    with db.session() as session:
        request = service.find(session, tracking_number)
        assert (request.status, request.rating, request.language) == ("closed", 5, "mn_Mong")
        assert request.grid_id == "west"


def test_dates_in_traditional_script_have_western_digits_and_no_cyrillic(config):
    from datetime import datetime

    from bot.i18n import Catalogs

    t = Catalogs(config).translator("mn_Mong")
    assert t.date(datetime(2026, 3, 5, 1, 0)) == "2026.03.05"
    assert t.ngettext("{option}: {count} vote ({percent})", "{option}: {count} votes ({percent})",
                      2, option="ᠲᠡᠢᠮᠦ", percent="50%").startswith("ᠲᠡᠢᠮᠦ: 2 ᠰᠠᠨᠠᠯ")


# --- free text, through the real NLU model ---------------------------------------------------
@pytest.mark.parametrize("text,category", [
    ("ᠮᠠᠨᠠᠢ ᠪᠠᠢᠱᠢᠩ ᠤᠨ ᠯᠢᠹᠲ ᠡᠪᠳᠡᠷᠡᠵᠡᠢ᠂ ᠡᠬᠡ ᠮᠢᠨᠤ ᠪᠠᠭᠤᠵᠤ ᠴᠢᠳᠠᠬᠤ ᠦᠭᠡᠢ", "facility_repair"),
    # the same words typed without the vowel separator or the suffix space, as many keyboards do
    ("ᠮᠠᠨᠠᠢ ᠪᠠᠢᠱᠢᠩᠤᠨ ᠯᠢᠹᠲ ᠡᠪᠳᠡᠷᠡᠵᠡᠢ", "facility_repair"),
])
def test_a_report_in_free_text_in_traditional_script(nlu_assistant, db, text, category):
    resident = Chat(nlu_assistant, f"free-mong-{len(text)}")
    resident.onboard("mn_Mong")
    answer = TerminalSession(nlu_assistant, resident.user_id).send(text)
    flow, step, slots, _, _ = resident.state()
    assert (flow, step) == ("report", "location"), answer
    assert slots["category"] == category
    assert slots["description"] == text
    resident.send("3 ᠳᠤᠭᠠᠷ ᠪᠠᠢᠱᠢᠩ")
    resident.press_payload("confirm:submit")
    tracking_number = re.findall(r"R-\d{6}", resident.text)[0]
    with db.session() as session:
        request = service.find(session, tracking_number)
        assert (request.category_id, request.language) == (category, "mn_Mong")
        assert request.description == text


# --- the web chat: vertical, with its own font -----------------------------------------------


def test_the_web_chat_marks_traditional_mongolian_messages_vertical(app):  # noqa: F811
    visitor = Visitor(app)
    visitor.open("/chat?lang=mn_Mong")
    visitor.new()
    messages = visitor.press("lang:mn_Mong")
    assert messages and all(m["vertical"] and m["lang"] == "mn-Mong" for m in messages)
    page = visitor.open().text
    assert '<html lang="mn-Mong" dir="ltr" class="vertical-page">' in page
    assert 'class="msg bot vertical"' in page

    english = Visitor(app, ip="10.0.0.9")
    english.open("/chat?lang=en")
    english.new()
    shown = english.press("lang:en")
    assert shown and not any(m["vertical"] for m in shown)
    assert "vertical-page" not in english.open().text


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
@pytest.mark.slow_e2e
def test_browser_traditional_mongolian_is_vertical_with_its_web_font_and_phone_sized_buttons(
        config, db, web, app, chromium):  # noqa: F811  (fixtures)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium
    phone(browser)
    with served(app, web) as base:
        browser.get(base + "/chat?lang=mn_Mong")
        press(browser, "lang:mn_Mong")
        if browser.find_elements(By.CSS_SELECTOR, 'button[value="voice:off"]'):
            press(browser, "voice:off")
        browser.refresh()  # the page itself in traditional script
        WebDriverWait(browser, 10).until(ready.presence_of_element_located(
            (By.CSS_SELECTOR, 'button[value="menu:report"]')))
        last = browser.find_element(By.CSS_SELECTOR, "#messages > li.bot:last-child")
        style = "return getComputedStyle(arguments[0]).writingMode;"
        assert browser.execute_script(style, last.find_element(By.CSS_SELECTOR, ".text")) \
            == "vertical-lr"
        buttons = last.find_elements(By.CSS_SELECTOR, "button.choice")
        assert buttons and all(browser.execute_script(style, b) == "vertical-lr"
                               for b in buttons)
        # Buttons stay usable on a 412 px wide phone: each at least 48 px both ways, none wider
        # than the screen, and the page does not scroll sideways.
        for button in buttons:
            size = button.rect
            assert size["width"] >= 48 and size["height"] >= 48, size
            assert size["x"] >= 0 and size["x"] + size["width"] <= 412, size
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;")
        # The script is drawn by the served web font, not a system fallback.
        WebDriverWait(browser, 15).until(lambda d: d.execute_script(
            "return [...document.fonts].some(f => f.family.replace(/\"/g, '') === "
            "'Linli Mongolian' && f.status === 'loaded');"))
        fetched = browser.execute_script(
            "return performance.getEntriesByType('resource').map(r => r.name);")
        assert any(name.endswith("/fonts/mongolian.woff2") for name in fetched), fetched
        assert browser.execute_script(
            "return getComputedStyle(arguments[0]).fontFamily;", last).startswith(
            '"Linli Mongolian"')
        chat_screenshot(browser, "mn_Mong-vertical")
