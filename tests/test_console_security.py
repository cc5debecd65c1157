"""The console under attack: forged proxy headers, huge bodies, odd input on every route,
hostile Open311 text, what viewers see of phones and addresses, and staff accounts."""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from ipaddress import ip_network

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.console.models import LoginAttempt
from bot.models import Request
from tests.conftest import Chat
from tests.console_helpers import CSRF, PASSWORD, StaffClient, add_staff, console, logged_in, served

OPEN311_KEY = "city-key-0123456789"


@pytest.fixture
def staffed(db):
    add_staff(db, "ada", "admin")
    add_staff(db, "sam", "staff")
    add_staff(db, "vic", "viewer")
    return db


def _with_console(config, **changes):
    return dataclasses.replace(config, console=dataclasses.replace(config.console, **changes))


def _http_login(http: httpx.Client, name: str, password: str, forwarded: str | None = None):
    """Logs in over real HTTP as a browser would (the login page first, for its token)."""
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    page = http.get("/login", headers=headers)
    token = CSRF.search(page.text).group(1)
    return http.post("/login", data={"name": name, "password": password, "next": "/",
                                     "csrf_token": token}, headers=headers)


# --- 1. login throttling and forwarded headers -----------------------------------------------
def test_a_forged_forwarded_for_does_not_dodge_login_throttling(config, staffed):
    with served(console(config, staffed)) as address, \
            httpx.Client(base_url=address) as http:
        for i in range(12):
            wrong = _http_login(http, "sam", "wrong password!", forwarded=f"203.0.113.{i}")
            assert wrong.status_code in (401, 429)
        right = _http_login(http, "sam", PASSWORD, forwarded="198.51.100.7")
        assert right.status_code == 429, "logged in after 12 wrong passwords"
    with staffed.session() as session:
        seen = set(session.execute(select(LoginAttempt.ip)).scalars())
    assert seen == {"127.0.0.1"}


def test_forwarded_headers_count_only_from_a_trusted_proxy_and_only_its_own_hop(config, staffed):
    behind = _with_console(config, trusted_proxies=(ip_network("127.0.0.1/32"),))
    with served(console(behind, staffed)) as address, \
            httpx.Client(base_url=address) as http:
        # The proxy appends the real client (192.0.2.50); the client forged the hops before.
        for i in range(6):
            _http_login(http, "sam", "wrong password!", forwarded=f"203.0.113.{i}, 192.0.2.50")
        assert _http_login(http, "sam", PASSWORD,
                           forwarded="198.51.100.7, 192.0.2.50").status_code == 429
        # Another real client behind the same proxy is not blocked.
        assert _http_login(http, "sam", PASSWORD, forwarded="192.0.2.51").status_code == 303
    with staffed.session() as session:
        seen = set(session.execute(select(LoginAttempt.ip)).scalars())
    assert seen == {"192.0.2.50", "192.0.2.51"}


def test_the_session_cookie_is_secure_over_https_through_a_trusted_proxy_only(config, staffed):
    behind = _with_console(config, trusted_proxies=(ip_network("10.0.0.0/8"),))
    app = console(behind, staffed)

    def cookie(client_ip: str) -> str:
        """The session cookie set with the login page (it carries the form's token)."""
        http = TestClient(app, base_url="http://127.0.0.1", client=(client_ip, 4000))
        page = http.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert page.status_code == 200
        return page.headers["set-cookie"].lower()

    assert "secure" in cookie("10.1.2.3")  # our proxy says the browser used https
    assert "secure" not in cookie("192.0.2.9")  # anyone else saying so is not believed
    always = console(_with_console(config, secure_cookie=True), staffed)
    response = StaffClient(always).login("sam")
    assert "secure" in response.headers["set-cookie"].lower()


# --- 3. request body limits ----------------------------------------------------------------
def _raw_response(sock: socket.socket, wait: float) -> bytes:
    sock.settimeout(wait)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    return data


@pytest.mark.parametrize("path", ["/login", "/open311/v2/requests.json"])
def test_oversized_bodies_get_413_before_they_are_read(config, staffed, path):
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n")
    with served(console(config, staffed)) as address:
        port = int(address.rsplit(":", 1)[1])
        # A 100 MB Content-Length: refused on the headers alone, nothing of it is sent.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            started = time.monotonic()
            sock.sendall((head + "Content-Length: 104857600\r\n\r\nname=a").encode())
            answer = _raw_response(sock, 5)
            assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
            assert time.monotonic() - started < 3
        # A chunked body is counted as it streams: stopped past 1 MB, never read to its end.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
            chunk = b"a" * 65536
            sent = 0
            try:
                while sent < 3 * 1024 * 1024:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
            except OSError:
                pass  # the server hung up on us: what we want
            answer = _raw_response(sock, 5)
            assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
        # An ordinary form still works.
        with httpx.Client(base_url=address) as http:
            assert _http_login(http, "sam", PASSWORD).status_code == 303


