"""Talk to staff: a resident asks for staff (by the menu or in their own words), is told when
someone will reply outside working hours, staff answer in the console, the resident gets the
answer at their next turn, and staff hand them back to the assistant."""

from __future__ import annotations

from datetime import datetime, time

import pytest
import yaml
from sqlalchemy import select

from bot.config import ConfigError, StaffHours, load_config
from bot.console.models import AuditEntry
from bot.core import Assistant
from bot.models import OutboxMessage, Turn
from bot.wiring import installed_channels
from tests.conftest import Chat, TerminalSession
from tests.console_helpers import StaffClient, UnsureUnderstander, add_staff, console, logged_in

# config.yml: Monday to Saturday, 08:30 to 17:30 in Asia/Shanghai (UTC+8).
TUESDAY_10AM = datetime(2026, 11, 24, 2, 0)  # naive UTC, as stored
SATURDAY_8PM = datetime(2026, 11, 28, 12, 0)
MONDAY_0830 = datetime(2026, 11, 30, 0, 30)
QUESTION = "我家厨房水管漏水，物业什么时候能来？电话13812345678"
ANSWER = "师傅今天下午两点上门，请家里留人。"


@pytest.fixture
def app(config, db):
    add_staff(db, "sam", "staff")
    add_staff(db, "vic", "viewer")
    return console(config, db)


def at(assistant: Assistant, moment: datetime) -> None:
    """Sets the handover flow's clock: working hours are tested without waiting for them."""
    assistant.flows["handover"].now = lambda: moment


def _resident_id(resident: Chat) -> int:
    with resident.assistant.db.session() as session:
        return resident.resident(session).id


def _asks_for_staff(assistant, user="lin", language="zh_Hans") -> Chat:
    resident = Chat(assistant, user)
    resident.onboard(language)
    resident.send("5")  # the main menu's "Talk to staff"
    return resident


def test_staff_hours_know_when_staff_are_at_work_and_when_they_come_back(config):
    hours = config.staff_hours
    local = config.tz
    assert hours.is_open(datetime(2026, 11, 24, 10, 0, tzinfo=local))
    assert not hours.is_open(datetime(2026, 11, 24, 17, 30, tzinfo=local))
    assert not hours.is_open(datetime(2026, 11, 29, 10, 0, tzinfo=local))  # Sunday
    assert hours.next_opening(datetime(2026, 11, 24, 7, 0, tzinfo=local)) == \
        datetime(2026, 11, 24, 8, 30, tzinfo=local)
    assert hours.next_opening(datetime(2026, 11, 28, 20, 0, tzinfo=local)) == \
        datetime(2026, 11, 30, 8, 30, tzinfo=local)
    assert StaffHours().is_open(datetime(2026, 11, 29, 3, 0, tzinfo=local))  # no section: open


@pytest.mark.parametrize("hours, problem", [
    ({"days": ["mon", "funday"], "from": "09:00", "to": "17:00"}, "staff_hours.days[1]"),
    ({"days": ["mon"], "from": "18:00", "to": "09:00"}, "staff_hours.to"),
    ({"days": ["mon"], "from": "25:00", "to": "26:00"}, "staff_hours.from"),
    ({"days": [], "from": "09:00", "to": "17:00"}, "staff_hours.days"),
    ({"days": ["mon"], "from": "09:00", "to": "17:00", "lunch": "12:00"}, "staff_hours.lunch"),
])
def test_bad_staff_hours_are_named(tmp_path, env, config, hours, problem):
    raw = yaml.safe_load(config.path.read_text(encoding="utf-8"))
    raw["staff_hours"] = hours
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


def test_unquoted_times_are_read_as_times(tmp_path, env, config):
    text = config.path.read_text(encoding="utf-8").replace('from: "08:30"', "from: 8:30")
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path).staff_hours.start == time(8, 30)


