"""Services nearby (the 15-minute life circle): config.yml's services, the find_service intent
in six languages, the nearest few with opening hours, and the map pin on Telegram, the web chat
and the terminal; through the real core, NLU and both databases."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

import pytest
import yaml
from sqlalchemy import select

from bot.config import ConfigError, load_config
from bot.core import Assistant
from bot.i18n import Catalogs
from bot.messages import Understanding, spoken_text
from bot.models import OutboxMessage
from bot.services.directory import find
from bot.wiring import installed_channels
from tests.conftest import Chat, TerminalSession

# Asia/Shanghai is UTC+8; moments are naive UTC, as the flows' clocks give them.
TUESDAY_11 = datetime(2026, 12, 1, 3, 0)  # Tuesday 11:00 local
TUESDAY_22 = datetime(2026, 12, 1, 14, 0)  # Tuesday 22:00 local
WEDNESDAY_11 = datetime(2026, 12, 2, 3, 0)
NEW_YEAR_NOON = datetime(2027, 1, 1, 4, 0)  # a Friday; the east canteen is closed that day
BUILDING_3 = "3号楼"  # east grid: the east canteen is 40 m away, then the north, then the west


def at(assistant: Assistant, moment: datetime) -> None:
    """Sets the services flow's clock, as tests of staff hours set the handover's."""
    assistant.flows["services"].now = lambda: moment


def lives_in(resident: Chat, building: str) -> None:
    with resident.assistant.db.session() as session:
        resident.resident(session).building = building


def pins(resident: Chat) -> list:
    return [reply.venue for reply in resident.replies if reply.venue is not None]


def name_of(config, service_id: str, language: str) -> str:
    return next(s for s in config.services if s.id == service_id).names[language]


def first_entry(resident: Chat) -> str:
    """The description of the first service listed (the reply before the first pin)."""
    index = next(i for i, reply in enumerate(resident.replies) if reply.venue is not None)
    return resident.replies[index - 1].text


# --- config.yml ----------------------------------------------------------------------------

def test_the_demo_community_has_services_of_every_type_near_its_buildings(config):
    assert {s.type for s in config.services} == {
        "elderly_canteen", "clinic", "pharmacy", "legal_aid", "mediation", "volunteer_team",
        "service_hall"}
    assert {k.id for k in config.service_types} == {s.type for s in config.services}
    near = find(config, "elderly_canteen", TUESDAY_11, point=(39.99190, 116.33480))
    assert [f.service.id for f in near] == ["canteen_east", "canteen_north", "canteen_west"]
    assert 30 < near[0].distance_m < 60
    for service in config.services:  # every service is within a walk of some building
        nearest = min(
            abs(service.latitude - b.latitude) + abs(service.longitude - b.longitude)
            for grid in config.grids for b in grid.buildings)
        assert nearest < 0.01, service.id


def test_opening_hours_know_the_week_and_the_exceptions(config):
    def state(service_id: str, moment: datetime):
        found = next(f for f in find(config, "elderly_canteen" if "canteen" in service_id
                                     else "service_hall", moment, limit=9)
                     if f.service.id == service_id)
        return found.open_until, found.next_opening

    until, _ = state("canteen_east", TUESDAY_11)
    assert until.strftime("%a %H:%M") == "Tue 13:30"
    until, opening = state("canteen_east", TUESDAY_22)
    assert until is None and opening.strftime("%Y-%m-%d %a %H:%M") == "2026-12-02 Wed 11:00"
    # 1 January: closed all day (an exception), open again on Saturday; the north one is open.
    until, opening = state("canteen_east", NEW_YEAR_NOON)
    assert until is None and opening.strftime("%Y-%m-%d %H:%M") == "2027-01-02 11:00"
    assert state("canteen_north", NEW_YEAR_NOON)[0] is not None
    # 31 December: the service hall closes at noon instead of 17:30.
    until, _ = state("service_hall", datetime(2026, 12, 31, 2, 0))
    assert until.strftime("%H:%M") == "12:00"


def with_services(tmp_path, change) -> object:
    raw = yaml.safe_load(load_config().path.read_text(encoding="utf-8"))
    change(raw["services"])
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_config(path)


def _place(section, index=0):
    return section["places"][index]


@pytest.mark.parametrize("change, key", [
    (lambda s: _place(s).update(type="restaurant"), r"services.places\[0\].type"),
    (lambda s: _place(s).pop("lat"), r"services.places\[0\]: needs both lat and lon"),
    (lambda s: _place(s).update(lon=200), r"services.places\[0\].lon"),
    (lambda s: _place(s).update(phone="call me"), r"services.places\[0\].phone"),
    # The default language's names are required; another language's may be left out (below).
    (lambda s: _place(s)["description"].pop("zh_Hans"),
     r"services.places\[0\].description.zh_Hans"),
    (lambda s: _place(s)["name"].pop("zh_Hans"), r"services.places\[0\].name.zh_Hans"),
    (lambda s: s["types"][1]["name"].pop("zh_Hans"), r"services.types\[1\].name.zh_Hans"),
    (lambda s: _place(s)["hours"][1].update({"from": "19:00"}),
     r"services.places\[0\].hours\[1\].to"),
    (lambda s: _place(s)["hours"][0].update(days=["tue", "someday"]),
     r"services.places\[0\].hours\[0\].days\[1\]"),
    (lambda s: _place(s)["exceptions"].append({"date": "2027-02-30", "closed": True}),
     r"services.places\[0\].exceptions\[1\].date"),
    (lambda s: _place(s)["exceptions"].append({"date": "2027-01-01", "closed": True}),
     r"services.places\[0\].exceptions\[1\].date: 2027-01-01 is listed twice"),
    (lambda s: _place(s).update(languages=["fr"]), r"services.places\[0\].languages\[0\]"),
    (lambda s: _place(s).update(website="x"), r"services.places\[0\].website"),
    (lambda s: _place(s, 1).update(id="canteen_east"), r"services.places\[1\].id"),
])
def test_config_errors_in_services_name_the_key(tmp_path, change, key):
    with pytest.raises(ConfigError, match=key):
        with_services(tmp_path, change)


def test_a_service_name_left_out_in_another_language_falls_back_with_a_warning(tmp_path,
                                                                               caplog):
    """Issue 17's rule for every name in config.yml: a language other than the default may
    leave one out; residents see the default language's, and start-up says so once."""
    with caplog.at_level("WARNING", logger="bot.config"):
        config = with_services(tmp_path, lambda s: _place(s)["name"].pop("bo"))
    assert "services.places[0].name has no bo name" in caplog.text
    place = config.services[0]
    assert "bo" not in place.names and place.names["zh_Hans"]


