"""Open311 GeoReport v2 (JSON) under /open311/v2/: services, requests, and filing a request.

Reading is open to anyone, but a request's description, address, coordinates and staff notes
are given only to callers with an API key (LINLI_OPEN311_API_KEYS): they are residents' words
and places. Our statuses map to "open" and "closed"; ours is in `extended_attributes` with the
rating, when `extensions=true` is asked for (docs/open311.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.config import Config
from bot.console.auth import audit
from bot.db import Database
from bot.models import Request, Resident, utcnow
from bot.places import grid_for
from bot.services import requests as service
from bot.text import clean

CHANNEL = "open311"
DEFAULT_DAYS = 90  # the spec's default span for GET requests, and at most 1000 of them
MAX_RESULTS = 1000


def api_keys() -> list[str]:
    """The keys allowed to file requests and to read residents' words: LINLI_OPEN311_API_KEYS,
    comma-separated."""
    return [k.strip() for k in os.environ.get("LINLI_OPEN311_API_KEYS", "").split(",")
            if k.strip()]


def key_ok(key: str | None) -> bool:
    if not key:
        return False
    return any(hmac.compare_digest(key.encode(), known.encode()) for known in api_keys())


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def error(status: int, description: str) -> JSONResponse:
    """GeoReport v2's error format: a list of {code, description}."""
    return JSONResponse([{"code": status, "description": description}], status_code=status)


def open_or_closed(status: str) -> str:
    return "open" if status in service.OPEN_STATUSES else "closed"


class Open311:
    def __init__(self, config: Config, db: Database):
        self.config = config
        self.db = db
        self.language = config.default_language

    def stamp(self, moment: datetime | None) -> str | None:
        """W3C date-time with the community's offset: 2026-11-24T10:15:30+08:00."""
        if moment is None:
            return None
        return moment.replace(tzinfo=timezone.utc).astimezone(self.config.tz).isoformat(
            timespec="seconds")

    def service(self, category) -> dict:
        department = self.config.department(category.department)
        names = [category.names[lang] for lang in self.config.language_ids]
        return {
            "service_code": category.id,
            "service_name": category.names[self.language],
            "description": " / ".join(dict.fromkeys(names)),
            "metadata": False,
            "type": "realtime",
            "keywords": ",".join(dict.fromkeys([category.id, *names])),
            "group": department.names[self.language],
        }

    def request_json(self, r: Request, private: bool, extensions: bool) -> dict:
        try:
            category = self.config.category(r.category_id)
            service_name = category.names[self.language]
        except KeyError:
            service_name = r.category_id
        try:
            agency = self.config.department(r.department_id).names[self.language]
        except KeyError:
            agency = r.department_id
        notes = [e.note for e in r.events if e.note and e.actor.startswith("staff:")]
        item = {
            "service_request_id": r.tracking_number,
            "status": open_or_closed(r.status),
            "status_notes": (notes[-1] if notes else None) if private else None,
            "service_name": service_name,
            "service_code": r.category_id,
            "description": r.description if private else None,
            "agency_responsible": agency,
            "service_notice": None,
            "requested_datetime": self.stamp(r.created_at),
            "updated_datetime": self.stamp(r.updated_at),
            "expected_datetime": self.stamp(r.due_at),
            "address": r.location_text if private else None,
            "address_id": None,
            "zipcode": None,
            "lat": r.latitude if private else None,
            "long": r.longitude if private else None,
            "media_url": None,
        }
        if extensions:
            item["extended_attributes"] = {"rating": r.rating, "linli_status": r.status,
                                           "duplicate": r.duplicate_of_id is not None}
        return item

    # GET services.json ----------------------------------------------------------------
    def services(self, request: HttpRequest):
        return JSONResponse([self.service(c) for c in self.config.categories])

    def service_definition(self, request: HttpRequest):
        code = request.path_params["service_code"]
        if code not in {c.id for c in self.config.categories}:
            return error(404, f"service_code {code} not found")
        return JSONResponse({"service_code": code, "attributes": []})

    # GET requests.json ----------------------------------------------------------------
    def requests(self, request: HttpRequest):
        q = request.query_params
        private = key_ok(q.get("api_key"))
        extensions = q.get("extensions", "").lower() == "true"
        query = select(Request).order_by(Request.created_at.desc(), Request.id.desc())
        ids = [i.strip() for i in q.get("service_request_id", "").split(",") if i.strip()]
        if ids:  # the spec: with ids, the other parameters are ignored
            query = query.where(Request.tracking_number.in_(
                [service.normalise_tracking_number(i) for i in ids]))
        else:
            try:
                start = _w3c(q.get("start_date"), "start_date")
                end = _w3c(q.get("end_date"), "end_date")
            except ValueError as exc:
                return error(400, str(exc))
            if start and end and start > end:
                return error(400, "start_date is after end_date")
            if start is None:
                start = (end or utcnow()) - timedelta(days=DEFAULT_DAYS)
            query = query.where(Request.created_at >= start)
            if end is not None:
                query = query.where(Request.created_at <= end)
            codes = [c.strip() for c in q.get("service_code", "").split(",") if c.strip()]
            if codes:
                query = query.where(Request.category_id.in_(codes))
            wanted = {s.strip().lower() for s in q.get("status", "").split(",") if s.strip()}
            if wanted - {"open", "closed"}:
                return error(400, "status must be open, closed, or both, comma-separated")
            if wanted == {"open"}:
                query = query.where(Request.status.in_(sorted(service.OPEN_STATUSES)))
            elif wanted == {"closed"}:
                query = query.where(Request.status.notin_(sorted(service.OPEN_STATUSES)))
        with self.db.session() as session:
            rows = session.execute(query.limit(MAX_RESULTS)).scalars()
            return JSONResponse([self.request_json(r, private, extensions) for r in rows])

    def one_request(self, request: HttpRequest):
        q = request.query_params
        with self.db.session() as session:
            row = service.find(session, request.path_params["service_request_id"])
            if row is None:
                return error(404, "service_request_id not found")
            return JSONResponse([self.request_json(row, key_ok(q.get("api_key")),
                                                   q.get("extensions", "").lower() == "true")])

    # POST requests.json ---------------------------------------------------------------
    def create(self, request: HttpRequest, form):
        key = form.get("api_key")
        if not key_ok(key):
            return error(403, "api_key is missing or not valid")
        code = str(form.get("service_code") or "").strip()
        if not code:
            return error(400, "service_code is required")
        if code not in {c.id for c in self.config.categories}:
            return error(404, f"service_code {code} not found")
        try:
            lat = _float(form.get("lat"), "lat", -90, 90)
            lon = _float(form.get("long"), "long", -180, 180)
        except ValueError as exc:
            return error(400, str(exc))
        if (lat is None) != (lon is None):
            return error(400, "lat and long go together")
        # As chat text is (bot/text.py): no control, bidi override or zero-width characters,
        # which would reorder or hide words on the staff pages and in residents' chats.
        address = clean(str(form.get("address_string") or form.get("address_id") or ""))
        if lat is None and not address:
            return error(400, "a location is required: lat and long, address_string or "
                              "address_id")
        description = clean(str(form.get("description") or ""))
        if not description:
            return error(400, "description is required")
        digest = key_digest(key)
        try:
            with self.db.session() as session:
                resident = session.execute(select(Resident).where(
                    Resident.channel == CHANNEL, Resident.channel_user_id == f"key:{digest}")
                ).scalar_one_or_none()
                if resident is None:
                    resident = Resident(channel=CHANNEL, channel_user_id=f"key:{digest}",
                                        language=self.language, slots={}, offered=[])
                    session.add(resident)
                    session.flush()
                grid = grid_for(self.config, place=address, latitude=lat, longitude=lon)
                filed = service.submit(session, resident, service.Draft(
                    code, description, address or None, lat, lon,
                    grid_id=grid.id if grid else None), CHANNEL)
                audit(session, f"open311:{digest}", "request.filed", filed.tracking_number,
                      {"service_code": code})
                number = filed.tracking_number
        except service.RequestError as exc:
            return error(400, str(exc))
        return JSONResponse([{"service_request_id": number, "service_notice": None,
                              "account_id": None}])