def test_in_working_hours_staff_answer_and_hand_the_resident_back(app, db, assistant):
    at(assistant, TUESDAY_10AM)
    resident = _asks_for_staff(assistant)
    assert resident.state()[:2] == ("handover", "waiting")
    assert resident.t("You are now writing to the community staff. Type your message here. "
                      "Staff will answer in this chat.") in resident.text
    assert "不是工作时间" not in resident.text  # staff are at work
    assert resident.payloads == ["menu"]  # the way back to the assistant

    resident.send(QUESTION)
    assert resident.text == resident.t("Sent to the staff.")  # no bot answer to the question
    resident_id = _resident_id(resident)

    staff = logged_in(app, "sam")
    queue = staff.get("/handover").text
    assert f'href="/handover/{resident_id}"' in queue and "简体中文" in queue
    assert "我家厨房水管漏水" in queue and 'http-equiv="refresh"' in queue
    page = staff.get(f"/handover/{resident_id}").text
    assert QUESTION in page
    listed = staff.get("/conversations?handover=1").text
    assert f'href="/conversations/{resident_id}"' in listed

    response = staff.post(f"/handover/{resident_id}/answer", {"answer": ANSWER})
    assert response.status_code == 303
    with db.session() as session:
        row = session.execute(select(OutboxMessage).where(
            OutboxMessage.resident_id == resident_id)).scalar_one()
        assert row.payload["language"] == "zh_Hans" and row.status == "pending"
    assert ANSWER in staff.get(f"/handover/{resident_id}").text
    assert "answered" in staff.get("/handover").text

    told = TerminalSession(assistant, "lin").send("好的，谢谢")
    assert resident.t("Reply from the community staff:") in told and ANSWER in told
    assert resident.state()[:2] == ("handover", "waiting")

    staff.get(f"/handover/{resident_id}")
    response = staff.post(f"/handover/{resident_id}/hand-back")
    assert response.status_code == 303 and response.headers["location"] == "/handover"
    assert resident.state()[:2] == ("menu", "main")
    assert f'href="/handover/{resident_id}"' not in staff.get("/handover").text
    told = TerminalSession(assistant, "lin").send("/menu")
    assert resident.t("The staff have handed you back to the assistant.") in told
    assert resident.t("Talk to staff") in told  # the main menu again

    with db.session() as session:
        entries = session.execute(select(AuditEntry).where(
            AuditEntry.action.like("handover.%")).order_by(AuditEntry.id)).scalars().all()
        assert [(e.action, e.actor, e.target) for e in entries] == [
            ("handover.answer", "sam", f"resident:{resident_id}"),
            ("handover.hand_back", "sam", f"resident:{resident_id}")]
        assert ANSWER not in str(entries[0].detail)


def test_a_hand_back_during_the_resident_s_turn_is_not_overwritten_by_it(app, db, assistant):
    """Staff press "hand back" just after the resident's message was read in: the turn, which
    loaded the resident before, must not write the old "handover" state over theirs."""
    at(assistant, TUESDAY_10AM)
    resident = _asks_for_staff(assistant)
    resident_id = _resident_id(resident)
    staff = logged_in(app, "sam")
    staff.get(f"/handover/{resident_id}")
    find = assistant._find_resident
    handed_back = []

    def find_then_staff_act(session, incoming):
        found = find(session, incoming)
        if not handed_back:  # the console commits between the turn's read and its write
            response = staff.post(f"/handover/{resident_id}/hand-back")
            handed_back.append(response.status_code)
        return found

    assistant._find_resident = find_then_staff_act
    resident.send("好的，我等着")
    assert handed_back == [303]
    assert resident.state()[:2] == ("menu", "main")  # the staff's change stands
    # The turn ran again on the fresh state: the resident is told they are back.
    assert resident.t("The staff have handed you back to the assistant.") in resident.text
    with db.session() as session:
        said = session.execute(select(Turn.flow).where(
            Turn.resident_id == resident_id, Turn.direction == "in",
            Turn.text == "好的，我等着")).scalars().all()
        # Recorded once, by the run that counted: not as a message to staff who have already
        # left (nobody would ever read it there), but as the first words back in the menu.
        assert said == ["menu"]


def test_outside_working_hours_the_resident_is_told_when_someone_will_reply(app, assistant):
    at(assistant, SATURDAY_8PM)
    resident = _asks_for_staff(assistant, language="en")
    t = assistant.catalogs.translator("en")
    expected = t("Staff are not at work now. Someone will reply from {time}.",
                 time=t.datetime(MONDAY_0830))
    assert expected in resident.text
    assert "Nov 30" in expected and "8:30" in expected  # the English locale's own format
    # Chinese residents read the same moment as their locale writes it.
    chinese = _asks_for_staff(assistant, user="zhao", language="zh_Hans")
    zh = assistant.catalogs.translator("zh_Hans")
    assert zh("Staff are not at work now. Someone will reply from {time}.",
              time=zh.datetime(MONDAY_0830)) in chinese.text
    assert "11月30日" in chinese.text
    # The messages wait in the queue for Monday; one who wrote nothing yet waits too.
    resident.send("The lift is stuck again")
    queue = logged_in(app, "sam").get("/handover").text
    assert "The lift is stuck again" in queue and "no message yet" in queue
    assert "answered" not in queue