def test_a_community_without_services_still_loads(tmp_path):
    config = with_services(tmp_path, lambda s: None)
    assert config.services
    raw = yaml.safe_load(config.path.read_text(encoding="utf-8"))
    del raw["services"]
    config.path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert load_config(config.path).services == ()


# --- residents asking, in their words ------------------------------------------------------

def test_at_11_on_a_tuesday_the_nearest_canteen_is_listed_as_open(nlu_assistant, config):
    at(nlu_assistant, TUESDAY_11)
    resident = Chat(nlu_assistant, "canteen11")
    resident.onboard("zh_Hans")
    lives_in(resident, BUILDING_3)
    resident.send("附近有老年食堂吗")
    assert resident.state()[:2] == ("services", "shown")
    assert [pin.title for pin in pins(resident)] == [
        name_of(config, s, "zh_Hans") for s in ("canteen_east", "canteen_north", "canteen_west")]
    entry = first_entry(resident)
    assert entry.startswith("东区长者食堂 · 40 米\n")
    assert resident.t("Open now, until {time}.", time="13:30") in entry
    assert "010-6275 1101" in entry and "Монгол" in entry  # phone, languages spoken there
    east = pins(resident)[0]
    assert (east.latitude, east.longitude) == (39.99170, 116.33440)


def test_at_22_on_a_tuesday_it_is_closed_and_says_when_it_opens(nlu_assistant):
    at(nlu_assistant, TUESDAY_22)
    resident = Chat(nlu_assistant, "canteen22")
    resident.onboard("zh_Hans")
    lives_in(resident, BUILDING_3)
    resident.send("附近有老年食堂吗")
    entry = first_entry(resident)
    assert entry.startswith("东区长者食堂 · ")
    t = nlu_assistant.catalogs.translator("zh_Hans")
    assert resident.t("Closed now. Opens {day}, {time}.", day="星期三",
                      time=t.datetime(WEDNESDAY_11)) in entry
    assert "营业到" not in entry


