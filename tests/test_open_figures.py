"""The public open figures (/open, /open.json, /open.csv): small cells hidden, nothing a
resident typed, rates as docs/metrics.md defines them, six languages, cacheable, no login."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone

import pytest
import yaml
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.channels.web import WebChannel
from bot.config import PROJECT_ROOT
from bot.console.open_counts import protect
from bot.i18n import Catalogs
from bot.keys import ballot_keys
from bot.models import Request, RequestEvent, utcnow
from bot.services import notices as notice_service
from bot.services import polls as poll_service
from bot.services import requests as service
from bot.specs import load_notice, load_poll
from bot.staff import StaffActions
from bot.wiring import installed_channels
from tests.conftest import Chat
from tests.console_helpers import add_staff, console, logged_in

EXAMPLES = PROJECT_ROOT / "docs" / "examples"
# What residents type, each distinctive enough to be found anywhere it leaks.
TYPED = ("MAGENTA-GIRAFFE lift", "铁锈斑马电梯", "Plum Orchard 9", "13912345678",
         "Wang Xiaoming", "OPINION-KIWI-42")


def public(app) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1")


def last_month(config) -> tuple[str, datetime]:
    """The month before this one in the community's time zone ("YYYY-MM"), and its 4th day
    at noon there, as naive UTC."""
    local = utcnow().replace(tzinfo=timezone.utc).astimezone(config.tz)
    first = date(local.year, local.month, 1) - timedelta(days=1)
    noon = datetime(first.year, first.month, 4, 12, tzinfo=config.tz)
    return f"{first:%Y-%m}", noon.astimezone(timezone.utc).replace(tzinfo=None)


def move_back(db, numbers, when: datetime) -> None:
    """Moves requests (and every time they carry) so that each was filed at `when`."""
    with db.session() as session:
        for number in numbers:
            row = service.find(session, number)
            delta = when - row.created_at
            for name in ("created_at", "updated_at", "due_at", "resolved_at", "closed_at",
                         "rated_at"):
                if getattr(row, name) is not None:
                    setattr(row, name, getattr(row, name) + delta)
            for event in session.execute(select(RequestEvent).where(
                    RequestEvent.request_id == row.id)).scalars():
                event.at += delta


def month_row(data: dict, month: str, grid: str | None) -> dict:
    found = next(m for m in data["months"] if m["month"] == month)
    if grid == "all":
        return found["all_grids"]
    return next(r for r in found["grids"] if r["grid"] == grid)


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


# --- hiding -------------------------------------------------------------------------------
def test_a_lone_small_cell_gets_a_complement_in_its_row_and_column():
    # Two grids x two categories, with totals: a single cell of 3 would be its row's total
    # minus 10, so 10 is hidden too; then its column has one hidden cell, and so on.
    values = {("a", "x"): 3, ("a", "y"): 10, ("a", "all"): 13,
              ("b", "x"): 7, ("b", "y"): 8, ("b", "all"): 15,
              ("all", "x"): 10, ("all", "y"): 18, ("all", "all"): 28}
    rows, cols = ("a", "b", "all"), ("x", "y", "all")
    lines = [[(r, c) for c in cols] for r in rows] + [[(r, c) for r in rows] for c in cols]
    hidden = protect(values, lines)
    assert hidden[("a", "x")] == "small"
    assert hidden[("a", "y")] == hidden[("b", "x")] == hidden[("b", "y")] == "complement"
    for line in lines:  # nothing can be had by subtraction in any row or column
        assert sum(cell in hidden for cell in line) != 1
    assert ("all", "all") not in hidden and ("a", "all") not in hidden


def test_a_poll_with_one_small_option_hides_the_next_smallest_too():
    hidden = protect({"a": 9, "b": 3, "c": 6, "all": 18}, [["a", "b", "c", "all"]])
    assert hidden == {"b": "small", "c": "complement"}
    assert protect({"a": 9, "b": 6, "all": 15}, [["a", "b", "all"]]) == {}


# --- through the core, the database and HTTP ----------------------------------------------
@pytest.fixture
def app(config, db):
    return console(config, db)


def test_a_small_cell_shows_less_than_5_and_nothing_a_resident_typed(
        config, db, assistant, app, tmp_path, env):
    month, when = last_month(config)
    wang = Chat(assistant, "wang")
    wang.onboard("en")
    numbers = [wang.file_request("facility_repair", f"{TYPED[0]} {i}", f"5号楼 {TYPED[2]}")
               for i in range(2)]
    numbers.append(wang.file_request("facility_repair", TYPED[1], "building 5"))
    with db.session() as session:
        resident = wang.resident(session)
        resident.phone, resident.address, resident.display_name = TYPED[3], TYPED[2], TYPED[4]
        resident.building = "5"
    move_back(db, numbers, when)
    # A closed consultation with an approved opinion, and a published notice.
    voters = [wang] + [Chat(assistant, f"voter{i}") for i in range(5)]
    for voter in voters[1:]:
        voter.onboard("zh_Hans")
    poll_yaml = yaml.safe_load((EXAMPLES / "poll.yml").read_text(encoding="utf-8"))
    poll_yaml.pop("opens")
    poll_yaml["closes"] = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    (tmp_path / "poll.yml").write_text(yaml.safe_dump(poll_yaml, allow_unicode=True),
                                       encoding="utf-8")
    actions = StaffActions(config, Catalogs(config), installed_channels())
    keys = ballot_keys(config.data_dir)
    with db.session() as session:
        poll = poll_service.add(session, load_poll(tmp_path / "poll.yml", config))
        actions.open_poll(session, poll.id)
        for i, voter in enumerate(voters):
            poll_service.cast(session, poll, voter.resident(session),
                              "building_5" if i == 0 else "east_gate", keys)
        opinion = poll_service.add_opinion(session, poll, "en", TYPED[5], "east_gate")
        poll_service.moderate(session, poll.id, opinion.id, "approved")
        poll_id = poll.id
        notice = notice_service.add(session, load_notice(EXAMPLES / "notice.yml", config))
        notice_id = notice.id
    with db.session() as session:
        actions.close_poll(session, poll_id)
        actions.publish_notice(session, notice_id)

    http = public(app)
    page = http.get("/open?lang=en")
    data = http.get("/open.json?lang=en")
    table = http.get("/open.csv?lang=en")
    for response in (page, data, table):
        assert response.status_code == 200
        for typed in TYPED:
            assert typed not in response.text, (typed, response.request.url)
    # The small cell: 3 repairs in the west grid last month.
    west = month_row(data.json(), month, "west")
    assert west["by_category"]["facility_repair"] == "<5" and west["requests"] == "<5"
    assert west["response_rate_percent"] is None  # computed on fewer than 5: not shown
    assert '<tr data-grid="west">' in page.text
    row = page.text.split('<tr data-grid="west">')[1].split("</tr>")[0]
    assert '<td data-category="facility_repair" class="hidden">&lt;5</td>' in row
    assert '<td data-rate="response">—</td>' in row
    cells = {(r["area"], r["item"], r["measure"]): r["value"] for r in csv_rows(table.text)
             if r["section"] == "requests" and r["period"] == month}
    assert cells[("west", "facility_repair", "requests")] == "<5"
    assert cells[("west", "all", "response_rate_percent")] == ""
    # The consultation: 5 for east gate shown, the single other vote hidden with a zero.
    result = next(p for p in data.json()["consultations"] if p["id"] == poll_id)
    votes = {o["id"]: o["votes"] for o in result["options"]}
    assert votes == {"east_gate": 5, "building_5": "<5", "none": "<5"}
    assert (result["votes"], result["voters"]) == (6, 6)
    assert "Where should the new e-bike shed go?" in page.text
    # The notice, staff's words, in the reader's language.
    notice_texts = yaml.safe_load((EXAMPLES / "notice.yml").read_text(encoding="utf-8"))
    assert notice_texts["texts"]["en"]["title"] in page.text
    assert [n["id"] for n in data.json()["notices"]] == [notice_id]


def test_a_grid_month_with_enough_requests_shows_its_rates_as_docs_metrics_defines(
        config, db, assistant, app):
    month, when = last_month(config)
    zhang = Chat(assistant, "zhang")
    zhang.onboard("zh_Hans")
    numbers = [zhang.file_request("facility_repair", f"电梯坏了 {i}", "5号楼2单元")
               for i in range(10)]
    with db.session() as session:
        resident = zhang.resident(session)
        for number, score in zip(numbers[:5], (5, 2, 4, 4, 1)):
            service.change_status(session, number, "accepted", "staff:t")
            service.change_status(session, number, "resolved", "staff:t")
            service.rate(session, resident, number, score, reopen=False)
        late = service.find(session, numbers[2])
        late.due_at = late.resolved_at - timedelta(hours=1)  # resolved after its deadline
        # numbers[5]: nobody acted; numbers[6]: rejected at once
        service.change_status(session, numbers[6], "rejected", "staff:t", note="not ours")
        # numbers[7]: first acted on 30 hours after filing (the window is 24 h)
        service.change_status(session, numbers[7], "accepted", "staff:t")
        slow = service.find(session, numbers[7])
        for event in slow.events:
            if event.status == "accepted":
                event.at = slow.created_at + timedelta(hours=30)
        service.change_status(session, numbers[8], "accepted", "staff:t")  # open, past due
        service.change_status(session, numbers[9], "duplicate", "staff:t",
                              duplicate_of=numbers[0])
    move_back(db, numbers, when)
    # By hand, over the 9 requests counted (the duplicate left out):
    #   responded in the window: 0-4, 6, 8 = 7 of 9 (5 never acted on, 7 too late) -> 78 %
    #   resolved now: 0-4 = 5 of 9 -> 56 %
    #   rated 4 or 5: 5, 4, 4 of the ratings 5, 2, 4, 4, 1 = 3 of 5 -> 60 %
    #   on time: 0, 1, 3, 4 of the judged 0-5, 7, 8 (6 rejected: not judged) = 4 of 8 -> 50 %
    expected = {"response": 78, "resolution": 56, "satisfaction": 60, "on_time": 50}
    http = public(app)
    data = http.get("/open.json?lang=zh_Hans").json()
    for grid in ("west", "all"):
        row = month_row(data, month, grid)
        assert row["requests"] == 9 and row["by_category"]["facility_repair"] == 9
        assert {name: row[f"{name}_rate_percent"] for name in expected} == expected
        assert row["by_category"]["sanitation"] == "<5"  # 0 is not told from 1 to 4
    assert month_row(data, month, "east")["requests"] == "<5"
    assert month_row(data, month, None)["requests"] == "<5"  # outside any grid
    page = http.get("/open?lang=zh_Hans").text
    row = page.split('<tr data-grid="west">')[1].split("</tr>")[0]
    assert '<td data-category="facility_repair">9</td>' in row
    for name, percent in expected.items():
        assert f'<td data-rate="{name}">{percent}%</td>' in row
    assert "响应率" in page and "按时办结率" in page
    cells = {(r["area"], r["measure"]): r["value"]
             for r in csv_rows(http.get("/open.csv").text)
             if r["period"] == month and r["item"] == "all"}
    assert cells[("west", "resolution_rate_percent")] == "56"
    assert cells[("west", "on_time_rate_percent")] == "50"


def test_open_needs_no_login_is_cacheable_in_six_languages_and_opens_nothing_else(
        config, db, app, assistant):
    add_staff(db, "vic", "viewer")
    http = public(app)
    catalogs = Catalogs(config)
    for language in config.language_ids:
        page = http.get(f"/open?lang={language}")
        assert page.status_code == 200, language
        t = catalogs.translator(language)
        assert t("Open figures") in page.text
        tag = language.replace("_", "-")
        direction = "rtl" if language == "ug" else "ltr"
        assert f'<html lang="{tag}" dir="{direction}">' in page.text
    assert '<html lang="mn" dir="ltr">' in http.get(
        "/open", headers={"Accept-Language": "mn-MN,mn;q=0.9,en;q=0.5"}).text
    for header in ("zh-TW", "zh-Hant-HK,zh;q=0.8"):
        assert '<html lang="zh-Hant"' in http.get(
            "/open", headers={"Accept-Language": header}).text
    assert http.get("/open.json", headers={"Accept-Language": "ug"}).json()["language"] == "ug"

    first = http.get("/open.json?lang=en")
    assert first.headers["cache-control"] == "public, max-age=300"
    assert "set-cookie" not in first.headers
    assert "Accept-Language" in first.headers["vary"]
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert http.get("/open.json?lang=en", headers={"If-None-Match": etag}).status_code == 304
    assert http.get("/open.json?lang=en",
                    headers={"If-Modified-Since": modified}).status_code == 304
    assert http.get("/open.json?lang=ug", headers={"If-None-Match": etag}).status_code == 200
    assert http.get("/open.csv").headers["content-type"].startswith("text/csv")
    assert http.get("/open/fonts/uyghur.woff2").status_code == 200
    assert http.get("/open/fonts/linli.db").status_code == 404

    # Only the login page and these are public; every other page still asks for a login.
    public_routes = {r.path for r in app.state.console_routes if r.role is None}
    assert public_routes == {"/login", "/open", "/open.json", "/open.csv", "/open/fonts/{name}"}
    for path in ("/", "/requests", "/conversations", "/notices", "/polls", "/audit"):
        response = http.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith(
            "/login"), path
    assert http.head("/open?lang=en").status_code == 200
    # `linli serve` puts the web chat in front of the console: /open is reached through it.
    front = public(WebChannel(config, db, assistant).wrap(app))
    assert front.get("/open.json?lang=en").json()["language"] == "en"
    assert front.get("/", follow_redirects=False).headers["location"].startswith("/login")
    # A logged-in staff member's answer carries their session cookie: never for a shared cache.
    vic = logged_in(app, "vic")
    assert vic.get("/open").headers["cache-control"].startswith("private")


def test_the_figures_are_worked_out_again_once_their_time_is_up(config, db, assistant, app):
    month, when = last_month(config)
    http = public(app)
    before = http.get("/open.json?lang=en")
    li = Chat(assistant, "li")
    li.onboard("en")
    move_back(db, [li.file_request("sanitation", "rubbish", "building 1")], when)
    assert http.get("/open.json?lang=en").headers["etag"] == before.headers["etag"]  # cached
    app.state.console.open_cache_seconds = 0
    after = http.get("/open.json?lang=en")
    assert after.headers["etag"] != before.headers["etag"]
    assert month_row(after.json(), month, "east")["by_category"]["sanitation"] == "<5"
    with db.session() as session:
        assert session.execute(select(Request.grid_id)).scalar_one() == "east"


# --- in Chromium ----------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
@pytest.mark.slow_e2e
def test_browser_the_uyghur_page_reads_right_to_left_with_its_font_and_a_small_cell(
        config, db, assistant, app, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.test_console_browser import CHROMEDRIVER, CHROMIUM, FLAGS, screenshot, served

    month, when = last_month(config)
    ayshe = Chat(assistant, "ayshe")
    ayshe.onboard("ug")
    move_back(db, [ayshe.file_request("facility_repair", TYPED[0], "5-بىنا")], when)
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument("--window-size=412,915")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        with served(app) as base:
            driver.get(base + "/open?lang=ug")
            where = (f'table[data-month="{month}"] tr[data-grid="west"] '
                     'td[data-category="facility_repair"]')
            cell = WebDriverWait(driver, 10).until(ready.presence_of_element_located((
                By.CSS_SELECTOR, where)))
            assert cell.text == "<5"
            html = driver.find_element(By.TAG_NAME, "html")
            assert (html.get_attribute("dir"), html.get_attribute("lang")) == ("rtl", "ug")
            assert driver.execute_script(
                "return getComputedStyle(document.body).direction") == "rtl"
            # The web chat's Uyghur font, through this page's own stylesheet and the CSP.
            assert driver.execute_script(
                "await document.fonts.ready;"
                "return [...document.fonts].some(f => f.family.includes('Linli Uyghur')"
                " && f.status === 'loaded');")
            title = Catalogs(config).translator("ug")("Open figures")
            assert driver.find_element(By.TAG_NAME, "h1").text == title
            assert TYPED[0] not in driver.page_source
            assert "login" not in driver.current_url
            screenshot(driver, "open-figures-ug")
            driver.get(base + "/open?lang=bo")
            assert driver.execute_script(
                "await document.fonts.ready;"
                "return [...document.fonts].some(f => f.family === 'Linli Tibetan'"
                " && f.status === 'loaded');")
            screenshot(driver, "open-figures-bo")
    finally:
        driver.quit()
