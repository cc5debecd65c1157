"""First contact, the language picker, commands, settings and erasing one's data."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.models import Request, Resident, Turn
from tests.conftest import LANGUAGES


@pytest.mark.parametrize("text,language", [
    ("你好，我想报修", "zh_Hans"),
    ("你好，我想報修電燈", "zh_Hant"),
    ("hello there", "en"),
    ("Сайн байна уу", "mn"),
    ("བཀྲ་ཤིས་བདེ་ལེགས།", "bo"),
    ("ياخشىمۇسىز", "ug"),
])
def test_a_first_message_is_answered_in_the_language_its_script_shows(chat, text, language):
    resident = chat(f"first-{language}")
    replies = resident.send(text)
    assert [r.language for r in replies] == [language]
    community = resident.assistant.config.community_names[language]
    assert community in resident.text  # the greeting names the community in that language
    # That language is choice 1, the one tap that confirms it; every other one follows.
    assert resident.payloads == [f"lang:{language}"] + [
        f"lang:{lang}" for lang in LANGUAGES if lang != language]
    assert resident.state()[:2] == ("onboarding", "language")


def test_start_shows_the_picker_prompt_in_every_language(chat):
    resident = chat("new")
    resident.send("/start")
    assert resident.text.count("\n") == len(LANGUAGES) - 1
    assert "请选择您的语言。" in resident.text and "Please choose your language." in resident.text
    assert "ᠬᠡᠯᠡ\u202fᠪᠡᠨ ᠰᠣᠩᠭᠣᠭᠠᠷᠠᠢ᠃" in resident.text  # traditional Mongolian script
    assert [b.label for b in resident.buttons] == [
        "简体中文", "繁體中文", "English", "Монгол", "ᠮᠣᠩᠭᠣᠯ", "བོད་ཡིག", "ئۇيغۇرچە"]


def test_a_language_can_be_typed_by_its_own_name(chat):
    resident = chat("typed")
    resident.send("/start")
    resident.send("Монгол")
    assert resident.state()[4] == "mn"
    # No engine speaks Mongolian and no clip is recorded: voice is not offered; the building
    # is asked next, beside the main menu's choices.
    assert resident.state()[:2] == ("onboarding", "building")
    assert "menu:report" in resident.payloads and "building:skip" in resident.payloads
    other = chat("typed-en")
    other.send("/start")
    other.send("English")
    assert other.state()[4] == "en" and other.state()[:2] == ("onboarding", "voice")


def test_voice_choice_is_stored_and_toggled_by_command(chat, db):
    resident = chat("voice")
    resident.onboard("en", voice=True)
    with db.session() as session:
        assert resident.resident(session).voice_on is True
    resident.press_payload("menu:report")
    resident.send("/voice")
    assert "Voice replies are off." in resident.text
    assert resident.state()[:2] == ("report", "category")  # the flow goes on
    with db.session() as session:
        assert resident.resident(session).voice_on is False


def test_language_switches_any_time_by_command_and_in_settings(chat):
    resident = chat("switch")
    resident.onboard("zh_Hans")
    resident.press_payload("menu:report")
    resident.send("/language")
    resident.press_payload("lang:ug")
    assert resident.state()[4] == "ug"
    assert all(r.rtl and r.language == "ug" for r in resident.replies)
    assert resident.state()[:2] == ("report", "category")  # the report goes on
    resident.press_payload("cancel")
    resident.press_payload("menu:settings")
    resident.press_payload("set:language")
    resident.send("3")  # English
    assert resident.state()[4] == "en"
    assert "From now on I will write in English." in resident.text


def test_settings_toggle_senior_mode(chat, db):
    resident = chat("senior")
    resident.onboard("bo")
    resident.press_payload("menu:settings")
    resident.press_payload("set:senior")
    with db.session() as session:
        assert resident.resident(session).senior_mode is True
    assert resident.t("Turn senior mode off") in [b.label for b in resident.buttons]


def test_help_explains_and_returns_to_the_menu(chat):
    resident = chat("help")
    resident.onboard("zh_Hant")
    resident.send("/help")
    assert "/myrequests" in resident.text and "幸福里社區" in resident.text
    assert resident.state()[:2] == ("menu", "main")


def test_forget_erases_the_profile_and_keeps_requests_anonymised(chat, db):
    resident = chat("forgetful")
    resident.onboard("en")
    tracking_number = resident.file_request("general", "Broken bench", "Park")
    resident.send("/forget")
    resident.press_payload("forget:no")
    assert "Nothing was erased." in resident.text
    resident.send("/forget")
    resident.press_payload("forget:yes")
    assert "Your data has been erased." in resident.text
    with db.session() as session:
        assert session.execute(select(func.count(Resident.id))).scalar_one() == 0
        assert session.execute(select(func.count(Turn.id))).scalar_one() == 0
        request = session.execute(select(Request)).scalar_one()
        assert request.tracking_number == tracking_number and request.resident_id is None
    # Coming back, they start afresh and see none of the old requests.
    resident.send("/start")
    resident.press_payload("lang:en")
    resident.press_payload("voice:off")
    resident.press_payload("menu:requests")
    assert "You have not reported any problems yet." in resident.text


def test_every_turn_in_and_out_is_recorded_with_time_channel_and_language(chat, db):
    resident = chat("log")
    resident.onboard("mn")
    with db.session() as session:
        turns = session.execute(select(Turn).order_by(Turn.id)).scalars().all()
    assert [t.direction for t in turns[:2]] == ["in", "out"]
    assert turns[0].kind == "command" and turns[0].text == "/start"
    assert all(t.at and t.channel == "terminal" for t in turns)
    assert turns[-1].language == "mn"
    assert {t.kind for t in turns if t.direction == "in"} == {"command", "button"}


def test_a_resident_comes_back_to_the_step_they_left(chat, assistant):
    resident = chat("resume")
    resident.onboard("en")
    resident.press_payload("menu:report")
    resident.press_payload("cat:sanitation")
    import asyncio

    from bot.messages import Incoming

    replies = asyncio.run(assistant.handle(Incoming("terminal", "resume", "resume")))
    assert "Rubbish and cleaning: please describe the problem" in replies[0].text