@pytest.mark.parametrize("language, question", [
    # Held-out messages (nlu/tests/<language>.yml): never trained on.
    ("mn", "Манай байрны ойролцоо ахмадуудад зориулсан хоолны газар бий юу"),
    ("bo", "ཉེ་འཁོར་དུ་རྒན་པའི་ཟ་ཁང་ཡོད་དམ།"),
    ("ug", "ياشانغانلار تاماق يەيدىغان ئاشخانا قەيەردە"),
    ("mn_Mong", "ᠣᠶᠢᠷ\u180eᠠ ᠥᠳᠡᠯ ᠨᠠᠰᠤᠲᠠᠨ\u202fᠤ ᠬᠣᠭᠣᠯᠠᠨ\u202fᠤ ᠭᠠᠵᠠᠷ ᠪᠠᠶᠢᠨ\u180eᠠ ᠤᠤ"),  # traditional script
])
def test_the_same_question_in_mongolian_tibetan_and_uyghur(nlu_assistant, config, language,
                                                            question):
    at(nlu_assistant, TUESDAY_11)
    resident = Chat(nlu_assistant, f"canteen-{language}")
    resident.onboard(language)
    lives_in(resident, BUILDING_3)
    resident.send(question)
    assert resident.state()[:2] == ("services", "shown"), resident.text
    assert resident.state()[2]["type"] == "elderly_canteen"
    assert pins(resident)[0].title == name_of(config, "canteen_east", language)
    assert resident.t("Open now, until {time}.", time="13:30").split("13:30")[0] in \
        first_entry(resident)
    assert all(reply.language == language for reply in resident.replies)


def test_a_service_type_without_a_building_asks_nothing_more_on_the_terminal(assistant,
                                                                             config):
    """The terminal has no location button: the services of the type, by name, no distance."""
    at(assistant, TUESDAY_11)
    resident = Chat(assistant, "nobuilding")
    resident.onboard("en")
    resident.press("Services nearby")
    assert resident.payloads[:7] == [f"svc:{kind.id}" for kind in config.service_types]
    resident.press("Pharmacy")
    assert resident.state()[:2] == ("services", "shown")
    assert "in our community" in resident.text
    entry = first_entry(resident)
    assert entry.startswith("Kangning pharmacy\n")  # no distance without a point
    assert "Phone: 010-6275 1130" in entry and "Open now, until 10:00\u202fPM." in entry  # CLDR: narrow space
    resident.press("Other services")
    assert resident.state()[:2] == ("services", "type")


def test_by_name_every_service_is_listed_and_near_a_building_the_nearest_three(tmp_path, db):
    def fourth_canteen(section):
        section["places"].append({**section["places"][0], "id": "canteen_south"})

    config = with_services(tmp_path, fourth_canteen)
    assistant = Assistant(config, db, channels=installed_channels())
    at(assistant, TUESDAY_11)
    resident = Chat(assistant, "byname")
    resident.onboard("en")
    resident.press_payload("menu:services")
    resident.press_payload("svc:elderly_canteen")
    assert len(pins(resident)) == 4
    lives_in(resident, BUILDING_3)
    resident.press_payload("svc:types")
    resident.press_payload("svc:elderly_canteen")
    assert len(pins(resident)) == 3


def test_a_typed_building_number_finds_what_is_nearest_to_it(assistant, config):
    at(assistant, TUESDAY_11)
    resident = Chat(assistant, "typist")
    resident.onboard("zh_Hans")
    resident.press_payload("menu:services")
    resident.press_payload("svc:elderly_canteen")  # the terminal: all by name, east first
    assert pins(resident)[0].title == name_of(config, "canteen_east", "zh_Hans")
    resident.send("我在7号楼")
    assert resident.state()[:2] == ("services", "shown")
    assert pins(resident)[0].title == name_of(config, "canteen_west", "zh_Hans")
    assert resident.replies[0].text == resident.t(
        "{service}, nearest to {place} first:", service="老年食堂", place="7号楼")
    web = Chat(assistant, "webtypist", channel="web")
    web.onboard("en")
    web.press_payload("menu:services")
    web.press_payload("svc:elderly_canteen")
    assert web.state()[:2] == ("services", "where")
    web.send("building 7")
    assert pins(web)[0].title == name_of(config, "canteen_west", "en")