def test_the_resident_goes_back_to_the_assistant_with_the_button(assistant):
    at(assistant, TUESDAY_10AM)
    resident = _asks_for_staff(assistant, language="en")
    resident.send("Is anyone there?")
    resident.press("Back to the assistant")
    assert resident.state()[:2] == ("menu", "main")
    assert "You are back with the assistant." in resident.text


def test_talk_to_human_in_free_text_starts_a_handover_and_messages_skip_the_nlu(config, db):
    assistant = Assistant(config, db, understander=UnsureUnderstander({
        "I want to talk to a person": ("talk_to_human", 0.93)}))
    at(assistant, TUESDAY_10AM)
    resident = Chat(assistant, "ann")
    resident.onboard("en")
    resident.send("I want to talk to a person")
    assert resident.state()[:2] == ("handover", "waiting")
    resident.send("The heating in flat 301 has been off since Monday")
    assert resident.text == "Sent to the staff."
    with db.session() as session:
        turn = session.execute(select(Turn).where(Turn.flow == "handover", Turn.direction == "in")
                               ).scalar_one()
        assert turn.text.startswith("The heating") and turn.intent is None  # not in the inbox


def test_a_telegram_resident_s_answer_waits_in_the_outbox_for_linli_serve(app, config, db):
    assistant = Assistant(config, db, channels=installed_channels())
    at(assistant, TUESDAY_10AM)
    resident = Chat(assistant, "4242", channel="telegram")
    resident.onboard("ug")
    resident.press_payload("menu:staff")
    resident.send("ئىسسىق سۇ يوق")
    resident_id = _resident_id(resident)
    staff = logged_in(app, "sam")
    staff.get(f"/handover/{resident_id}")
    staff.post(f"/handover/{resident_id}/answer", {"answer": "بۈگۈن كەچتە ئوڭشايمىز"})
    with db.session() as session:
        row = session.execute(select(OutboxMessage).where(
            OutboxMessage.kind == "staff-answer")).scalar_one()
        assert (row.channel, row.chat_id, row.status) == ("telegram", "4242", "pending")
        assert row.payload["language"] == "ug" and row.payload["rtl"]
        assert row.payload["buttons"] == [["ياردەمچىگە قايتىش", "menu"]]
        # The button works when tapped: it is what the resident is offered now.
        assert resident.resident(session).offered == ["menu"]


def test_only_staff_answer_and_hand_back_and_only_with_the_csrf_token(app, db, assistant):
    at(assistant, TUESDAY_10AM)
    resident = _asks_for_staff(assistant)
    resident.send(QUESTION)
    resident_id = _resident_id(resident)

    viewer = logged_in(app, "vic")
    page = viewer.get(f"/handover/{resident_id}").text
    assert "我家厨房水管漏水" in page and "13812345678" not in page  # masked for viewers
    assert 'action="/handover/' not in page
    assert viewer.get("/handover").status_code == 200
    for path in (f"/handover/{resident_id}/answer", f"/handover/{resident_id}/hand-back"):
        assert viewer.post(path, {"answer": ANSWER}).status_code == 403
    visitor = StaffClient(app)
    for path in ("/handover", f"/handover/{resident_id}"):
        assert visitor.get(path).headers["location"].startswith("/login")
    staff = logged_in(app, "sam")
    for data in ({"answer": ANSWER}, {"answer": ANSWER, "csrf_token": "forged"}):
        assert staff.post(f"/handover/{resident_id}/answer", data, csrf=False).status_code == 403
        assert staff.post(f"/handover/{resident_id}/hand-back", data,
                          csrf=False).status_code == 403
    # An empty answer is refused, and nobody who is not waiting can be answered.
    staff.get("/handover")
    staff.post(f"/handover/{resident_id}/answer", {"answer": "   "})
    assert "The answer is empty." in staff.get(f"/handover/{resident_id}").text
    with db.session() as session:
        assert session.execute(select(OutboxMessage)).scalars().all() == []
        assert session.execute(select(AuditEntry).where(
            AuditEntry.action.like("handover.%"))).scalars().all() == []
    assert resident.state()[:2] == ("handover", "waiting")
    other = Chat(assistant, "wu")
    other.onboard("en")
    staff.post(f"/handover/{_resident_id(other)}/answer", {"answer": "hello"})
    assert "This resident is not waiting for staff." in staff.get("/handover").text
