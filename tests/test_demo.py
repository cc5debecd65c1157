"""The demo community: seeded once, residents in every language, one fresh change each."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.demo import DEMO_RESIDENTS, seed
from bot.models import Request, Resident
from tests.conftest import Chat


def test_seeding_twice_adds_nothing_the_second_time(db):
    assert seed(db) is True
    assert seed(db) is False
    with db.session() as session:
        assert session.execute(select(func.count(Resident.id))).scalar_one() == \
            len(DEMO_RESIDENTS) + 1
        assert session.execute(select(func.count(Request.id))).scalar_one() == \
            sum(len(r[3]) for r in DEMO_RESIDENTS)


def test_a_seeded_resident_is_told_only_the_latest_change_and_asked_to_rate(assistant, db):
    seed(db)
    aygul = Chat(assistant, "aygul")
    aygul.send("/menu")
    with db.session() as session:
        requests = session.execute(
            select(Request).join(Resident).where(Resident.channel_user_id == "aygul")
        ).scalars().all()
        numbers = {r.status: r.tracking_number for r in requests}
    assert aygul.text.count(numbers["accepted"]) == 1
    assert aygul.t("Your request {tracking_number} has been resolved.",
                   tracking_number=numbers["resolved"]) in aygul.text
    assert aygul.t("Work on your request {tracking_number} has started.",
                   tracking_number=numbers["resolved"]) not in aygul.text
    assert aygul.state()[:2] == ("rating", "score")
    assert all(r.rtl for r in aygul.replies)


def test_the_newcomer_starts_at_the_language_picker_with_an_address_on_file(assistant, db):
    seed(db)
    demo = Chat(assistant, "demo")
    demo.send("/start")
    assert demo.payloads[0] == "lang:zh_Hans"
    demo.press_payload("lang:zh_Hans")
    demo.press_payload("voice:off")
    demo.press_payload("menu:report")
    demo.press_payload("cat:utilities")
    demo.send("厨房水管漏水")
    demo.press("我的地址")
    assert "3号楼2单元501" in demo.text and demo.state()[1] == "confirm"