def test_other_words_at_the_list_are_understood_as_anywhere(nlu_assistant, config):
    at(nlu_assistant, TUESDAY_11)
    resident = Chat(nlu_assistant, "another")
    resident.onboard("zh_Hans")
    lives_in(resident, BUILDING_3)
    resident.send("附近有老年食堂吗")
    resident.send("药店在哪儿")
    assert resident.state()[2]["type"] == "pharmacy"
    assert pins(resident)[0].title == name_of(config, "pharmacy_kangning", "zh_Hans")


def test_a_shared_location_finds_the_nearest_where_the_channel_has_the_button(assistant,
                                                                              config):
    at(assistant, TUESDAY_11)
    resident = Chat(assistant, "sharer", channel="web")
    resident.onboard("en")
    resident.press_payload("menu:services")
    resident.press_payload("svc:elderly_canteen")
    assert resident.state()[:2] == ("services", "where")
    assert any(reply.request_location for reply in resident.replies)
    resident.location(39.990123, 116.328456)  # at building 7
    assert pins(resident)[0].title == name_of(config, "canteen_west", "en")
    assert resident.state()[2]["lat"] == 39.99  # kept to about 100 m, no closer
    assert "nearest to you first" in resident.text
    resident.press("Other services")
    resident.press_payload("svc:elderly_canteen")
    resident.press("See them by name")
    assert pins(resident)[0].title == name_of(config, "canteen_east", "en")


def test_the_terminal_shows_a_map_link_and_voice_does_not_read_the_pins(assistant):
    at(assistant, TUESDAY_11)
    resident = Chat(assistant, "mapper")
    resident.onboard("en")
    shown = TerminalSession(assistant, "mapper").send("6")  # the main menu's "Services nearby"
    assert "Canteen for older people" in shown
    shown = TerminalSession(assistant, "mapper").send("1")
    assert "https://www.openstreetmap.org/?mlat=39.99170&mlon=116.33440" in shown
    resident.press_payload("svc:elderly_canteen")
    spoken = spoken_text(resident.replies)
    assert "East canteen for older people" in spoken and "Phone: 010-6275 1101" in spoken
    assert "📍" not in spoken and "openstreetmap" not in spoken


class UnsureOfServices:
    """Stands in for the model: unsure, finding a service its best guess, a report the next,
    and a service type and an elderly-help category named (as "老人飯堂開門沒" can come out)."""

    async def parse(self, text: str, language: str | None) -> Understanding:
        return Understanding(
            "nlu_fallback", 0.42,
            [{"entity": "service_type", "value": "elderly_canteen"},
             {"entity": "category", "value": "elderly_help"}],
            [("find_service", 0.42), ("report_problem", 0.37)])


def test_an_unsure_message_naming_a_service_finds_it_rather_than_filing_a_report(config, db):
    assistant = Assistant(config, db, understander=UnsureOfServices(),
                          channels=installed_channels())
    at(assistant, TUESDAY_11)
    resident = Chat(assistant, "unsure")
    resident.onboard("zh_Hant")
    resident.send("老人飯堂開門沒")
    assert resident.state()[:2] == ("services", "shown")
    assert pins(resident)[0].title == name_of(config, "canteen_east", "zh_Hant")


def test_with_voice_on_the_answer_is_read_aloud_without_the_pins(assistant, db):
    at(assistant, TUESDAY_11)
    resident = Chat(assistant, "listener", channel="web")
    resident.onboard("en", voice=True)
    lives_in(resident, BUILDING_3)
    resident.press_payload("menu:services")
    resident.press_payload("svc:elderly_canteen")
    with db.session() as session:
        spoken = [row.payload for row in session.execute(select(OutboxMessage).where(
            OutboxMessage.chat_id == "listener").order_by(OutboxMessage.id)).scalars()
            if row.payload.get("voice")][-1]
    assert spoken["language"] == "en"
    assert "East canteen for older people · 40 m\n" in spoken["text"]
    assert "Open now, until 1:30\u202fPM." in spoken["text"]
    assert "📍" not in spoken["text"] and "openstreetmap" not in spoken["text"]