# --- 4. odd input ----------------------------------------------------------------------------
HUGE = "9" * 20


@pytest.fixture
def admin(config, staffed, monkeypatch):
    monkeypatch.setenv("LINLI_OPEN311_API_KEYS", OPEN311_KEY)
    app = console(config, staffed)
    return app, logged_in(app, "ada")


def test_odd_input_named_in_the_probe_gets_a_short_4xx(admin):
    app, ada = admin
    http = TestClient(app, base_url="http://127.0.0.1")
    assert http.head("/login").status_code == 200
    for start in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"):
        response = http.get("/open311/v2/requests.json", params={"start_date": start})
        assert response.status_code == 400, start
        assert "start_date" in response.json()[0]["description"]
    response = ada.get("/conversations?from=0001-01-01")
    assert response.status_code == 400 and "YYYY-MM-DD" in response.text
    assert ada.get("/conversations?to=9999-12-31").status_code == 400
    for path in (f"/conversations/{HUGE}", f"/polls/{HUGE}", f"/handover/{HUGE}",
                 f"/nlu/exports/{HUGE}", f"/notices/{HUGE}", f"/media/turn/{HUGE}"):
        response = ada.get(path)
        assert response.status_code == 404, path
        assert "Not found." in response.text
    for path in ("/audit", "/conversations/1"):
        assert ada.get(f"{path}?page={HUGE}").status_code == 404, path
    assert ada.get("/requests?status=%00").status_code == 400


