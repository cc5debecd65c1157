"""Seeds the demo community: residents in every language, with requests in several states,
some conversation turns for the staff console, and a demo staff account."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.channels.terminal import CHANNEL
from bot.config import Config
from bot.db import Database
from bot.i18n import Catalogs
from bot.models import OutboxMessage, Request, Resident, Turn, utcnow
from bot.places import grid_for
from bot.services import requests as service
from bot.services import volunteers as volunteer_service
from bot.wiring import installed_channels
from flows.volunteers import ACCEPTED_NOTE, offer_payloads, offered_note

# (terminal id, language, address, [(category, description, location, age in hours, statuses)])
DEMO_RESIDENTS = [
    ("wang", "zh_Hans", "5号楼1单元302", [
        ("facility_repair", "5号楼3层楼道灯坏了，晚上很黑，老人上下楼不安全。", "5号楼1单元3层",
         50, ["accepted", "in_progress"]),
        ("sanitation", "垃圾站两天没有清运了，味道很大。", "东门垃圾站", 30,
         ["accepted", "in_progress", "resolved"]),
    ]),
    ("chen", "zh_Hant", "2號樓3單元601", [
        ("utilities", "家裡停水了，從早上到現在都沒有水。", "2號樓3單元601", 5, ["accepted"]),
        ("sanitation", "樓下垃圾桶滿了好幾天。", "2號樓樓下", 200,
         ["accepted", "in_progress", "resolved", "rated:4"]),
    ]),
    ("anna", "en", "Building 8, entrance 1, flat 104", [
        ("noise_dispute", "Loud music from the flat above every night after midnight.",
         "Building 8, entrance 1", 80, ["accepted", "in_progress", "resolved"]),
        ("facility_repair", "The lock of the entrance door is broken.", "Building 8, entrance 1",
         150, ["accepted", "resolved", "rated:5"]),
    ]),
    ("bat", "mn", "7-р байр, 2-р орц, 45 тоот", [
        ("facility_repair", "Лифт гурав хоног ажиллахгүй байна. Ээж маань 80 настай.",
         "7-р байр, 2-р орц", 72, ["accepted"]),
        ("utilities", "Халаалт сул байна.", "7-р байр", 260,
         ["accepted", "in_progress", "resolved", "rated:2"]),
    ]),
    ("tenzin", "bo", "ཁང་པ་ ༤ ནང་ཁྱིམ་ ༢༠༡", [
        ("elderly_help", "ངའི་ཨ་མ་ལོ་ན་རྒན་པོ་ཡིན། ཟས་ཉོ་བར་རོགས་རམ་དགོས།", "ཁང་པ་ ༤", 20,
         ["accepted", "in_progress", "resolved"]),
    ]),
    ("aygul", "ug", "6-بىنا، 1-قەۋەت، 12-ئۆي", [
        ("safety_hazard", "ھويلىدىكى توك سىمى يەرگە چۈشۈپ قاپتۇ، بالىلار ئوينايدۇ.", "6-بىنا ئالدى",
         3, ["accepted"]),
        ("sanitation", "پەلەمپەي ئىككى ھەپتىدىن بېرى تازىلانمىدى.", "6-بىنا پەلەمپىيى", 100,
         ["accepted", "in_progress", "resolved"]),
    ]),
]
# The newcomer's own resident: no language yet (so the picker shows), an address on file.
NEWCOMER = ("demo", "3号楼2单元501")
# Messages residents sent, as the model read them (intent, confidence), hours ago: what the
# console's conversations, NLU inbox and dashboard show. kind "voice" has no text.
DEMO_TURNS = [
    ("wang", "text", "5号楼的电梯又坏了", "report_problem", 0.97, 40),
    ("wang", "text", "小区门口那个灯一闪一闪的", "report_problem", 0.52, 30),
    ("wang", "text", "我想问问上次那个事", "nlu_fallback", 0.31, 20),
    ("chen", "text", "請問垃圾幾點收", "nlu_fallback", 0.40, 10),
    ("chen", "text", "謝謝你們", "thank", 0.98, 9),
    ("anna", "text", "hey is someone checking the door thing", "check_request_status", 0.58, 8),
    ("anna", "text", "the lift is broken again", "report_problem", 0.95, 7),
    ("bat", "text", "Сайн байна уу", "greet", 0.93, 6),
    ("bat", "text", "Лифт ажиллахгүй", "report_problem", 0.61, 5),
    ("tenzin", "text", "བཀྲ་ཤིས་བདེ་ལེགས།", "greet", 0.90, 4),
    ("tenzin", "voice", None, None, None, 4),
    ("aygul", "text", "ياردەم قىلىڭ", "help", 0.45, 3),
    ("aygul", "text", "رەھمەت", "thank", 0.97, 2),
]
DEMO_STAFF = "demo"
# The grid workers of config.yml's demo grids (east: liu, west: zhao): staff accounts.
DEMO_GRID_WORKERS = ("liu", "zhao")


def seed(db: Database, config: Config | None = None) -> bool:
    """Creates the demo data once; returns False when it was already there. With the
    community's config, each request is put in the grid of its place (bot.places)."""
    with db.session() as session:
        exists = session.execute(
            select(Resident.id).where(Resident.channel == CHANNEL, Resident.channel_user_id == "wang")
        ).first()
        if exists:
            return False
        session.add(Resident(channel=CHANNEL, channel_user_id=NEWCOMER[0], address=NEWCOMER[1],
                             building=NEWCOMER[1], slots={}, offered=[]))
        for user_id, language, address, requests in DEMO_RESIDENTS:
            resident = Resident(channel=CHANNEL, channel_user_id=user_id, language=language,
                                address=address, building=address, flow="menu", step="main",
                                slots={}, offered=[])
            session.add(resident)
            session.flush()
            for category, description, location, age_hours, statuses in requests:
                grid = grid_for(config, place=location, home=address) if config else None
                draft = service.Draft(category, description, location,
                                      grid_id=grid.id if grid else None)
                request = service.submit(session, resident, draft, CHANNEL)
                for status in statuses:
                    if status.startswith("rated:"):
                        service.rate(session, resident, request.tracking_number,
                                     int(status.split(":")[1]), reopen=False)
                    else:
                        service.change_status(session, request.tracking_number, status,
                                              "staff:demo")
                _backdate(session, request, timedelta(hours=age_hours))
                # Residents have seen everything but the last change: it waits for their next turn.
                for event in request.events[:-1]:
                    event.notified_at = event.at
            _add_turns(session, resident, user_id)
        if config is not None:
            seed_volunteers(session, config)
    return True