# --- channels ------------------------------------------------------------------------------

def test_the_web_chat_shows_a_map_link(config, db):
    from bot.channels.web import WebChannel
    from bot.console.app import create_app
    from tests.test_webchat import Visitor, onboard

    web = WebChannel(config, db, Assistant(config, db, channels=installed_channels()))
    at(web.assistant, TUESDAY_11)
    visitor = Visitor(web.wrap(create_app(config, db)))
    onboard(visitor)
    visitor.press("menu:services")
    visitor.press("svc:clinic")
    visitor.post({"latitude": "39.99190", "longitude": "116.33480"})
    messages = visitor.new()
    maps = [m["map"] for m in messages if m.get("map")]
    assert maps == [("https://www.openstreetmap.org/?mlat=39.99110&mlon=116.33180"
                     "#map=18/39.99110/116.33180")]
    page = visitor.open().text  # and without the page's script
    assert re.search(r'<a class="map" href="https://www.openstreetmap.org/\?mlat=39.99110'
                     r'&amp;mlon=116.33180[^"]*" target="_blank" rel="noopener noreferrer">',
                     page), page


def test_telegram_sends_each_service_as_a_venue(config, db, fake):
    from tests.test_telegram import Bot, Resident_

    async def scenario():
        resident = Resident_(fake, db, language="en")
        async with Bot(config, db, fake) as bot:
            at(bot.assistant, TUESDAY_22)
            await resident.onboard_in_english()
            with db.session() as session:
                Chat(bot.assistant, str(resident.chat_id), "telegram").resident(
                    session).building = "building 7"
            sent = await resident.says("/menu")
            sent = await resident.press(sent, "Services nearby")
            sent = await resident.press(sent, "Canteen for older people")
            return sent

    sent = asyncio.run(scenario())
    venues = [s.venue for s in sent if s.method == "sendVenue"]
    assert [v["title"] for v in venues] == [
        name_of(config, s, "en") for s in ("canteen_west", "canteen_north", "canteen_east")]
    assert venues[0]["address"] == "Building 6, ground floor"
    assert (venues[0]["latitude"], venues[0]["longitude"]) == (39.9903, 116.329)
    described = "\n".join(s.text or "" for s in sent if s.method == "sendMessage")
    assert "West meal point · 50 m" in described and "Closed now. Opens Wednesday" in described
    assert sent[-1].buttons, "the last message offers what to do next"
    with db.session() as session:  # each pin is one outbox row, sent once
        rows = session.execute(select(OutboxMessage.payload).where(
            OutboxMessage.chat_id == "5551234")).scalars().all()
    assert sum(1 for p in rows if p.get("venue")) == 3


def test_every_service_text_exists_in_every_language(config):
    catalogs = Catalogs(config)
    for language in config.language_ids:
        t = catalogs.translator(language)
        for message in ("Services nearby", "Open now, until {time}.",
                        "Closed now. Opens {day}, {time}.", "🗺 Open the map"):
            if language != "en":
                assert t(message, time="x", day="y") != message.format(time="x", day="y"), \
                    (language, message)


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
def test_in_chromium_the_live_chat_draws_the_map_link(config, db, tmp_path):
    """The page's script draws a newly arrived pin as a link (the no-script page is above)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from bot.channels.web import WebChannel
    from bot.console.app import create_app
    from tests.test_console_browser import CHROMEDRIVER, CHROMIUM, FLAGS, served
    from tests.test_webchat import press

    web = WebChannel(config, db, Assistant(config, db, channels=installed_channels()))
    at(web.assistant, TUESDAY_11)
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        with served(web.wrap(create_app(config, db)), web) as base:
            browser.get(base + "/chat?lang=en")
            press(browser, "lang:en")
            press(browser, "voice:off")
            press(browser, "menu:services")
            press(browser, "svc:pharmacy")
            press(browser, "svc:byname")
            link = WebDriverWait(browser, 15).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#messages a.map"))[0]
            assert link.get_attribute("href").startswith(
                "https://www.openstreetmap.org/?mlat=39.99250&mlon=116.33620")
            assert link.text == "🗺 Open the map"
            assert link.get_attribute("rel") == "noopener noreferrer"
    finally:
        browser.quit()
