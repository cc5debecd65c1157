"""Seeds the demo community: residents in every language, with requests in several states."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.channels.terminal import CHANNEL
from bot.db import Database
from bot.models import Request, Resident, utcnow
from bot.services import requests as service

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
    ]),
    ("anna", "en", "Building 8, entrance 1, flat 104", [
        ("noise_dispute", "Loud music from the flat above every night after midnight.",
         "Building 8, entrance 1", 80, ["accepted", "in_progress", "resolved"]),
    ]),
    ("bat", "mn", "7-р байр, 2-р орц, 45 тоот", [
        ("facility_repair", "Лифт гурав хоног ажиллахгүй байна. Ээж маань 80 настай.",
         "7-р байр, 2-р орц", 72, ["accepted"]),
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


def seed(db: Database) -> bool:
    """Creates the demo data once; returns False when it was already there."""
    with db.session() as session:
        exists = session.execute(
            select(Resident.id).where(Resident.channel == CHANNEL, Resident.channel_user_id == "wang")
        ).first()
        if exists:
            return False
        session.add(Resident(channel=CHANNEL, channel_user_id=NEWCOMER[0], address=NEWCOMER[1],
                             slots={}, offered=[]))
        for user_id, language, address, requests in DEMO_RESIDENTS:
            resident = Resident(channel=CHANNEL, channel_user_id=user_id, language=language,
                                address=address, flow="menu", step="main", slots={}, offered=[])
            session.add(resident)
            session.flush()
            for category, description, location, age_hours, statuses in requests:
                draft = service.Draft(category, description, location)
                request = service.submit(session, resident, draft, CHANNEL)
                for status in statuses:
                    service.change_status(session, request.tracking_number, status, "staff:demo")
                _backdate(session, request, timedelta(hours=age_hours))
                # Residents have seen everything but the last change: it waits for their next turn.
                for event in request.events[:-1]:
                    event.notified_at = event.at
    return True


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
    if request.status == "resolved":
        request.resolved_at = events[-1].at
    session.add_all(events)
    session.flush()
