"""The request loop through the real core, flows and database, in each of the six languages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.models import Request, RequestEvent
from bot.services import requests as service
from tests.conftest import LANGUAGES, count_requests, run_cli

DESCRIPTIONS = {
    "zh_Hans": ("5号楼的电梯坏了，我妈妈80岁了下不了楼", "5号楼2单元"),
    "zh_Hant": ("樓道的燈壞了三天了", "2號樓3單元"),
    "en": ("The lift in building 5 has been broken since Monday", "Building 5, entrance 2"),
    "mn": ("Лифт гурав хоног ажиллахгүй байна", "7-р байр, 2-р орц"),
    "mn_Mong": ("ᠯᠢᠹᠲ ᠭᠤᠷᠪᠠᠨ ᠡᠳᠦᠷ ᠠᠵᠢᠯᠯᠠᠬᠤ ᠦᠭᠡᠢ ᠪᠠᠶᠢᠨ᠎ᠠ", "7 ᠳᠤᠭᠠᠷ ᠪᠠᠢᠱᠢᠩ᠂ 2 ᠳᠤᠭᠠᠷ ᠣᠷᠴᠠ"),
    "bo": ("འཕར་འཁོར་ཆག་འདུག", "ཁང་པ་ ༤"),
    "ug": ("لىفت بۇزۇلۇپ قالدى", "6-بىنا، 1-قەۋەت"),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_resident_files_a_request_and_sees_it_under_my_requests(chat, db, language):
    resident = chat(f"r-{language}")
    resident.onboard(language)
    description, place = DESCRIPTIONS[language]

    tracking_number = resident.file_request("facility_repair", description, place)

    assert re.fullmatch(r"R-\d{6}", tracking_number)
    department = resident.assistant.config.department("property_office").names[language]
    assert department in resident.text  # "sent to <department>" in the resident's language
    assert resident.state()[:2] == ("menu", "main")  # back at the menu after submitting

    resident.press_payload("menu:requests")
    listing = resident.text
    assert tracking_number in listing
    assert resident.t("Your requests, newest first:") in listing
    assert resident.t("Submitted") in listing
    category = resident.assistant.config.category("facility_repair").names[language]
    assert category in listing
    if language != "en":
        assert "Your requests" not in listing and "Submitted" not in listing

    resident.press_payload(f"req:{tracking_number}")
    assert description in resident.text and place in resident.text

    with db.session() as session:
        request = session.execute(select(Request)).scalar_one()
        assert request.language == language
        assert request.description == description
        assert request.location_text == place
        assert request.status == "submitted"
        assert [e.status for e in request.events] == ["submitted"]


def test_my_requests_are_newest_first_and_only_my_own(chat, db):
    alice, bob = chat("alice"), chat("bob")
    alice.onboard("en")
    bob.onboard("en")
    first = alice.file_request("sanitation", "Rubbish not collected", "East gate")
    second = alice.file_request("utilities", "No hot water since morning", "Building 2")
    bobs = bob.file_request("noise_dispute", "Drilling at night", "Building 9")

    alice.press_payload("menu:requests")
    assert alice.text.index(second) < alice.text.index(first)
    assert bobs not in alice.text
    # A forged button for someone else's request is refused, and shows nothing of it.
    alice.press_payload(f"req:{bobs}")
    assert "Drilling" not in alice.text
    assert alice.t("That menu has expired. Here is the current step again.") in alice.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_status_change_from_the_command_line_reaches_the_resident_in_their_language(
    chat, db, env, language
):
    resident = chat(f"s-{language}")
    resident.onboard(language)
    tracking_number = resident.file_request("utilities", *DESCRIPTIONS[language])

    done = run_cli(env, "requests", "set-status", tracking_number, "accepted", "--note", "OK")
    assert done.returncode == 0, done.stderr

    resident.send("/menu")
    department = resident.assistant.config.department("utilities_office").names[language]
    expected = resident.t(
        "Your request {tracking_number} has been accepted by {department}.",
        tracking_number=tracking_number,
        department=department,
    )
    assert expected in resident.text
    assert resident.t("Note from staff: {note}", note="OK") in resident.text
    if language != "en":
        assert "accepted by" not in resident.text
    # Told once: the next turn does not repeat it.
    resident.send("/menu")
    assert expected not in resident.text


def _resolve(env, tracking_number: str) -> None:
    for status in ("accepted", "in_progress", "resolved"):
        done = run_cli(env, "requests", "set-status", tracking_number, status)
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("language", ["zh_Hans", "ug"])
def test_a_rating_closes_the_request(chat, db, env, language):
    resident = chat("rater")
    resident.onboard(language)
    tracking_number = resident.file_request("sanitation", *DESCRIPTIONS[language])
    _resolve(env, tracking_number)

    resident.send("/menu")  # the resolved notice comes with the rating question
    assert resident.t("Your request {tracking_number} has been resolved.",
                      tracking_number=tracking_number) in resident.text
    assert resident.state()[:2] == ("rating", "score")
    resident.send("4")  # typing the number presses the button

    assert resident.t("Thank you for your rating. Request {tracking_number} is now closed.",
                      tracking_number=tracking_number) in resident.text
    with db.session() as session:
        request = service.find(session, tracking_number)
        assert (request.status, request.rating) == ("closed", 4)
        assert request.closed_at is not None
        assert request.events[-1].actor == "resident"


def test_a_low_rating_offers_to_reopen_and_reopens(chat, db, env):
    resident = chat("unhappy")
    resident.onboard("mn")
    tracking_number = resident.file_request("facility_repair", *DESCRIPTIONS["mn"])
    _resolve(env, tracking_number)
    resident.send("/menu")
    resident.press_payload("score:1")
    assert resident.state()[:2] == ("rating", "reopen")
    resident.press_payload("reopen:yes")

    with db.session() as session:
        request = service.find(session, tracking_number)
        assert request.status == "reopened"
        assert request.rating == 1
        assert service.is_overdue(request) is False  # the time limit starts again
    assert resident.t(
        "Request {tracking_number} has been reopened. Staff will look at it again.",
        tracking_number=tracking_number,
    ) in resident.text

    # Staff resolve it again: the resident is asked again and may now close it.
    assert run_cli(env, "requests", "set-status", tracking_number, "resolved").returncode == 0
    resident.send("/menu")
    resident.press_payload("score:2")
    resident.press_payload("reopen:no")
    with db.session() as session:
        assert service.find(session, tracking_number).status == "closed"


def test_rating_later_from_my_requests_when_busy_at_notification_time(chat, db, env):
    resident = chat("busy")
    resident.onboard("en")
    tracking_number = resident.file_request("sanitation", "Bins overflowing", "Gate 2")
    _resolve(env, tracking_number)
    resident.press_payload("menu:report")  # mid-flow: told, but not interrupted
    assert resident.state()[:2] == ("report", "category")
    assert "has been resolved" in resident.text
    assert "under “My requests”" in resident.text
    resident.send("/myrequests")
    resident.press_payload(f"req:{tracking_number}")
    resident.press("Rate how it was handled")
    resident.press_payload("score:5")
    with db.session() as session:
        assert service.find(session, tracking_number).status == "closed"


def test_overdue_requests_are_flagged_by_their_category_time_limit(chat, db, env):
    resident = chat("late")
    resident.onboard("en")
    tracking_number = resident.file_request("safety_hazard", "Cable hanging low", "Yard")
    with db.session() as session:
        request = service.find(session, tracking_number)
        assert request.due_at - request.created_at == timedelta(hours=2)
        request.created_at -= timedelta(hours=3)
        request.due_at -= timedelta(hours=3)

    listing = run_cli(env, "requests", "list", "--overdue")
    assert tracking_number in listing.stdout and "OVERDUE" in listing.stdout
    resident.press_payload("menu:requests")
    assert "overdue" in resident.text
    assert run_cli(env, "requests", "set-status", tracking_number, "resolved").returncode == 0
    assert tracking_number not in run_cli(env, "requests", "list", "--overdue").stdout


def test_staff_command_line_refuses_bad_changes_with_a_clear_reason(chat, db, env):
    resident = chat("x")
    resident.onboard("en")
    tracking_number = resident.file_request("general", "Bench broken", "Park")

    cases = [
        (("R-000000", "accepted"), "no request"),
        ((tracking_number, "flying"), "unknown status"),
        ((tracking_number, "closed"), "can go to"),
        ((tracking_number, "rejected"), "needs a reason"),
        ((tracking_number, "duplicate"), "needs the request it duplicates"),
        ((tracking_number, "accepted", "--department", "nope"), "unknown department"),
    ]
    for args, reason in cases:
        done = run_cli(env, "requests", "set-status", *args)
        assert done.returncode == 2 and reason in done.stderr, (args, done.stderr)
    with db.session() as session:
        request = service.find(session, tracking_number)
        assert request.status == "submitted"
        assert len(request.events) == 1
    assert count_requests(db) == 1


def test_rejection_and_duplicate_carry_their_reason_to_the_resident(chat, db, env):
    resident = chat("dup")
    resident.onboard("zh_Hans")
    first = resident.file_request("sanitation", "东门垃圾满了", "东门")
    second = resident.file_request("sanitation", "东门垃圾又满了", "东门")
    third = resident.file_request("general", "想要一个篮球场", "小区")
    assert run_cli(env, "requests", "set-status", second, "duplicate",
                   "--duplicate-of", first).returncode == 0
    assert run_cli(env, "requests", "set-status", third, "rejected",
                   "--note", "不属于社区职责").returncode == 0
    resident.send("/menu")
    assert resident.t(
        "Your request {tracking_number} is about the same problem as {original}, "
        "which is already being handled.", tracking_number=second, original=first,
    ) in resident.text
    assert resident.t("Your request {tracking_number} could not be accepted.",
                      tracking_number=third) in resident.text
    assert "不属于社区职责" in resident.text


def test_department_can_be_reassigned_and_is_named_on_acceptance(chat, db, env):
    resident = chat("dep")
    resident.onboard("en")
    tracking_number = resident.file_request("general", "Broken swing", "Playground")
    done = run_cli(env, "requests", "set-status", tracking_number, "accepted",
                   "--department", "property_office")
    assert done.returncode == 0, done.stderr
    resident.send("/menu")
    assert "accepted by Property management office" in resident.text


def test_events_record_who_changed_what(chat, db, env):
    resident = chat("audit")
    resident.onboard("en")
    tracking_number = resident.file_request("general", "Broken swing", "Playground")
    run_cli(env, "requests", "set-status", tracking_number, "accepted", "--actor", "li")
    with db.session() as session:
        events = session.execute(select(RequestEvent).order_by(RequestEvent.id)).scalars().all()
        assert [(e.status, e.previous_status, e.actor) for e in events] == [
            ("submitted", None, "resident"),
            ("accepted", "submitted", "staff:li"),
        ]
