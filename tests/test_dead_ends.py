"""No dead ends for a resident who presses numbers (issue 12): first words kept, the language
from the script, every button by its number, reports that keep the resident's words and place,
a choice of common problems, a notice's button, help with the menu first, plural forms and
dates, a quiet terminal, and irreversible intents that are never a guess."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

import pytest

from bot.config import PROJECT_ROOT, ConfigError, Language, load_config
from bot.core import Assistant
from bot.i18n import RLM, Catalogs
from bot.messages import Incoming, Understanding
from bot.text import guess_language
from flows import intents
from tests.conftest import Chat, TerminalSession, run_cli

EXAMPLES = PROJECT_ROOT / "docs" / "examples"


def onboarded(assistant, user: str, language: str) -> Chat:
    chat = Chat(assistant, user)
    chat.onboard(language)
    return chat


def picker_lines(output: str) -> list[str]:
    """The numbered choices of a terminal block, without right-to-left marks."""
    lines = (line.replace(RLM, "") for line in output.splitlines())
    return [line.strip() for line in lines if re.match(r"^\s+\d+\. ", line)]


class Scripted:
    """An understander answering what the test scripted: the NLU's protocol, nothing else."""

    def __init__(self, answers: dict[str, Understanding]):
        self.answers = answers

    async def parse(self, text, language):
        return self.answers.get(text, Understanding("out_of_scope", 0.9))


# --- 1. The first message is kept and acted on after one tap ---------------------------------
def test_piped_first_message_is_answered_in_its_language_and_reported_after_one_tap(
        nlu_assistant):
    terminal = TerminalSession(nlu_assistant, "piped")
    first = terminal.send("3号楼电梯坏了")
    assert "您好！我是幸福里社区的小助手邻里。" in first
    assert picker_lines(first)[0] == "1. 简体中文"
    chat = Chat(nlu_assistant, "piped")
    assert chat.t("I have kept your message and will answer it once you have chosen.") in first

    after = terminal.send("1")  # one tap confirms the language the script showed
    flow, step, slots, _, language = chat.state()
    assert language == "zh_Hans"
    assert (flow, step) == ("report", "location")  # not asked to type the problem again
    assert slots["description"] == "3号楼电梯坏了" and slots["category"] == "facility_repair"
    assert chat.t("Is the problem at {place}? Choose 1 if it is.", place="3号楼") in after


def test_interactive_free_text_at_the_picker_is_kept_not_refused(nlu_assistant):
    shown = asyncio.run(nlu_assistant.handle(Incoming("terminal", "tty", "resume")))
    assert len(shown[0].buttons) == len(nlu_assistant.config.languages)  # the picker, as `linli chat` opens
    terminal = TerminalSession(nlu_assistant, "tty")
    answer = terminal.send("لىفىت بۇزۇلدى")
    chat = Chat(nlu_assistant, "tty")
    ug = Catalogs(nlu_assistant.config).translator("ug")
    assert ug("Please choose your language by its number.") not in answer
    assert picker_lines(answer)[0].endswith("ئۇيغۇرچە")
    terminal.send("1")
    flow, step, slots, _, language = chat.state()
    assert (flow, step, language) == ("report", "location", "ug")
    assert slots["description"] == "لىفىت بۇزۇلدى"


# --- 2. Language from the script, as data -----------------------------------------------------
@pytest.mark.parametrize("text,language", [
    ("电梯坏了", "zh_Hans"), ("電梯壞了", "zh_Hant"), ("the lift is broken", "en"),
    ("лифт эвдэрсэн", "mn"), ("ཆུ་མི་འབབ།", "bo"), ("لىفىت بۇزۇلدى", "ug"),
    ("3号楼 lift 坏了", "zh_Hans"),  # Chinese with an English word in it
])
def test_a_first_message_is_answered_in_the_language_its_script_shows(chat, text, language):
    resident = chat(f"script-{language}")
    replies = resident.send(text)
    assert {r.language for r in replies} == {language}
    assert resident.payloads[0] == f"lang:{language}"


def test_chinese_that_fits_both_writings_goes_to_the_community_default(config):
    languages = config.languages
    assert guess_language("你好", languages, "zh_Hans") == "zh_Hans"
    assert guess_language("你好", languages, "zh_Hant") == "zh_Hant"
    assert guess_language("你好", languages, "en") == "zh_Hans"  # the first one in Chinese
    assert guess_language("12345", languages, "zh_Hans") is None


