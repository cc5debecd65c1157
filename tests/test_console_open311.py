"""Open311 GeoReport v2 under /open311/v2/: the specification's field names and errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.console.models import AuditEntry
from bot.models import Request
from bot.services import requests as service
from tests.conftest import Chat
from tests.console_helpers import console

SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords",
                  "group"}
REQUEST_FIELDS = {"service_request_id", "status", "status_notes", "service_name", "service_code",
                  "description", "agency_responsible", "service_notice", "requested_datetime",
                  "updated_datetime", "expected_datetime", "address", "address_id", "zipcode",
                  "lat", "long", "media_url"}
KEY = "city-key-0123456789"


@pytest.fixture
def api(config, db, monkeypatch):
    monkeypatch.setenv("LINLI_OPEN311_API_KEYS", f"other-key, {KEY}")
    return TestClient(console(config, db), base_url="http://127.0.0.1")


@pytest.fixture
def two(assistant, db):
    """Two requests from a terminal resident: one open, one resolved then rated 4 (closed)."""
    resident = Chat(assistant, "o")
    resident.onboard("en")
    open_one = resident.file_request("facility_repair", "Lift broken", "Building 1")
    closed = resident.file_request("sanitation", "Rubbish everywhere", "East gate")
    with db.session() as session:
        service.change_status(session, closed, "accepted", "staff:t", note="on our way")
        service.change_status(session, closed, "resolved", "staff:t")
        service.rate(session, resident.resident(session), closed, 4, reopen=False)
    return open_one, closed


def _is_error(response, code: int) -> None:
    assert response.status_code == code
    body = response.json()
    assert isinstance(body, list) and len(body) == 1
    assert set(body[0]) == {"code", "description"} and body[0]["code"] == code


def test_services_list_every_category_with_the_specs_fields(api, config):
    services = api.get("/open311/v2/services.json").json()
    assert [s["service_code"] for s in services] == [c.id for c in config.categories]
    for item in services:
        assert set(item) == SERVICE_FIELDS
        assert item["metadata"] is False and item["type"] == "realtime"
    lift = services[0]
    assert lift["service_name"] == config.category("facility_repair").names["zh_Hans"]
    assert lift["group"] == config.department("property_office").names["zh_Hans"]


def test_a_service_definition_and_an_unknown_service(api):
    definition = api.get("/open311/v2/services/utilities.json").json()
    assert definition == {"service_code": "utilities", "attributes": []}
    _is_error(api.get("/open311/v2/services/nothing.json"), 404)
    _is_error(api.get("/open311/v2/services.xml"), 400)


def test_requests_carry_the_specs_fields_and_hide_residents_words_without_a_key(api, two):
    open_one, closed = two
    public = api.get("/open311/v2/requests.json").json()
    assert {r["service_request_id"] for r in public} == {open_one, closed}
    for item in public:
        assert set(item) == REQUEST_FIELDS
        assert item["description"] is None and item["address"] is None
        assert item["status_notes"] is None
        datetime.fromisoformat(item["requested_datetime"])
        assert item["requested_datetime"].endswith("+08:00")
    by_id = {r["service_request_id"]: r for r in public}
    assert by_id[open_one]["status"] == "open" and by_id[closed]["status"] == "closed"

    private = api.get("/open311/v2/requests.json", params={"api_key": KEY}).json()
    by_id = {r["service_request_id"]: r for r in private}
    assert by_id[open_one]["description"] == "Lift broken"
    assert by_id[open_one]["address"] == "Building 1"
    assert by_id[closed]["status_notes"] == "on our way"


def test_the_rating_is_an_extension_field(api, two):
    _, closed = two
    plain = api.get(f"/open311/v2/requests/{closed}.json").json()
    assert "extended_attributes" not in plain[0]
    extended = api.get(f"/open311/v2/requests/{closed}.json",
                       params={"extensions": "true"}).json()
    assert len(extended) == 1
    assert extended[0]["extended_attributes"]["rating"] == 4
    assert extended[0]["extended_attributes"]["linli_status"] == "closed"
    _is_error(api.get("/open311/v2/requests/R-000000.json"), 404)


def test_request_filters(api, db, two):
    open_one, closed = two

    def ids(**params) -> set[str]:
        response = api.get("/open311/v2/requests.json", params=params)
        assert response.status_code == 200, response.text
        return {r["service_request_id"] for r in response.json()}

    assert ids(status="open") == {open_one}
    assert ids(status="closed") == {closed}
    assert ids(status="open,closed") == {open_one, closed}
    assert ids(service_code="sanitation") == {closed}
    assert ids(service_code="sanitation,facility_repair") == {open_one, closed}
    assert ids(service_request_id=f"{open_one},{closed}", status="open") == {open_one, closed}
    assert ids(start_date="2000-01-01T00:00:00Z", end_date="2000-01-02T00:00:00Z") == set()
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(end_date=tomorrow) == {open_one, closed}
    with db.session() as session:  # older than the 90 days the spec gives by default
        service.find(session, open_one).created_at -= timedelta(days=100)
    assert ids() == {closed}
    assert ids(start_date="2000-01-01T00:00:00+08:00") == {open_one, closed}
    _is_error(api.get("/open311/v2/requests.json", params={"status": "pending"}), 400)
    _is_error(api.get("/open311/v2/requests.json", params={"start_date": "yesterday"}), 400)


def test_posting_a_request_needs_a_valid_api_key(api, db):
    form = {"service_code": "sanitation", "lat": "39.9", "long": "116.4",
            "description": "Bins overflowing"}
    _is_error(api.post("/open311/v2/requests.json", data=form), 403)
    _is_error(api.post("/open311/v2/requests.json", data={**form, "api_key": "guess"}), 403)
    with db.session() as session:
        assert session.execute(select(Request)).first() is None


def test_posting_a_request_files_it_through_the_service(api, db):
    response = api.post("/open311/v2/requests.json", data={
        "api_key": KEY, "service_code": "sanitation", "lat": "39.9", "long": "116.4",
        "address_string": "East gate", "description": "Bins overflowing"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body) == 1 and set(body[0]) == {"service_request_id", "service_notice",
                                              "account_id"}
    number = body[0]["service_request_id"]
    with db.session() as session:
        row = service.find(session, number)
        assert (row.status, row.channel, row.category_id) == ("submitted", "open311",
                                                              "sanitation")
        assert (row.latitude, row.longitude, row.location_text) == (39.9, 116.4, "East gate")
        assert row.department_id == "sanitation_team"
        entry = session.execute(select(AuditEntry)).scalar_one()
        assert entry.action == "request.filed" and entry.actor.startswith("open311:")
        assert KEY not in entry.actor
    fetched = api.get(f"/open311/v2/requests/{number}.json").json()
    assert fetched[0]["status"] == "open" and fetched[0]["service_code"] == "sanitation"


@pytest.mark.parametrize("form, code", [
    ({"lat": "39.9", "long": "116.4", "description": "x"}, 400),  # no service_code
    ({"service_code": "potholes", "lat": "39.9", "long": "116.4", "description": "x"}, 404),
    ({"service_code": "sanitation", "description": "x"}, 400),  # no location
    ({"service_code": "sanitation", "lat": "91", "long": "116.4", "description": "x"}, 400),
    ({"service_code": "sanitation", "lat": "39.9", "description": "x"}, 400),
    ({"service_code": "sanitation", "address_string": "East gate"}, 400),  # no description
])
def test_posting_an_incomplete_request_gets_the_specs_errors(api, form, code):
    _is_error(api.post("/open311/v2/requests.json", data={"api_key": KEY, **form}), code)
