"""The staff console over HTTP: logins, roles on every route, CSRF, throttling, audit, masking,
the request queue and the resident being told, conversations, the dashboard."""

from __future__ import annotations

import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.config import PROJECT_ROOT
from bot.console import metrics
from bot.console.i18n import ZH_HANS
from bot.console.models import AuditEntry, LoginAttempt, NluLabel, StaffUser
from bot.core import Assistant
from bot.models import Attachment, Request, Resident
from bot.services import requests as service
from bot.wiring import installed_channels
from tests.conftest import Chat, TerminalSession, run_cli
from tests.console_helpers import (
    PASSWORD,
    StaffClient,
    UnsureUnderstander,
    add_staff,
    console,
    logged_in,
)


@pytest.fixture
def app(config, db):
    add_staff(db, "ada", "admin")
    add_staff(db, "sam", "staff")
    add_staff(db, "vic", "viewer")
    return console(config, db)


@pytest.fixture
def filed(assistant):
    """A resident on the terminal channel who has filed one request: (chat, tracking number)."""
    resident = Chat(assistant, "lin")
    resident.onboard("zh_Hans")
    number = resident.file_request("facility_repair", "5号楼电梯坏了，电话13812345678",
                                   "5号楼2单元")
    with assistant.db.session() as session:
        row = resident.resident(session)
        row.phone, row.address = "13812345678", "幸福路18号5号楼2单元301"
    return resident, number


def _example_path(route, number: str) -> str:
    return (route.path.replace("{tracking_number}", number)
            .replace("{kind}", "attachment").replace("{item_id:int}", "1")
            .replace("{resident_id:int}", "1").replace("{turn_id:int}", "1")
            .replace("{export_id:int}", "1"))


def _status(db, number: str) -> str:
    with db.session() as session:
        return service.find(session, number).status


def _audit_count(db) -> int:
    with db.session() as session:
        return session.execute(select(func.count(AuditEntry.id))).scalar_one()


def test_a_logged_out_visitor_gets_only_the_login_page(app, db, filed):
    _, number = filed
    visitor = StaffClient(app)
    guarded = [r for r in app.state.console_routes if r.role is not None]
    assert len(guarded) >= 15
    for route in guarded:
        path = _example_path(route, number)
        for method in route.methods:
            if method == "GET":
                response = visitor.get(path)
            else:
                response = visitor.post(path, {"status": "accepted", "intent": "greet",
                                               "department": "utilities_office"})
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login"), (method, path)
    assert visitor.get("/login").status_code == 200
    assert _status(db, number) == "submitted"


def test_a_viewer_reads_but_cannot_change_anything(app, db, filed):
    _, number = filed
    viewer = logged_in(app, "vic")
    before = _audit_count(db)
    for route in app.state.console_routes:
        if route.role in ("staff", "admin"):
            path = _example_path(route, number)
            for method in route.methods:
                response = (viewer.get(path) if method == "GET" else
                            viewer.post(path, {"status": "accepted", "intent": "greet",
                                               "department": "utilities_office",
                                               "duplicate_of": number}))
                assert response.status_code == 403, (method, path)
    for path in ("/", "/requests", f"/requests/{number}", "/conversations", "/nlu"):
        assert viewer.get(path).status_code == 200, path
    page = viewer.get(f"/requests/{number}").text
    assert 'action="/requests/' not in page  # no forms to change it
    assert _status(db, number) == "submitted"
    assert _audit_count(db) == before
    with db.session() as session:
        assert session.execute(select(func.count(NluLabel.id))).scalar_one() == 0


def test_only_admins_read_the_audit_log(app, filed):
    assert logged_in(app, "sam").get("/audit").status_code == 403
    page = logged_in(app, "ada").get("/audit")
    assert page.status_code == 200
    assert "login" in page.text and "ada" in page.text