def _w3c(value: str | None, name: str) -> datetime | None:
    """A W3C date-time (with Z or an offset; a bare one is UTC) as naive UTC."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if moment.tzinfo is not None:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise ValueError(f"{name} is not a W3C date-time such as 2026-11-05T08:15:30+08:00") \
            from None
    if not 1900 <= moment.year <= 9998:  # room for the default span and the zone's offset
        raise ValueError(f"{name} is out of range (years 1900 to 9998)")
    return moment


def _float(value, name: str, low: float, high: float) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} is not a number") from None
    if not low <= number <= high:
        raise ValueError(f"{name} is out of range")
    return number


def open311_app(config: Config, db: Database) -> Starlette:
    api = Open311(config, db)

    def json_only(handler):
        async def endpoint(request: HttpRequest):
            if request.path_params.pop("format", "json") != "json":
                return error(400, "only the json format is offered")
            if any("\x00" in str(v) for v in request.path_params.values()) or any(
                    "\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()):
                return error(400, "the address has a NUL character")
            if request.method == "POST":
                form = await request.form(max_files=0, max_fields=50)
                return await run_in_threadpool(handler, request, form)
            return await run_in_threadpool(handler, request)
        return endpoint

    async def requests_endpoint(request: HttpRequest):
        handler = api.create if request.method == "POST" else api.requests
        return await json_only(handler)(request)

    return Starlette(routes=[
        Route("/services.{format}", json_only(api.services), methods=["GET"]),
        Route("/services/{service_code}.{format}", json_only(api.service_definition),
              methods=["GET"]),
        Route("/requests.{format}", requests_endpoint, methods=["GET", "POST"]),
        Route("/requests/{service_request_id}.{format}", json_only(api.one_request),
              methods=["GET"]),
    ])