def test_a_seventh_language_is_recognised_by_its_script_from_data_alone(config):
    """The shipped config has mn_Mong (issue 17): without its entry the script is not guessed,
    with a bare Language of that script it is, and the shipped entry itself says the same."""
    others = tuple(lang for lang in config.languages if lang.id != "mn_Mong")
    mongolian_script = Language("mn_Mong", "ᠮᠣᠩᠭᠣᠯ", "ltr", "Mongolian")
    assert guess_language("ᠤᠰᠤ ᠭᠠᠷᠬᠤ ᠦᠭᠡᠢ", others + (mongolian_script,), "zh_Hans") == "mn_Mong"
    assert guess_language("ᠤᠰᠤ ᠭᠠᠷᠬᠤ ᠦᠭᠡᠢ", others, "zh_Hans") is None
    assert guess_language("ᠤᠰᠤ ᠭᠠᠷᠬᠤ ᠦᠭᠡᠢ", config.languages, "zh_Hans") == "mn_Mong"


def test_an_unknown_script_in_the_config_is_refused_by_key(tmp_path, env):
    text = (PROJECT_ROOT / "config.yml").read_text(encoding="utf-8")
    broken = tmp_path / "config.yml"
    broken.write_text(text.replace("script: Cyrillic", "script: Klingon"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"languages\[3\]\.script"):
        load_config(broken)


# --- 3. Every button by its number ------------------------------------------------------------
def test_a_did_you_mean_guess_is_pressed_by_its_number(config, db):
    unsure = Understanding("nlu_fallback", 0.4, [],
                           [("read_notices", 0.4), ("join_poll", 0.3), ("greet", 0.1)])
    assistant = Assistant(config, db, understander=Scripted({"通知 投票": unsure}))
    chat = onboarded(assistant, "numbers", "zh_Hans")
    terminal = TerminalSession(assistant, "numbers")
    shown = terminal.send("通知 投票")
    assert chat.state()[3] == ["intent:read_notices", "intent:join_poll", "menu"]
    pressed = terminal.send("1")
    assert chat.t("That menu has expired. Here is the current step again.") not in pressed
    assert chat.state()[:2] == ("notices", "main"), shown


def test_a_real_low_confidence_guess_is_pressed_by_its_number(nlu_assistant):
    chat = onboarded(nlu_assistant, "unsure", "zh_Hans")
    terminal = TerminalSession(nlu_assistant, "unsure")
    terminal.send("投票 语音")  # half "polls", half "voice": the model should not be sure
    first = chat.state()[3][0]
    assert first.startswith("intent:"), chat.state()  # the precondition: a did-you-mean
    pressed = terminal.send("1")
    assert chat.t("That menu has expired. Here is the current step again.") not in pressed
    assert chat.t("I am not sure what you mean. Did you mean one of these?") not in pressed


# --- 4. Reports keep the resident's words and place -------------------------------------------
@pytest.mark.parametrize("language,text,category,place", [
    ("ug", "لىفىت بۇزۇلدى", "facility_repair", None),
    ("ug", "3-بىنادا لىفت بۇزۇلدى", "facility_repair", "3-بىنا"),
    ("zh_Hans", "3号楼电梯坏了", "facility_repair", "3号楼"),
    ("mn", "3-р байрны лифт эвдэрсэн", "facility_repair", "3-р байр"),
    ("en", "the lift in building 3 is broken", "facility_repair", "building 3"),
])
def test_a_report_in_free_text_keeps_the_words_and_offers_the_place(nlu_assistant, language,
                                                                    text, category, place):
    chat = onboarded(nlu_assistant, f"report-{language}-{bool(place)}", language)
    answer = TerminalSession(nlu_assistant, f"report-{language}-{bool(place)}").send(text)
    flow, step, slots, _, _ = chat.state()
    assert (flow, step) == ("report", "location"), answer
    assert slots["description"] == text and slots["category"] == category
    assert slots.get("place_found") == place
    if place:
        confirmed = TerminalSession(nlu_assistant, f"report-{language}-{bool(place)}").send("1")
        assert chat.state()[:2] == ("report", "confirm")
        assert place in confirmed and text in confirmed


@pytest.mark.parametrize("language,description,place", [
    ("zh_Hant", "3號樓的燈壞了", "3號樓"),
    ("bo", "ཁང་པ་ཨང་ 3 གི་གློག་སྒྲོན་ཆག་འདུག", "ཁང་པ་ཨང་ 3"),
    ("bo", "ཁང་པ་ཨང་༣ གི་གློག་སྒྲོན་ཆག་འདུག", "ཁང་པ་ཨང་༣"),
    ("mn", "3-р байрны гэрэл асахгүй байна", "3-р байр"),
])
def test_a_place_in_a_typed_description_is_only_confirmed(chat, language, description, place):
    resident = chat(f"place-{language}-{len(place)}")
    resident.onboard(language)
    resident.press_payload("menu:report")
    resident.press_payload("cat:facility_repair")
    resident.send(description)
    assert resident.t("Is the problem at {place}? Choose 1 if it is.", place=place) \
        in resident.text
    resident.send("1")
    assert resident.state()[:2] == ("report", "confirm")
    assert place in resident.text


def test_a_bare_category_word_is_not_taken_as_the_description(config, db):
    lift = [{"entity": "category", "value": "facility_repair"}]
    assistant = Assistant(config, db, understander=Scripted({
        "电梯": Understanding("report_problem", 0.95, lift),
        "电梯坏了": Understanding("report_problem", 0.95, lift),
    }))
    chat = onboarded(assistant, "bare", "zh_Hans")
    chat.send("电梯")
    assert chat.state()[:2] == ("report", "description")
    assert "description" not in chat.state()[2]
    chat.send("/menu")
    chat.send("电梯坏了")
    assert chat.state()[:2] == ("report", "location")
    assert chat.state()[2]["description"] == "电梯坏了"


# --- 5. Switching language mid-report --------------------------------------------------------
def test_switching_language_mid_report_continues_the_report(chat, db):
    resident = chat("switcher")
    resident.onboard("zh_Hans")
    terminal = TerminalSession(resident.assistant, "switcher")
    terminal.send("1")  # report a problem
    terminal.send("2")  # water, power…
    terminal.send("厨房水管漏水")
    terminal.send("/language")
    switched = terminal.send("3")  # English
    assert "From now on I will write in English." in switched
    flow, step, slots, _, language = resident.state()
    assert (flow, step, language) == ("report", "location", "en")
    assert slots["description"] == "厨房水管漏水"
    assert "Where is the problem?" in switched
    terminal.send("Building 5")
    done = terminal.send("1")  # submit
    assert "Tracking number: R-" in done


# --- 6. A numbers-only resident can describe the problem --------------------------------------
def test_the_description_step_offers_common_problems_by_number(chat, config):
    resident = chat("numbers-only")
    resident.onboard("bo")
    terminal = TerminalSession(resident.assistant, "numbers-only")
    terminal.send("1")  # report a problem
    shown = terminal.send("2")  # water, power, gas, heating
    common = config.category("utilities").common_problems
    lines = picker_lines(shown)
    assert lines[0] == f"1. {common[0]['bo']}" and len(lines) == len(common) + 2
    assert lines[-2] == f"{len(common) + 1}. {resident.t('Describe it yourself')}"
    terminal.send("1")
    flow, step, slots, _, _ = resident.state()
    assert (flow, step) == ("report", "location")
    assert slots["description"] == common[0]["bo"]


def test_describe_it_yourself_asks_for_the_words(chat, config):
    resident = chat("own-words")
    resident.onboard("en")
    resident.press_payload("menu:report")
    resident.press_payload("cat:sanitation")
    own = len(config.category("sanitation").common_problems) + 1
    resident.send(str(own))
    assert resident.t("Please type the problem in a sentence or two.") in resident.text
    resident.send("The bins at the east gate are full")
    assert resident.state()[:2] == ("report", "location")


# --- 7. A pushed notice has a button -----------------------------------------------------------
def test_a_pushed_notice_opens_by_its_number(chat, env):
    resident = chat("subscriber")
    resident.onboard("en")
    resident.press_payload("menu:notices")
    resident.press_payload("n:subs")
    resident.press_payload("sub:elderly_care")
    resident.send("/menu")
    added = run_cli(env, "notices", "add", str(EXAMPLES / "notice.yml"))
    notice_id = re.search(r"notice (\d+) added", added.stdout).group(1)
    published = run_cli(env, "notices", "publish", notice_id)
    assert published.returncode == 0, published.stderr
    terminal = TerminalSession(resident.assistant, "subscriber")
    pushed = terminal.send("/menu")
    assert "/start notice_" not in pushed
    assert "1. Read the full notice" in pushed
    terminal.send("1")
    assert resident.state()[:3] == ("notices", "notice", {"notice": int(notice_id)})


# --- 8. Help: the numbered menu first, commands last -------------------------------------------
def test_help_shows_the_numbered_menu_before_the_commands(chat):
    resident = chat("helpme")
    resident.onboard("en")
    shown = TerminalSession(resident.assistant, "helpme").send("/help")
    assert shown.index("1. Report a problem") < shown.index("/myrequests")
    resident.send("1")  # the numbers still mean the menu
    assert resident.state()[:2] == ("report", "category")


# --- 9. Plural forms and dates -------------------------------------------------------------------
def test_a_single_choice_is_not_asked_for_as_1_to_1(chat):
    resident = chat("single")
    resident.onboard("zh_Hans")
    resident.press_payload("menu:report")
    resident.press_payload("cat:general")
    resident.send("公园的长椅坏了")
    shown = TerminalSession(resident.assistant, "single").send("7")
    assert "1 到 1" not in shown
    assert resident.t("Please choose 1: it is the only choice.") in shown


def test_counts_take_the_plural_form_of_each_language(config):
    catalogs = Catalogs(config)
    vote = ("{option}: {count} vote ({percent})", "{option}: {count} votes ({percent})")
    en = catalogs.translator("en")
    assert en.ngettext(*vote, 1, option="Yes", percent="50%") == "Yes: 1 vote (50%)"
    assert en.ngettext(*vote, 2, option="Yes", percent="50%") == "Yes: 2 votes (50%)"
    assert catalogs.translator("zh_Hans").ngettext(*vote, 1, option="是", percent="50%") \
        == "是：1票（50%）"


def test_tibetan_dates_do_not_mix_digits_and_keep_the_separator(config):
    written = Catalogs(config).translator("bo").datetime(datetime(2026, 11, 23, 1, 30))
    assert not any("༠" <= ch <= "༩" for ch in written), written  # Western digits throughout
    assert "འི་ཚེས་23" in written and "2026" in written


# --- 10. A quiet terminal ----------------------------------------------------------------------
def test_linli_chat_shows_residents_no_library_warnings(env, understander):
    """A real `linli chat` with the real model loaded: nothing but the picker reaches the
    terminal, on stdout or stderr (TensorFlow, jax, SQLAlchemy and matplotlib all warn)."""
    with_model = {**env, "LINLI_MODELS_DIR": str(PROJECT_ROOT / "var" / "models")}
    assert run_cli(with_model, "db", "upgrade").returncode == 0
    chat = run_cli(with_model, "chat", "--resident", "quiet", input="电梯坏了\n", timeout=300)
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.startswith("您好！"), chat.stdout[:300]
    noise = [line for line in (chat.stderr + chat.stdout).splitlines()
             if re.search(r"warn|tensorflow|jax|matplotlib|sqlalchemy", line, re.IGNORECASE)]
    assert not noise, noise
    assert chat.stderr == ""


# --- 11. Irreversible intents are never a guess -------------------------------------------------
def test_no_water_in_tibetan_never_reaches_the_erase_confirmation(nlu_assistant):
    chat = onboarded(nlu_assistant, "bo-water", "bo")
    terminal = TerminalSession(nlu_assistant, "bo-water")
    terminal.send("ངའི་ཁང་པའི་ཆུ་མི་འབབ།")
    assert chat.state()[:2] != ("settings", "forget")
    assert chat.state()[0] == "report"
    terminal.send("1")
    assert chat.state()[:2] != ("settings", "forget")
    assert chat.state()[4] == "bo"  # the resident is still there


@pytest.mark.parametrize("intent", ["delete_my_data", "unsubscribe_notices"])
def test_an_irreversible_intent_below_the_threshold_is_only_a_guess(config, db, intent):
    below = intents.IRREVERSIBLE_CONFIDENCE - 0.05
    unsure = Understanding(intent, below, [], [(intent, below), ("help", 0.03)])
    sure = Understanding(intent, 0.99, [], [(intent, 0.99)])
    assistant = Assistant(config, db, understander=Scripted({"unsure": unsure, "sure": sure}))
    chat = onboarded(assistant, f"guess-{intent}", "en")
    chat.send("unsure")
    assert chat.state()[:2] == ("menu", "main")
    assert chat.payloads[0] == "intent:help"  # the irreversible guess is never choice 1
    assert f"intent:{intent}" in chat.payloads
    chat.send("/menu")
    chat.send("sure")
    assert chat.state()[0] in ("settings", "notices")