def test_a_status_change_with_a_note_reaches_the_resident_and_the_audit_log(app, db, filed):
    resident, number = filed
    staff = logged_in(app, "sam")
    staff.get(f"/requests/{number}")
    response = staff.post(f"/requests/{number}/status",
                          {"status": "accepted", "note": "电工下午三点到"})
    assert response.status_code == 303
    assert _status(db, number) == "accepted"
    page = staff.get(f"/requests/{number}").text
    assert "Status changed." in page and "staff:sam" in page

    told = TerminalSession(resident.assistant, "lin").send("/menu")
    department = resident.assistant.config.department("property_office").names["zh_Hans"]
    assert resident.t("Your request {tracking_number} has been accepted by {department}.",
                      tracking_number=number, department=department) in told
    assert "电工下午三点到" in told

    with db.session() as session:
        entry = session.execute(select(AuditEntry).where(
            AuditEntry.action == "request.status")).scalar_one()
        assert (entry.actor, entry.target) == ("sam", number)
        assert entry.detail["from"] == "submitted" and entry.detail["to"] == "accepted"
    audit = logged_in(app, "ada").get("/audit").text
    assert "request.status" in audit and number in audit


def test_the_rules_of_the_service_hold_in_the_console(app, db, filed):
    _, number = filed
    staff = logged_in(app, "sam")
    staff.get(f"/requests/{number}")
    staff.post(f"/requests/{number}/status", {"status": "rejected"})  # no reason given
    assert _status(db, number) == "submitted"
    assert "needs a reason" in staff.get(f"/requests/{number}").text
    staff.post(f"/requests/{number}/status", {"status": "closed"})  # not from submitted
    assert _status(db, number) == "submitted"


def test_assign_a_department_and_mark_a_duplicate(app, db, assistant, filed):
    resident, number = filed
    other = resident.file_request("facility_repair", "电梯还是坏的", "5号楼")
    staff = logged_in(app, "sam")
    staff.get(f"/requests/{number}")
    staff.post(f"/requests/{number}/department", {"department": "residents_committee"})
    with db.session() as session:
        row = service.find(session, number)
        assert row.department_id == "residents_committee"
        assert [e.status for e in row.events] == ["submitted"]  # the resident's history unchanged
    staff.post(f"/requests/{other}/duplicate", {"duplicate_of": number})
    with db.session() as session:
        row = service.find(session, other)
        assert row.status == "duplicate"
        assert row.duplicate_of_id == service.find(session, number).id
    with db.session() as session:
        actions = [e.action for e in session.execute(select(AuditEntry)).scalars()]
    assert "request.department" in actions and actions.count("request.status") == 1


def test_forms_without_the_right_csrf_token_are_refused(app, db, filed):
    _, number = filed
    staff = logged_in(app, "sam")
    for data in ({"status": "accepted"}, {"status": "accepted", "csrf_token": "forged"}):
        response = staff.post(f"/requests/{number}/status", data, csrf=False)
        assert response.status_code == 403
    assert _status(db, number) == "submitted"
    # Another session's token does not work either.
    other = logged_in(app, "ada")
    response = staff.post(f"/requests/{number}/status",
                          {"status": "accepted", "csrf_token": other.token}, csrf=False)
    assert response.status_code == 403
    # Nor a login without one.
    fresh = StaffClient(app)
    response = fresh.post("/login", {"name": "sam", "password": PASSWORD}, csrf=False)
    assert response.status_code == 403


def test_logins_are_throttled_per_name_and_address_and_it_survives_a_restart(config, db, app):
    client = StaffClient(app)
    for _ in range(5):
        assert client.login("sam", "wrong password!").status_code == 401
    assert client.login("sam").status_code == 429  # even with the right password
    # Another address is not blocked for that name.
    assert StaffClient(app, ip="10.0.0.9").login("sam").status_code == 303
    # A new process (a new app on the same database) still refuses.
    restarted = console(config, db)
    assert StaffClient(restarted).login("sam").status_code == 429
    # Once the failures are older than 15 minutes, the right password works again.
    with db.session() as session:
        for attempt in session.execute(select(LoginAttempt)).scalars():
            attempt.at -= timedelta(minutes=16)
    assert StaffClient(restarted).login("sam").status_code == 303
    with db.session() as session:
        attempts = list(session.execute(select(LoginAttempt)).scalars())
    assert all(a.ip in ("testclient", "10.0.0.9") for a in attempts)