# (resident, grid, skills, times): demo residents who signed up as volunteers, in both grids.
DEMO_VOLUNTEERS = [
    ("chen", "east", ["shopping", "visits"], ["weekday_day"]),
    ("tenzin", "east", ["interpreting", "visits"], ["weekends"]),
    ("anna", "west", ["shopping", "technology", "interpreting"], ["weekday_evening", "weekends"]),
    ("bat", "west", ["repairs", "hospital"], ["weekday_day", "weekends"]),
    ("aygul", "west", ["shopping", "interpreting"], ["weekday_evening"]),
]
# An open elderly_help request in the west grid, offered by its grid worker: aygul declined,
# anna and bat have not answered yet (`linli chat --resident bat`, then /volunteer, shows him
# the offer; the first of them to accept gets it).
DEMO_HELP_REQUEST = ("wang", "老伴腿脚不便，想请人每周帮忙买一次菜。", "5号楼1单元302")
DEMO_ANSWERS = {"aygul": False}


def seed_volunteers(session, config: Config) -> None:
    """The demo volunteers, and one elderly_help request offered to the west grid's ones."""
    def resident_of(user_id: str) -> Resident:
        return session.execute(select(Resident).where(
            Resident.channel == CHANNEL, Resident.channel_user_id == user_id)).scalar_one()

    grids = {grid.id for grid in config.grids}
    for user_id, grid, skills, times in DEMO_VOLUNTEERS:
        if grid in grids:
            volunteer_service.sign_up(session, config, resident_of(user_id), grid, skills, times)
    user_id, description, location = DEMO_HELP_REQUEST
    grid = grid_for(config, place=location)
    if grid is None:
        return
    requester = resident_of(user_id)
    request = service.submit(session, requester, service.Draft(
        "elderly_help", description, location, grid_id=grid.id), CHANNEL)
    catalogs = Catalogs(config)
    worker = grid.workers[0] if grid.workers else DEMO_STAFF
    channels = installed_channels()
    offers = volunteer_service.offer(
        session, request, worker,
        lambda resident, req, offer: offer_payloads(
            catalogs.translator(resident.language), config, resident, req, offer,
            channels.get(resident.channel, frozenset())))
    if offers:
        volunteer_service.record(session, request, f"staff:{worker}",
                                 offered_note(catalogs.translator(request.language), len(offers)))
    for answerer, accept in DEMO_ANSWERS.items():
        resident = resident_of(answerer)
        offer = next((o for o in offers if o.volunteer_id == volunteer_service.find(
            session, resident).id), None)
        if offer is None:
            continue
        if volunteer_service.answer(session, resident, offer.id, accept) == "accepted":
            volunteer_service.record(session, request, "volunteer",
                                     catalogs.translator(request.language)(ACCEPTED_NOTE))
        # They answered in their chat already: the offer was seen, and they are at the menu.
        for row in session.execute(select(OutboxMessage).where(
                OutboxMessage.key == f"{volunteer_service.OFFER_KEY}{offer.id}#0")).scalars():
            row.status, row.sent_at = "sent", utcnow()
        resident.flow, resident.step, resident.slots, resident.offered = "menu", "main", {}, []
    session.flush()


