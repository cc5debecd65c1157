"""Bad input at every step: a short answer in the resident's language, and nothing changed."""

from __future__ import annotations

import pytest

from flows.commands import KNOWN
from tests.conftest import count_requests

BAD_INPUTS = {
    "empty": "",
    "spaces": "   \t ",
    "too long": "长" * 5000,
    "control characters": "\x00\x07\x08\x1b",
    "zero-width": "\u200b\u200c\u200d\ufeff\u2060",
    "bidi override": "\u202e\u2066\u2069",
    "number not on the menu": "99",
    "unknown command": "/frobnicate now",
}
EXPECTED = {
    "empty": "I did not get any text. Please type a message or choose a number.",
    "spaces": "I did not get any text. Please type a message or choose a number.",
    "control characters": "I did not get any text. Please type a message or choose a number.",
    "zero-width": "I did not get any text. Please type a message or choose a number.",
    "bidi override": "I did not get any text. Please type a message or choose a number.",
}


def _walk_to(resident, step: str) -> None:
    """Brings a fresh, onboarded resident to `step`."""
    if step == "menu":
        return
    if step.startswith("report"):
        resident.press_payload("menu:report")
        if step == "report:category":
            return
        resident.press_payload("cat:utilities")
        if step == "report:description":
            return
        resident.send("Water pipe leaking in the basement")
        if step == "report:location":
            return
        resident.send("Building 4, basement")
        return
    if step == "settings":
        resident.press_payload("menu:settings")
        return
    raise AssertionError(step)


STEPS = ["menu", "report:category", "report:description", "report:location", "report:confirm",
         "settings"]


@pytest.mark.parametrize("language", ["en", "ug", "bo"])
@pytest.mark.parametrize("step", STEPS)
def test_bad_input_keeps_the_flow_where_it_was(chat, db, language, step):
    resident = chat(f"bad-{language}-{step}")
    resident.onboard(language)
    _walk_to(resident, step)
    before = resident.state()
    requests_before = count_requests(db)

    for name, text in BAD_INPUTS.items():
        replies = resident.send(text)
        assert replies, name
        assert all(r.language == language for r in replies), name
        if name in EXPECTED:
            assert resident.t(EXPECTED[name]) in resident.text, name
        elif name == "too long":
            assert resident.t(
                "That message is too long ({length} characters). "
                "Please keep it under {limit} characters.", length=5000, limit=1000,
            ) in resident.text
        elif name == "number not on the menu":
            expected = (resident.t("Please choose a number from 1 to {last}.",
                                   last=len(before[3])) if len(before[3]) > 1
                        else resident.t("Please choose 1: it is the only choice."))
            assert expected in resident.text
        elif name == "unknown command":
            assert resident.t("I do not know that command. These work: {commands}",
                              commands=" ".join(KNOWN)
                              ) in resident.text
        # The step's prompt is shown again, with the same buttons.
        assert resident.payloads == before[3], name
        assert resident.state() == before, name
    assert count_requests(db) == requests_before


def test_a_too_short_description_is_asked_again(chat, db):
    resident = chat("short")
    resident.onboard("zh_Hans")
    _walk_to(resident, "report:description")
    before = resident.state()
    for text in ("a", "12-3", "#7"):
        resident.send(text)
        assert resident.t("Please write a little more, so that staff understand the problem.") \
            in resident.text
        assert resident.state() == before
    resident.send("漏水")  # two characters are enough in Chinese
    assert resident.state()[1] == "location"


def test_cancel_at_any_step_of_the_report_stores_nothing(chat, db):
    resident = chat("cancel")
    resident.onboard("mn")
    for step in STEPS[1:5]:
        _walk_to(resident, step)
        resident.press_payload("cancel")
        assert resident.state()[:3] == ("menu", "main", {})
        assert resident.t("Cancelled. Nothing was saved.") in resident.text
    resident.press_payload("menu:report")
    resident.send("/cancel")
    assert resident.state()[:2] == ("menu", "main")
    assert count_requests(db) == 0


def test_stale_and_forged_buttons_are_refused_politely(chat, db):
    resident = chat("stale")
    resident.onboard("ug")
    resident.press_payload("menu:report")
    before = resident.state()
    for payload in ("menu:requests", "confirm:submit", "cat:nonexistent", "x" * 500, ""):
        resident.press_payload(payload)
        assert resident.t("That menu has expired. Here is the current step again.") \
            in resident.text
        assert resident.state() == before
    assert count_requests(db) == 0


def test_visible_text_keeps_its_letters_but_loses_hidden_characters(chat, db):
    resident = chat("hidden")
    resident.onboard("en")
    _walk_to(resident, "report:description")
    resident.send("Pipe\u200b burst\u202e in\x07 the basement")
    resident.send("Building 4")
    resident.press_payload("confirm:submit")
    from sqlalchemy import select

    from bot.models import Request

    with db.session() as session:
        assert session.execute(select(Request.description)).scalar_one() == \
            "Pipe burst in the basement"


def test_a_location_where_none_is_asked_is_answered_and_ignored(chat, db):
    resident = chat("loc")
    resident.onboard("en")
    before = resident.state()
    resident.location(39.9, 116.4)
    assert resident.t("A location is not needed at this step.") in resident.text
    assert resident.state() == before
    _walk_to(resident, "report:location")
    resident.location(999, 116.4)  # impossible coordinates
    assert resident.state()[1] == "location"
    resident.location(39.91, 116.40)
    assert resident.state()[1] == "confirm"
    assert "39.91000" in resident.text