def test_unknown_names_and_disabled_accounts_get_the_same_refusal(app, db):
    with db.session() as session:
        session.execute(update(StaffUser).where(StaffUser.name == "vic").values(active=False))
    for name in ("nobody", "vic"):
        response = StaffClient(app).login(name)
        assert response.status_code == 401
        assert "Wrong name or password." in response.text


def test_the_session_cookie_is_httponly_lax_and_signed_with_a_private_key(config, app):
    client = StaffClient(app)
    client.get("/login")
    response = client.post("/login", {"name": "sam", "password": PASSWORD, "next": "/"})
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    key = Path(config.data_dir) / "console-secret"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # A tampered cookie is not a session.
    value = client.http.cookies.get("linli_console")
    client.http.cookies.clear()
    client.http.cookies.set("linli_console", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert client.get("/").status_code == 303


def test_logging_out_ends_the_session_even_for_a_copied_cookie(app):
    staff = logged_in(app, "sam")
    copied = staff.http.cookies.get("linli_console")
    assert staff.post("/logout").status_code == 303
    thief = StaffClient(app)
    thief.http.cookies.set("linli_console", copied)
    assert thief.get("/").status_code == 303


def test_next_after_login_stays_on_this_site(app):
    client = StaffClient(app)
    client.get("/login")
    response = client.post("/login", {"name": "sam", "password": PASSWORD,
                                      "next": "//evil.example/"})
    assert response.headers["location"] == "/"


def test_viewers_see_phones_and_addresses_masked(app, db, filed):
    _, number = filed
    with db.session() as session:
        resident_id = session.execute(select(Resident.id).where(
            Resident.channel_user_id == "lin")).scalar_one()
        session.execute(update(Request).values(latitude=39.9042, longitude=116.4074))
    viewer_page = logged_in(app, "vic").get(f"/requests/{number}").text
    staff_page = logged_in(app, "sam").get(f"/requests/{number}").text
    assert "13812345678" in staff_page and "幸福路18号5号楼2单元301" in staff_page
    assert "39.904200" in staff_page
    assert "13812345678" not in viewer_page and "幸福路18号" not in viewer_page
    assert "138" in viewer_page and "39.904200" not in viewer_page
    assert "5号楼2单元" not in viewer_page  # the request's place too
    transcript = logged_in(app, "vic").get(f"/conversations/{resident_id}").text
    assert "13812345678" not in transcript and "幸福路18号" not in transcript


def test_voice_notes_and_photos_are_served_only_to_staff_from_the_media_folder(
        app, config, db, filed):
    _, number = filed
    media = Path(config.data_dir) / "media" / "voice"
    media.mkdir(parents=True)
    (media / "note.ogg").write_bytes(b"OggS fake voice")
    with db.session() as session:
        request = service.find(session, number)
        good = Attachment(request_id=request.id, kind="voice", channel="telegram",
                          file_id="f1", path="media/voice/note.ogg", mime="audio/ogg",
                          duration=3.0)
        escape = Attachment(request_id=request.id, kind="photo", channel="telegram",
                            file_id="f2", path="media/../linli.db")
        session.add_all([good, escape])
        session.flush()
        good_id, escape_id = good.id, escape.id
    staff = logged_in(app, "sam")
    response = staff.get(f"/media/attachment/{good_id}")
    assert response.status_code == 200 and response.content == b"OggS fake voice"
    assert response.headers["content-type"] == "audio/ogg"
    assert f'src="/media/attachment/{good_id}"' in staff.get(f"/requests/{number}").text
    assert staff.get(f"/media/attachment/{escape_id}").status_code == 404
    assert logged_in(app, "vic").get(f"/media/attachment/{good_id}").status_code == 403
    assert StaffClient(app).get(f"/media/attachment/{good_id}").status_code == 303


def test_the_queue_filters_by_status_category_department_and_overdue(app, db, assistant):
    resident = Chat(assistant, "q")
    resident.onboard("en")
    lift = resident.file_request("facility_repair", "Lift broken", "Building 1")
    water = resident.file_request("utilities", "No water", "Building 2")
    with db.session() as session:
        service.change_status(session, water, "accepted", "staff:test")
        service.find(session, lift).due_at -= timedelta(days=30)
    staff = logged_in(app, "sam")

    def listed(query: str) -> set[str]:
        return set(re.findall(r"R-\d{6}", staff.get(f"/requests?{query}").text))

    assert listed("") == {lift, water}
    assert listed("status=accepted") == {water}
    assert listed("category=facility_repair") == {lift}
    assert listed("department=utilities_office") == {water}
    assert listed("overdue=1") == {lift}
    assert listed("status=closed") == set()


def test_conversations_filter_by_language_intent_and_confidence(config, db, app):
    nlu = UnsureUnderstander({"hello there": ("greet", 0.95)})
    assistant = Assistant(config, db, understander=nlu)
    en, zh = Chat(assistant, "en-1"), Chat(assistant, "zh-1")
    en.onboard("en")
    zh.onboard("zh_Hans")
    en.send("hello there")
    zh.send("那个事情怎么办")
    with db.session() as session:
        ids = {chat.user_id: chat.resident(session).id for chat in (en, zh)}
    staff = logged_in(app, "sam")

    def listed(query: str) -> set[int]:
        page = staff.get(f"/conversations?{query}").text
        return {int(i) for i in re.findall(r'href="/conversations/(\d+)"', page)}

    assert listed("") == set(ids.values())
    assert listed("language=en") == {ids["en-1"]}
    assert listed("intent=greet") == {ids["en-1"]}
    assert listed("fallback=1") == {ids["zh-1"]}
    assert listed("low=1") == {ids["zh-1"]}
    assert listed("from=2000-01-01&to=2000-01-02") == set()
    transcript = staff.get(f"/conversations/{ids['zh-1']}").text
    assert "那个事情怎么办" in transcript and "nlu_fallback 0.31" in transcript
    assert "greet 0.95" in staff.get(f"/conversations/{ids['en-1']}").text


def test_pages_follow_the_staff_members_language(config, db, app, filed):
    add_staff(db, "zhang", "staff", language="zh_Hans")
    page = logged_in(app, "zhang").get("/requests").text
    assert "诉求" in page and "编号" in page and "Tracking number" not in page
    assert '<html lang="zh-Hans">' in page
    english = logged_in(app, "sam").get("/requests").text
    assert "Tracking number" in english and "编号" not in english


def test_every_console_string_has_a_chinese_translation():
    used = set()
    pattern = re.compile(r'_\(\s*"((?:[^"\\]|\\.)*)"', re.DOTALL)
    for path in [*(PROJECT_ROOT / "bot" / "console" / "templates").glob("*.html"),
                 *(p for p in (PROJECT_ROOT / "bot" / "console").glob("*.py")
                   if p.name != "i18n.py")]:
        used |= {m for m in pattern.findall(path.read_text(encoding="utf-8"))}
    used |= {"admin", "staff", "viewer", "in", "out"}  # roles and directions, passed as values
    missing = sorted(u for u in used if u not in ZH_HANS)
    assert not missing, missing


def test_dashboard_figures_follow_docs_metrics(db, assistant, app):
    resident = Chat(assistant, "m")
    resident.onboard("en")
    numbers = [resident.file_request("facility_repair", f"Lift {i}", "B1") for i in range(4)]
    with db.session() as session:
        for number in numbers[:3]:
            service.change_status(session, number, "accepted", "staff:t")
            service.change_status(session, number, "resolved", "staff:t")
        row = session.execute(select(Resident).where(
            Resident.channel_user_id == "m")).scalar_one()
        service.rate(session, row, numbers[0], 5, reopen=False)
        service.rate(session, row, numbers[1], 2, reopen=False)
        late = service.find(session, numbers[2])
        late.due_at = late.resolved_at - timedelta(hours=1)
        service.change_status(session, numbers[3], "duplicate", "staff:t",
                              duplicate_of=numbers[0])
    with db.session() as session:
        figures = metrics.compute(session, days=30)
    assert figures.requests == 4
    assert (figures.resolution.part, figures.resolution.whole) == (3, 3)  # duplicate left out
    assert (figures.response.part, figures.response.whole) == (3, 3)
    assert (figures.satisfaction.part, figures.satisfaction.whole) == (1, 2)
    assert (figures.compliance.part, figures.compliance.whole) == (2, 3)
    assert figures.median_hours_to_resolve is not None and figures.median_hours_to_resolve < 1
    assert figures.messages_by_language["en"] > 0
    page = logged_in(app, "vic").get("/?days=30").text
    assert 'id="over-time"' in page and 'id="by-category"' in page
    assert "100%" in page and "50%" in page and "67%" in page


def test_the_dashboard_shows_messages_that_did_not_reach_residents(db, config, app):
    """A reply Telegram refused for good, or one a crash interrupted, is counted for staff."""
    from bot.models import OutboxMessage
    from bot.services import outbox

    telegram = Assistant(config, db, channels=installed_channels())
    for user in ("301", "302", "303"):
        Chat(telegram, user, channel="telegram").onboard("zh_Hans")
    with db.session() as session:
        rows = session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
        chats = {}
        for row in rows:
            chats.setdefault(row.chat_id, []).append(row.id)
        outbox.claim(session, chats["301"][0])
        outbox.fail(session, chats["301"][0], "Forbidden")  # the resident blocked the bot
        outbox.claim(session, chats["302"][0])  # then the process died while sending it
    with db.session() as session:
        assert outbox.recover_interrupted(session, "telegram") == 1
        for row_id in chats["303"]:
            outbox.claim(session, row_id)
            outbox.mark_sent(session, row_id)
    with db.session() as session:
        figures = metrics.compute(session, days=30)
    waiting = len(rows) - len(chats["303"]) - 2
    assert figures.deliveries == {"sent": len(chats["303"]), "failed": 1, "unconfirmed": 1,
                                  "pending": waiting}
    page = logged_in(app, "vic").get("/?days=30").text
    assert f'<dd id="delivery-sent">{len(chats["303"])}</dd>' in page
    assert '<dd id="delivery-failed">1</dd>' in page
    assert '<dd id="delivery-unconfirmed">1</dd>' in page
    assert f'<dd id="delivery-pending">{waiting}</dd>' in page


def test_staff_add_user_reads_the_password_from_standard_input(env, db, config):
    done = run_cli(env, "staff", "add-user", "li.na", "--role", "staff",
                   input="a long enough password\n")
    assert done.returncode == 0, done.stderr
    assert "li.na (staff) added" in done.stdout
    short = run_cli(env, "staff", "add-user", "wu", "--role", "viewer", input="short\n")
    assert short.returncode == 2 and "10 to 200 characters" in short.stderr
    twice = run_cli(env, "staff", "add-user", "li.na", "--role", "admin",
                    input="a long enough password\n")
    assert twice.returncode == 2 and "already" in twice.stderr
    with db.session() as session:
        user = session.execute(select(StaffUser).where(StaffUser.name == "li.na")).scalar_one()
        assert user.password_hash.startswith("$argon2id$")
        assert "a long enough password" not in user.password_hash
    client = StaffClient(console(config, db))
    assert client.login("li.na", "a long enough password").status_code == 303
    listing = run_cli(env, "staff", "list")
    assert "li.na\tstaff" in listing.stdout


@pytest.mark.parametrize("command", ["console", "serve"])
def test_a_taken_port_is_one_clear_line_not_a_traceback(env, command):
    import socket

    assert run_cli(env, "db", "upgrade").returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli({k: v for k, v in env.items() if not k.startswith("LINLI_TELEGRAM")},
                         command, "--port", str(port), timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"the staff console could not listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