def _add_turns(session, resident: Resident, user_id: str) -> None:
    now = utcnow()
    for who, kind, text, intent, confidence, hours_ago in DEMO_TURNS:
        if who == user_id:
            session.add(Turn(resident_id=resident.id, at=now - timedelta(hours=hours_ago),
                             channel=CHANNEL, direction="in", kind=kind, text=text,
                             language=resident.language, intent=intent, confidence=confidence,
                             entities=[], flow="menu", step="main"))


def seed_staff(db: Database, data_dir: Path) -> tuple[str, str | None]:
    """The demo staff account (an admin, to show every page): its name and password; and the
    demo grid workers (DEMO_GRID_WORKERS, role staff; their passwords: grid_worker_passwords).

    Each password is random, kept in <data dir>/demo-staff-password[-<name>] (mode 0600) so
    that a second `linli demo seed` can print it again; None if that file is gone.
    """
    password = _demo_account(db, DEMO_STAFF, "admin", Path(data_dir) / "demo-staff-password")
    for name in DEMO_GRID_WORKERS:
        _demo_account(db, name, "staff", Path(data_dir) / f"demo-staff-password-{name}")
    return DEMO_STAFF, password


def grid_worker_passwords(data_dir: Path) -> list[tuple[str, str | None]]:
    """The demo grid workers' names and passwords, as seed_staff kept them."""
    found = []
    for name in DEMO_GRID_WORKERS:
        path = Path(data_dir) / f"demo-staff-password-{name}"
        found.append((name, path.read_text(encoding="ascii").strip() if path.is_file()
                      else None))
    return found


def _demo_account(db: Database, name: str, role: str, path: Path) -> str | None:
    from bot.console.auth import add_user, find_user

    with db.session() as session:
        if find_user(session, name) is not None:
            return path.read_text(encoding="ascii").strip() if path.is_file() else None
        password = secrets.token_urlsafe(12)
        add_user(session, name, password, role, "zh_Hans", actor="demo")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(password + "\n")
    return password


def _backdate(session, request: Request, age: timedelta) -> None:
    """Spreads the request's events over `age`, as if it had been filed that long ago."""
    start = utcnow() - age
    events = list(request.events)
    step = age / (len(events) + 1)
    for i, event in enumerate(events):
        event.at = start + step * i
    request.created_at = start
    request.updated_at = events[-1].at
    request.due_at = start + timedelta(hours=request.category.time_limit_hours)
    for event in events:
        if event.status == "resolved":
            request.resolved_at = event.at
        if event.status == "closed":
            request.closed_at = event.at
            if event.rating:
                request.rated_at = event.at
    session.add_all(events)
    session.flush()
