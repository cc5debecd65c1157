"""The console's notices and consultations pages over HTTP: roles, CSRF, the audit log, a notice
written and published from the console reaching a terminal resident, a consultation created,
opened, voted in through the core, closed, and its results page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.console.models import AuditEntry
from bot.models import Notice, OutboxMessage, Poll, Resident, utcnow
from bot.services import notices as notice_service
from tests.conftest import LANGUAGES, Chat, TerminalSession
from tests.console_helpers import StaffClient, add_staff, console, logged_in
from tests.test_console_browser import browser, log_in, screenshot, served  # noqa: F401

TOPIC = "elderly_care"
NOTICE_FORM = {
    "topic": TOPIC, "expires": "",
    "title_zh_Hans": "重阳节老人体检", "summary_zh_Hans": "10月11日社区医院免费体检。",
    "body_zh_Hans": "65岁以上居民可以带身份证到社区医院体检。",
    "title_en": "Free check-ups for older residents",
    "summary_en": "Free check-ups at the community clinic on 11 October.",
    "body_en": "Residents over 65 can bring their ID card to the clinic.",
}


@pytest.fixture
def app(config, db):
    add_staff(db, "ada", "admin")
    add_staff(db, "sam", "staff")
    add_staff(db, "vic", "viewer")
    return console(config, db)


def _audit(db, action: str) -> list[AuditEntry]:
    with db.session() as session:
        return list(session.execute(
            select(AuditEntry).where(AuditEntry.action == action)).scalars())


def _notice_id(response) -> int:
    assert response.status_code == 303, response.text
    return int(re.fullmatch(r"/notices/(\d+)", response.headers["location"]).group(1))


def _subscribe(assistant, user: str, language: str, channel: str = "terminal") -> Chat:
    resident = Chat(assistant, user, channel)
    resident.onboard(language)
    with assistant.db.session() as session:
        notice_service.subscribe(session, resident.resident(session), TOPIC)
    return resident


def test_notices_and_polls_pages_keep_to_the_roles(app, db):
    staff = logged_in(app, "sam")
    staff.get("/notices/new")
    notice_id = _notice_id(staff.post("/notices", NOTICE_FORM))
    viewer = logged_in(app, "vic")
    for path in ("/notices", f"/notices/{notice_id}", f"/notices/{notice_id}/progress.json",
                 "/polls"):
        assert viewer.get(path).status_code == 200, path
    page = viewer.get(f"/notices/{notice_id}").text
    assert f'action="/notices/{notice_id}/publish"' not in page
    for path in ("/notices/new", "/polls/new"):
        assert viewer.get(path).status_code == 403, path
    for path in ("/notices", f"/notices/{notice_id}/publish", "/polls", "/polls/1/open",
                 "/polls/1/close"):
        assert viewer.post(path, NOTICE_FORM).status_code == 403, path
    with db.session() as session:
        assert session.get(Notice, notice_id).published_at is None
        assert len(list(session.execute(select(Notice)).scalars())) == 1
    visitor = StaffClient(app)
    for path in ("/notices", "/polls", f"/notices/{notice_id}/progress.json"):
        response = visitor.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_publishing_needs_the_csrf_token(app, db):
    staff = logged_in(app, "sam")
    staff.get("/notices/new")
    notice_id = _notice_id(staff.post("/notices", NOTICE_FORM))
    for data in ({}, {"csrf_token": "forged"}):
        assert staff.post(f"/notices/{notice_id}/publish", data, csrf=False).status_code == 403
    assert staff.post("/notices", NOTICE_FORM, csrf=False).status_code == 403
    assert staff.post("/polls", {}, csrf=False).status_code == 403
    with db.session() as session:
        assert session.get(Notice, notice_id).published_at is None
    assert _audit(db, "notice.publish") == []


def test_a_notice_form_flags_missing_translations_and_refuses_half_written_ones(app, db):
    staff = logged_in(app, "sam")
    form = staff.get("/notices/new").text
    for language in LANGUAGES:
        assert f'name="title_{language}"' in form and f'name="body_{language}"' in form
    no_default = {k: v for k, v in NOTICE_FORM.items() if not k.endswith("zh_Hans")}
    response = staff.post("/notices", no_default)
    assert response.status_code == 400
    assert "The default language (zh_Hans) is required." in response.text
    assert NOTICE_FORM["title_en"] in response.text  # what was typed is kept
    half = {**NOTICE_FORM, "title_mn": "Эрүүл мэндийн үзлэг"}
    response = staff.post("/notices", half)
    assert response.status_code == 400 and "mn: fill in every field" in response.text

    notice_id = _notice_id(staff.post("/notices", NOTICE_FORM))
    page = staff.get(f"/notices/{notice_id}").text
    missing = re.search(r'id="missing">(.*?)</p>', page).group(1)
    for name in ("繁體中文", "Монгол", "བོད་ཡིག", "ئۇيغۇرچە"):
        assert name in missing
    assert "English" not in missing and "简体中文" not in missing
    assert "Saved as a draft." in page
    listing = staff.get("/notices").text
    assert NOTICE_FORM["title_zh_Hans"] in listing and "draft" in listing
    [entry] = _audit(db, "notice.add")
    assert entry.actor == "sam" and entry.target == f"notice:{notice_id}"


def test_a_notice_published_in_the_console_reaches_a_terminal_resident(app, db, assistant):
    _subscribe(assistant, "lin", "en")
    _subscribe(assistant, "tg-1", "zh_Hans", channel="telegram")
    staff = logged_in(app, "sam")
    staff.get("/notices/new")
    notice_id = _notice_id(staff.post("/notices", NOTICE_FORM))
    staff.get(f"/notices/{notice_id}")
    response = staff.post(f"/notices/{notice_id}/publish")
    assert response.status_code == 303
    page = staff.get(f"/notices/{notice_id}").text
    assert "Published: 2 of 2 subscriber(s) queued now." in page
    assert f'data-progress="/notices/{notice_id}/progress.json"' in page
    assert "/static/progress.js" in page

    progress = staff.get(f"/notices/{notice_id}/progress.json").json()
    assert progress["channels"]["terminal"] == {"sent": 0, "pending": 1, "failed": 0,
                                                "unconfirmed": 0}
    assert progress["channels"]["telegram"]["pending"] == 1  # for the running `linli serve`
    assert progress["total"]["pending"] == 2

    told = TerminalSession(assistant, "lin").send("/menu")
    assert "New notice: Free check-ups for older residents" in told
    assert NOTICE_FORM["summary_en"] in told
    progress = staff.get(f"/notices/{notice_id}/progress.json").json()
    assert progress["channels"]["terminal"]["sent"] == 1
    assert progress["channels"]["telegram"]["pending"] == 1

    # Publishing again sends nobody anything twice; the audit log keeps both actions.
    staff.post(f"/notices/{notice_id}/publish")
    with db.session() as session:
        rows = session.execute(select(OutboxMessage).where(
            OutboxMessage.kind == "notice")).scalars().all()
        assert len(rows) == 2
    entries = _audit(db, "notice.publish")
    assert [e.detail["queued"] for e in entries] == [2, 0]
    assert "notice.publish" in logged_in(app, "ada").get("/audit").text


def _poll_form(closes: datetime) -> dict:
    return {
        "question_zh_Hans": "东门要不要装新路灯？", "background_zh_Hans": "居民反映东门晚上太暗。",
        "question_en": "Should the east gate get new lights?",
        "background_en": "Residents say the east gate is too dark at night.",
        "option1_zh_Hans": "安装", "option1_en": "Yes, install them",
        "option2_zh_Hans": "不装", "option2_en": "No, not needed",
        "closes": f"{closes:%Y-%m-%dT%H:%M}", "buildings": "", "allow_change": "1",
    }


def test_a_consultation_created_opened_voted_and_closed_with_its_results(app, db, assistant,
                                                                        config):
    staff = logged_in(app, "sam")
    staff.get("/polls/new")
    closes = (utcnow() + timedelta(days=3)).replace(second=0, microsecond=0)
    bad = {**_poll_form(closes), "option2_en": ""}
    response = staff.post("/polls", bad)
    assert response.status_code == 400 and "Option 2: missing in en" in response.text
    response = staff.post("/polls", {**_poll_form(closes), "option1_zh_Hans": "",
                                     "option1_en": ""})
    assert response.status_code == 400 and "2 to 9 options" in response.text

    response = staff.post("/polls", _poll_form(closes))
    assert response.status_code == 303
    poll_id = int(response.headers["location"].rsplit("/", 1)[1])
    with db.session() as session:
        poll = session.get(Poll, poll_id)
        assert poll.status == "draft" and poll.allow_change
        assert [o["text"]["en"] for o in poll.options] == ["Yes, install them", "No, not needed"]
        assert sorted(poll.texts) == ["en", "zh_Hans"]
    staff.get(f"/polls/{poll_id}")
    staff.post(f"/polls/{poll_id}/open")
    with db.session() as session:
        assert session.get(Poll, poll_id).status == "open"

    voters = []
    for user, language, choice in (("v1", "en", "Yes, install them"),
                                   ("v2", "zh_Hans", "安装"), ("v3", "en", "No, not needed")):
        resident = Chat(assistant, user)
        resident.onboard(language)
        resident.press_payload("menu:polls")
        resident.press_payload(f"poll:{poll_id}")
        resident.press(choice)
        assert resident.t("Thank you. Your vote is counted.") in resident.text
        voters.append(resident)

    page = staff.get(f"/polls/{poll_id}").text  # open: turnout only, no counts
    assert 'id="turnout-only"' in page and "(3 of " in page
    assert not re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", page)
    assert 'id="result-chart"' not in page

    response = staff.post(f"/polls/{poll_id}/close")
    assert response.status_code == 303
    page = staff.get(f"/polls/{poll_id}").text
    assert "Closed: results queued for 3 participant(s)." in page
    counts = dict(re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", page))
    assert counts == {"Yes, install them": "2", "No, not needed": "1"}
    assert '<svg class="bars" id="result-chart"' in page and "2 (67%)" in page
    assert staff.get(f"/polls/{poll_id}/progress.json").json()["total"]["pending"] == 3
    told = TerminalSession(assistant, "v1").send("/menu")
    assert "Yes, install them" in told and "2" in told
    assert staff.get(f"/polls/{poll_id}/progress.json").json()["total"]["sent"] == 1
    assert [e.action for e in _audit(db, "poll.add") + _audit(db, "poll.open")
            + _audit(db, "poll.close")] == ["poll.add", "poll.open", "poll.close"]
    with db.session() as session:
        assert session.get(Poll, poll_id).status == "closed"
        assert session.execute(select(Resident)).scalars().all()


def test_the_console_pages_speak_chinese_to_chinese_staff(app, db):
    add_staff(db, "zhang", "staff", language="zh_Hans")
    staff = logged_in(app, "zhang")
    assert "撰写通知" in staff.get("/notices").text
    assert "创建征询" in staff.get("/polls").text
    assert "人工服务" in staff.get("/handover").text


def test_a_draft_is_edited_until_it_is_published(app, db):
    staff = logged_in(app, "sam")
    staff.get("/notices/new")
    notice_id = _notice_id(staff.post("/notices", NOTICE_FORM))
    form = staff.get(f"/notices/{notice_id}/edit").text
    assert NOTICE_FORM["body_en"] in form and f'action="/notices/{notice_id}/edit"' in form
    changed = {**NOTICE_FORM, "title_mn": "Ахмадын үзлэг", "summary_mn": "Үнэгүй үзлэг.",
               "body_mn": "65-аас дээш насны оршин суугчид."}
    assert _notice_id(staff.post(f"/notices/{notice_id}/edit", changed)) == notice_id
    with db.session() as session:
        assert sorted(session.get(Notice, notice_id).texts) == ["en", "mn", "zh_Hans"]
    assert "Монгол" not in re.search(r'id="missing">(.*?)</p>',
                                     staff.get(f"/notices/{notice_id}").text).group(1)
    staff.post(f"/notices/{notice_id}/publish")
    assert staff.get(f"/notices/{notice_id}/edit").status_code == 409
    assert staff.post(f"/notices/{notice_id}/edit", NOTICE_FORM).status_code == 409
    with db.session() as session:
        assert "mn" in session.get(Notice, notice_id).texts
    assert [e.action for e in _audit(db, "notice.edit")] == ["notice.edit"]
    assert logged_in(app, "vic").get(f"/notices/{notice_id}/edit").status_code == 403


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
def test_the_push_progress_updates_itself_in_the_browser(config, db, assistant,
                                                         browser):  # noqa: F811 (fixture)
    """Chromium: publish from the page, then the table follows the outbox without a reload."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _subscribe(assistant, "lin", "en")
    add_staff(db, "zhang", "staff", language="zh_Hans")
    app = console(config, db)
    staff = logged_in(app, "zhang")
    staff.get("/notices/new")
    notice_id = _notice_id(staff.post("/notices", NOTICE_FORM))

    def cell(status: str) -> str:
        return browser.find_element(
            By.CSS_SELECTOR, f'tr[data-channel="terminal"] td[data-status="{status}"]').text

    with served(app) as base:
        log_in(browser, base, "zhang")
        browser.get(f"{base}/notices/{notice_id}")
        browser.find_element(By.CSS_SELECTOR, f'form[action="/notices/{notice_id}/publish"] '
                                              "button").click()
        WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "progress"))
        assert cell("pending") == "1" and cell("sent") == "0"
        TerminalSession(assistant, "lin").send("/menu")  # the resident takes the notice
        WebDriverWait(browser, 10).until(lambda d: cell("sent") == "1")
        assert cell("pending") == "0"
        assert "推送进度" in browser.page_source
        screenshot(browser, "notice-progress")