_ODD_TEXT = st.one_of(
    st.sampled_from(["9" * 20, str(2**31), str(2**63), "-1", "0", "0001-01-01", "9999-12-31",
                     "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-02-30",
                     "NaN", "1e309", "", "\x00", "%00", "\u202e", "..", "../../etc/passwd",
                     "R-", "１２３", "٣", "true", "[]", "null"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=30),
)


def _fill(path: str, value: str) -> str:
    from urllib.parse import quote

    return re.sub(r"\{[^}]+\}", lambda m: quote(value, safe="") or "x", path)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_route_answers_odd_values_with_a_server_error(admin, data):
    app, ada = admin
    routes = [r.path for r in app.state.console_routes] + [
        "/open311/v2/services.json", "/open311/v2/services/{code}.json",
        "/open311/v2/requests.json", "/open311/v2/requests/{id}.json"]
    names = ["page", "from", "to", "days", "status", "category", "department", "language",
             "intent", "low", "fallback", "handover", "overdue", "next", "start_date",
             "end_date", "service_code", "service_request_id", "extensions", "api_key"]
    path = _fill(data.draw(st.sampled_from(routes)), data.draw(_ODD_TEXT))
    query = {name: data.draw(_ODD_TEXT) for name in data.draw(
        st.lists(st.sampled_from(names), max_size=4, unique=True))}
    response = ada.http.get(path, params=query, follow_redirects=False)
    assert response.status_code < 500, (path, query, response.text[:300])


# --- 6. Open311 text -----------------------------------------------------------------------
def test_open311_text_loses_bidi_overrides_and_control_characters(admin, staffed):
    app, _ = admin
    http = TestClient(app, base_url="http://127.0.0.1")
    hostile = "Lift\u202e kaerb\u0000 \u200bnow\u2066\x1b[31m\u2069"
    response = http.post("/open311/v2/requests.json", data={
        "api_key": OPEN311_KEY, "service_code": "facility_repair",
        "description": hostile, "address_string": "Gate\u202e 3\u0007"})
    assert response.status_code == 200, response.text
    number = response.json()[0]["service_request_id"]
    with staffed.session() as session:
        row = session.execute(select(Request).where(Request.tracking_number == number)
                              ).scalar_one()
        stored = row.description + row.location_text
    assert stored == "Lift kaerb now[31m" + "Gate 3"
    for ch in ("\u202e", "\u0000", "\u200b", "\u2066", "\u2069", "\x1b", "\x07"):
        assert ch not in stored


# --- 2. what viewers see -------------------------------------------------------------------
PHONES = ("13812345678", "138.1234.5678", "138/1234/5678", "+86 138 1234 5678",
          "１３８１２３４５６７８", "一三八一二三四五六七八", "138-1234-5678", "139 8765 4321")
HOME = "幸福路18号5号楼2单元301"


def _viewer_paths(app, number: str, resident_id: int) -> list[str]:
    paths = []
    for route in app.state.console_routes:
        if route.role == "viewer" and "GET" in route.methods:
            paths.append(route.path.replace("{tracking_number}", number)
                         .replace("{resident_id:int}", str(resident_id))
                         .replace("{item_id:int}", "1").replace("{export_id:int}", "1"))
    return paths


def test_viewers_see_no_phone_or_address_on_any_page(assistant, config, staffed):
    app = console(config, staffed)
    lin = Chat(assistant, "lin")
    lin.onboard("zh_Hans")
    number = lin.file_request("facility_repair", f"电梯坏了，电话{PHONES[1]}或{PHONES[2]}", HOME)
    lin.send(f"请打{PHONES[6]}，我住{HOME}")
    with staffed.session() as session:
        row = lin.resident(session)
        row.phone, row.address, resident_id = PHONES[0], HOME, row.id
    sam = logged_in(app, "sam")
    sam.get(f"/requests/{number}")
    assert sam.post(f"/requests/{number}/status", {
        "status": "accepted", "note": f"已联系 {PHONES[3]}，地址幸福路18号"}).status_code == 303
    lin.press_payload("menu:staff")
    lin.send(f"我的电话是{PHONES[5]}，备用{PHONES[7]}")
    sam.get(f"/handover/{resident_id}")
    assert sam.post(f"/handover/{resident_id}/answer",
                    {"answer": f"好的，我们打{PHONES[4]}联系您，到5号楼2单元301"}
                    ).status_code == 303

    seen_by_staff = "".join(sam.get(p).text for p in _viewer_paths(app, number, resident_id))
    for phone in PHONES:
        assert phone in seen_by_staff, phone  # the test put every form where a page shows it
    vic = logged_in(app, "vic")
    for path in _viewer_paths(app, number, resident_id):
        page = vic.get(path)
        assert page.status_code in (200, 404), path
        for phone in PHONES:
            assert phone not in page.text, (path, phone)
        for fragment in ("12345678", "1234 5678", "5678", "五六七八", "４５６７８", "4321"):
            assert fragment not in page.text, (path, fragment)
        for fragment in ("幸福路18号", "2单元301", "5号楼"):
            assert fragment not in page.text, (path, fragment)
    transcript = vic.get(f"/conversations/{resident_id}").text
    assert "电梯坏了" in transcript and "•••" in transcript  # the rest of the words stay


# --- 5. accounts -----------------------------------------------------------------------------
def _audit_actions(db, actor: str) -> list[tuple[str, str]]:
    from bot.console.models import AuditEntry

    with db.session() as session:
        return [(e.action, e.target) for e in session.execute(
            select(AuditEntry).where(AuditEntry.actor == actor, AuditEntry.action.like("staff.%"))
            .order_by(AuditEntry.id)).scalars()]


def test_an_admin_disables_enables_and_resets_accounts_in_the_console(config, staffed):
    app = console(config, staffed)
    ada, sam = logged_in(app, "ada"), logged_in(app, "sam")
    page = ada.get("/staff")
    assert page.status_code == 200
    assert re.search(r'id="account-sam">.*?class="account-status">active<', page.text,
                     re.DOTALL)
    assert sam.get("/staff").status_code == 403
    assert logged_in(app, "vic").post("/staff/sam/disable").status_code == 403
    assert ada.post("/staff/sam/disable", {"csrf_token": "forged"}).status_code == 403
    assert sam.get("/").status_code == 200  # none of those did anything

    assert ada.post("/staff/sam/disable").status_code == 303
    assert "sam is disabled; their sessions have ended." in ada.get("/staff").text
    assert sam.get("/").status_code == 303  # the open session has ended
    assert StaffClient(app, ip="10.0.0.1").login("sam").status_code == 401
    assert ada.post("/staff/sam/enable").status_code == 303
    sam = logged_in(app, "sam")

    new = "plum kettle orbit seven"
    refused = {"Sam12345678": "name", "SAM": "10 to 200", "password2024!": "too common",
               "qwertyuiop": "too common", "woaini1314520": "too common"}
    for weak in ("password2024!", "woaini1314520", "qwertyuiop"):
        assert ada.post("/staff/sam/password", {"password": weak, "again": weak}
                        ).status_code == 303
        assert "too common or too simple" in ada.get("/staff").text, weak
    assert ada.post("/staff/sam/password", {"password": new, "again": new + "x"}
                    ).status_code == 303
    assert "The two passwords differ." in ada.get("/staff").text
    assert sam.get("/").status_code == 200  # still the old password and session
    assert ada.post("/staff/sam/password", {"password": new, "again": new}).status_code == 303
    assert sam.get("/").status_code == 303
    assert StaffClient(app, ip="10.0.0.2").login("sam").status_code == 401
    assert StaffClient(app, ip="10.0.0.3").login("sam", new).status_code == 303
    # The last admin cannot lock everyone out.
    assert ada.post("/staff/ada/disable").status_code == 303
    assert "the last active admin cannot be disabled" in ada.get("/staff").text
    assert _audit_actions(staffed, "ada") == [
        ("staff.disable", "sam"), ("staff.enable", "sam"), ("staff.reset_password", "sam")]
    with staffed.session() as session:
        from bot.console import auth

        for password, why in refused.items():
            with pytest.raises(auth.AccountError, match=why):
                auth.add_user(session, "sam12345678" if why == "name" else "sam2", password,
                              "staff", "en")


def test_linli_staff_disables_enables_lists_and_resets_passwords(env, config, staffed):
    from tests.conftest import run_cli

    app = console(config, staffed)
    sam = logged_in(app, "sam")
    done = run_cli(env, "staff", "disable", "sam")
    assert done.returncode == 0, done.stderr
    assert "sam disabled" in done.stdout
    assert sam.get("/").status_code == 303
    assert StaffClient(app, ip="10.0.0.4").login("sam").status_code == 401
    assert "sam\tstaff\ten\tdisabled" in run_cli(env, "staff", "list").stdout
    assert run_cli(env, "staff", "enable", "sam").returncode == 0
    assert "sam\tstaff\ten\tactive" in run_cli(env, "staff", "list").stdout
    weak = run_cli(env, "staff", "reset-password", "sam", input="Password123!\n")
    assert weak.returncode == 2 and "too common" in weak.stderr
    same = run_cli(env, "staff", "add-user", "maintenance", "--role", "staff",
                   input="MAINTENANCE\n")
    assert same.returncode == 2 and "account's name" in same.stderr
    same = run_cli(env, "staff", "add-user", "maintenance1", "--role", "staff",
                   input="Maintenance1\n")
    assert same.returncode == 2 and "account's name" in same.stderr
    sam = logged_in(app, "sam")
    reset = run_cli(env, "staff", "reset-password", "sam", input="plum kettle orbit seven\n")
    assert reset.returncode == 0, reset.stderr
    assert sam.get("/").status_code == 303
    assert StaffClient(app, ip="10.0.0.5").login("sam", "plum kettle orbit seven"
                                                 ).status_code == 303
    missing = run_cli(env, "staff", "disable", "nobody")
    assert missing.returncode == 2 and "no account named nobody" in missing.stderr
    assert run_cli(env, "staff", "disable", "ada").returncode == 2  # the last admin
    assert _audit_actions(staffed, "cli") == [
        ("staff.disable", "sam"), ("staff.enable", "sam"), ("staff.reset_password", "sam")]


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
def test_the_console_keys_are_checked_and_named(tmp_path, env):
    from tests.test_config import broken

    def proxies(value):
        return lambda raw: raw["console"].update(trusted_proxies=value)

    assert "console.trusted_proxies[1]: 'proxy.example' is not an IP address" in broken(
        tmp_path, proxies(["127.0.0.1", "proxy.example"]))
    assert "console.trusted_proxies: must be a list" in broken(tmp_path, proxies("10.0.0.1"))
    assert "console.max_form_bytes: must be a number of bytes" in broken(
        tmp_path, lambda raw: raw["console"].update(max_form_bytes="1MB"))
    assert "console.max_upload: unknown key" in broken(
        tmp_path, lambda raw: raw["console"].update(max_upload=5))
    assert "web_chat.message_burst: must be a whole number, at least 1" in broken(
        tmp_path, lambda raw: raw["web_chat"].update(message_burst=0))
    assert "web_chat.messages_per_minute: must be a whole number" in broken(
        tmp_path, lambda raw: raw["web_chat"].update(messages_per_minute="30/min"))
    assert "web_chat.joins_per_minute: unknown key" in broken(
        tmp_path, lambda raw: raw["web_chat"].update(joins_per_minute=5))
