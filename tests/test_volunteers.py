"""Volunteers: a resident signs up by numbers, the grid worker offers an elderly_help request to
the volunteers of its grid, the first to accept gets it; through the real core and database."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.demo import seed
from bot.models import OutboxMessage, Request, Resident, Volunteer, VolunteerOffer
from bot.services import outbox
from bot.services import volunteers as service
from tests.conftest import Chat
from tests.console_helpers import add_staff, console, logged_in


def numbered(replies, label: str) -> str:
    """The number the resident types for the button whose label contains `label`."""
    buttons = [b for r in replies for b in r.buttons]
    found = [i for i, b in enumerate(buttons, start=1) if label in b.label]
    assert len(found) == 1, (label, [b.label for b in buttons])
    return str(found[0])


def test_a_resident_signs_up_by_numbers_only_on_the_terminal(chat, db):
    resident = chat("vol-numbers")
    resident.onboard("en")
    resident.send("/menu")
    resident.send(numbered(resident.replies, "Settings"))
    resident.send(numbered(resident.replies, "Volunteer in your grid"))
    assert "Volunteers help older neighbours" in resident.text
    resident.send("1")  # Sign up as a volunteer
    assert "What can you help with?" in resident.text
    resident.send(numbered(resident.replies, "Shopping"))
    assert "✓ Shopping" in [b.label for b in resident.buttons]
    resident.send(numbered(resident.replies, "Small repairs"))
    resident.send(numbered(resident.replies, "Shopping"))  # unmarked again
    assert "✓ Shopping" not in [b.label for b in resident.buttons]
    resident.send(numbered(resident.replies, "Done"))
    # No building given: the grid is asked, by buttons from config.yml's grids.
    assert "Which grid do you live in?" in resident.text
    resident.send(numbered(resident.replies, "West grid"))
    assert "When can you help?" in resident.text
    resident.send(numbered(resident.replies, "Done"))
    assert "Please mark at least one" in resident.text
    resident.send(numbered(resident.replies, "Weekends"))
    resident.send(numbered(resident.replies, "Done"))
    assert "Thank you for signing up as a volunteer!" in resident.text
    assert "Grid: West grid" in resident.text
    assert "What you can do: Small repairs" in resident.text
    with db.session() as session:
        volunteer = session.execute(select(Volunteer)).scalar_one()
        assert (volunteer.grid_id, volunteer.skills, volunteer.times) == (
            "west", ["repairs"], ["weekends"])
    # Seen and changed: /volunteer shows the sign-up; times changed by numbers.
    resident.send("/volunteer")
    assert "You are a volunteer." in resident.text
    resident.send(numbered(resident.replies, "Change when I can help"))
    assert "✓ Weekends" in [b.label for b in resident.buttons]
    resident.send(numbered(resident.replies, "Weekday evenings"))
    resident.send(numbered(resident.replies, "Done"))
    assert "When: Weekday evenings, Weekends" in resident.text
    with db.session() as session:
        assert session.execute(select(Volunteer.times)).scalar_one() == [
            "weekday_evening", "weekends"]


def test_the_grid_is_taken_from_the_residents_building(chat, db):
    resident = chat("vol-building")
    resident.onboard("zh_Hans")
    with db.session() as session:
        resident.resident(session).building = "3号楼2单元"
    resident.send("/volunteer")
    resident.send("1")
    resident.send(numbered(resident.replies, "买菜"))
    resident.send(numbered(resident.replies, "完成"))
    assert "什么时候能帮忙" in resident.text  # no grid question: building 3 is in the east
    resident.send("1")
    resident.send(numbered(resident.replies, "完成"))
    with db.session() as session:
        assert session.execute(select(Volunteer.grid_id)).scalar_one() == "east"


def sign_up(resident: Chat, grid: str, skills: tuple[str, ...] = ("shopping",)) -> None:
    """Signs the resident up by buttons: skills, grid (no building given), weekends."""
    resident.send("/volunteer")
    resident.press_payload("vol:signup")
    for skill in skills:
        resident.press_payload(f"skill:{skill}")
    resident.press_payload("vol:done")
    resident.press_payload(f"grid:{grid}")
    resident.press_payload("time:weekends")
    resident.press_payload("vol:done")
    assert resident.state()[:2] == ("volunteers", "main")


def offer_rows(db, chat_id: str) -> list[OutboxMessage]:
    with db.session() as session:
        rows = list(session.execute(select(OutboxMessage).where(
            OutboxMessage.chat_id == chat_id, outbox.keyed(service.OFFER_KEY)).order_by(
            OutboxMessage.id)).scalars())
        session.expunge_all()
        return rows


def test_the_grid_worker_offers_an_elderly_help_request_to_its_grids_volunteers_once(
        config, db, assistant):
    add_staff(db, "zhao", "staff")  # the west grid's worker in config.yml
    add_staff(db, "liu", "staff")  # the east grid's worker
    app = console(config, db)
    first, second, east, gone = (Chat(assistant, name, channel="web") for name in (
        "vol-first", "vol-second", "vol-east", "vol-gone"))
    for volunteer, grid in ((first, "west"), (second, "west"), (east, "east"), (gone, "west")):
        volunteer.onboard("en", voice=volunteer is second)
        sign_up(volunteer, grid)
    # Withdrawal stops offers.
    gone.send("/volunteer")
    gone.press_payload("vol:withdraw")
    gone.press_payload("vol:stop")
    assert "You are no longer a volunteer" in gone.text
    for volunteer in (first, second, east, gone):
        volunteer.send("/menu")

    requester = Chat(assistant, "vol-requester")
    requester.onboard("zh_Hans")
    with db.session() as session:
        requester.resident(session).display_name = "王秀兰"
        requester.resident(session).phone = "13912345678"
    number = requester.file_request("elderly_help", "我母亲独居，腿脚不便，电话13912345678，请帮忙买菜",
                                    "5号楼2单元302")

    # Only the request's grid worker (or an admin) may offer it.
    assert logged_in(app, "liu").post(f"/requests/{number}/volunteers").status_code == 403
    worker = logged_in(app, "zhao")
    page = worker.get(f"/requests/{number}").text
    assert 'id="offer-volunteers"' in page
    assert worker.post(f"/requests/{number}/volunteers").status_code == 303
    assert worker.post(f"/requests/{number}/volunteers").status_code == 303  # again: no one new

    assert len(offer_rows(db, "vol-first")) == 1
    assert offer_rows(db, "vol-east") == [] and offer_rows(db, "vol-gone") == []
    message = offer_rows(db, "vol-first")[0].payload
    assert "Help for an older person" in message["text"] and "Building 5" in message["text"]
    for private in ("母亲", "买菜", "13912345678", "302", "王秀兰", "单元", number):
        assert private not in str(message), private
    assert [label for label, _ in message["buttons"]] == ["Accept", "Decline", "Main menu"]
    spoken = offer_rows(db, "vol-second")
    assert len(spoken) == 2 and spoken[1].payload["voice"] is True  # second has voice on
    assert "Building 5" in spoken[1].payload["text"] and "13912345678" not in str(spoken[1].payload)

    # The first to accept gets it (by its number, as the offer is the chat's latest step).
    first.send("1")
    assert "You have taken this on" in first.text
    second.press_payload(offer_rows(db, "vol-second")[0].payload["buttons"][0][1])  # tapped
    assert "another volunteer has already taken this on" in second.text
    with db.session() as session:
        statuses = dict(session.execute(
            select(Resident.channel_user_id, VolunteerOffer.status)
            .join(Volunteer, Volunteer.id == VolunteerOffer.volunteer_id)
            .join(Resident, Resident.id == Volunteer.resident_id)).all())
        assert statuses == {"vol-first": "accepted", "vol-second": "taken"}
        events = session.execute(select(Request).where(
            Request.tracking_number == number)).scalar_one().events
        notes = [(e.actor, e.note) for e in events if e.note]
        assert ("staff:zhao", "已发给本网格2名志愿者。") in notes
        assert ("volunteer", "已有志愿者答应帮忙。") in notes

    # The worker sees who was offered it and who accepted; a viewer sees it without the form
    # and without names.
    page = worker.get(f"/requests/{number}").text
    assert page.count('class="offer-accepted"') == 1 and page.count('class="offer-taken"') == 1
    add_staff(db, "vera", "viewer")
    viewed = logged_in(app, "vera").get(f"/requests/{number}").text
    assert 'class="offer-accepted"' in viewed and 'id="offer-volunteers"' not in viewed
    assert logged_in(app, "vera").post(f"/requests/{number}/volunteers").status_code == 403
    other = requester.file_request("sanitation", "垃圾没人收", "5号楼")
    assert 'id="volunteers"' not in worker.get(f"/requests/{other}").text
    with db.session() as session:
        assert session.execute(select(func.count(VolunteerOffer.id))).scalar_one() == 2


def test_the_demo_community_has_volunteers_in_both_grids_and_an_offered_request(
        config, db, assistant):
    seed(db, config)
    with db.session() as session:
        grids = {grid for (grid,) in session.execute(select(Volunteer.grid_id))}
        answers = sorted(status for (status,) in session.execute(select(VolunteerOffer.status)))
    assert grids == {"east", "west"}
    assert answers == ["declined", "offered", "offered"]
    # bat has not answered: /volunteer on the terminal shows him the offer (below his
    # requests' news, the offer again: its buttons are the last); 1 accepts.
    bat = Chat(assistant, "bat")
    bat.send("/volunteer")
    assert bat.t("Choose 1 to accept or 2 to decline.") in bat.replies[-1].text
    assert bat.payloads[0].startswith("vol:accept:")
    bat.send("1")
    assert bat.t("Thank you! You have taken this on. The grid worker will contact you "
                 "with the details.") in bat.text
    anna = Chat(assistant, "anna")
    anna.send("/volunteer")  # her offer's message comes now, but the request is taken
    anna.send("/volunteer")
    assert anna.t("You are a volunteer. Thank you!") in anna.text


def test_a_busy_volunteer_keeps_their_step_and_answers_with_the_command(config, db, assistant):
    add_staff(db, "zhao", "staff")
    busy, late = Chat(assistant, "vol-busy", channel="web"), Chat(assistant, "vol-late",
                                                                  channel="web")
    for volunteer in (busy, late):
        volunteer.onboard("ug")
        sign_up(volunteer, "west")
    busy.send("/menu")
    busy.press_payload("menu:report")  # in the middle of a report when the offer comes
    late.send("/menu")
    requester = Chat(assistant, "vol-asker")
    requester.onboard("en")
    number = requester.file_request("elderly_help", "My father needs a visit", "Building 6")
    assert logged_in(console(config, db), "zhao").post(
        f"/requests/{number}/volunteers").status_code == 303

    message = offer_rows(db, "vol-busy")[0].payload
    assert message["buttons"] == [] and "/volunteer" in message["text"]
    assert busy.state()[:2] == ("report", "category")
    # Withdrawing after the offer came withdraws it: its button answers nothing.
    late.send("/menu")
    late.press_payload("menu:settings")
    late.press_payload("set:volunteer")  # the sign-up, with the offer waiting on it
    assert late.payloads[0] == "vol:offers"
    late.press_payload("vol:withdraw")
    late.press_payload("vol:stop")
    late.send("/volunteer")
    assert late.t("Sign up as a volunteer") in [b.label for b in late.buttons]
    with db.session() as session:
        assert session.execute(select(VolunteerOffer.status).join(Volunteer).join(Resident).where(
            Resident.channel_user_id == "vol-late")).scalar_one() == "withdrawn"
    busy.send("/volunteer")
    assert busy.payloads[:2] == [f"vol:accept:{offer_rows(db, 'vol-busy')[0].key[16:-2]}",
                                 f"vol:decline:{offer_rows(db, 'vol-busy')[0].key[16:-2]}"]
    busy.send("1")
    assert busy.t("Thank you! You have taken this on. The grid worker will contact you "
                  "with the details.") in busy.text


def test_the_volunteers_list_shows_names_to_staff_and_numbers_to_viewers(config, db, assistant):
    add_staff(db, "zhao", "staff")
    add_staff(db, "vera", "viewer")
    volunteer = Chat(assistant, "vol-listed")
    volunteer.onboard("en")
    with db.session() as session:
        volunteer.resident(session).display_name = "Zhang Min"
        volunteer.resident(session).phone = "13800138000"
    sign_up(volunteer, "east", skills=("repairs", "technology"))
    app = console(config, db)
    page = logged_in(app, "zhao").get("/volunteers?grid=east").text
    assert "Zhang Min" in page and "13800138000" in page and "Small repairs" in page
    hidden = logged_in(app, "vera").get("/volunteers").text
    assert "Zhang Min" not in hidden and "13800138000" not in hidden
    assert "138******00" in hidden and "Small repairs" in hidden


def test_the_database_holds_one_accepted_offer_a_request(config, db, assistant):
    import pytest
    from sqlalchemy.exc import IntegrityError

    requester = Chat(assistant, "vol-one")
    requester.onboard("en")
    requester.file_request("elderly_help", "Shopping, please", "Building 5")
    first, second = Chat(assistant, "vol-one-a"), Chat(assistant, "vol-one-b")
    for volunteer in (first, second):
        volunteer.onboard("en")
        sign_up(volunteer, "west")
    with pytest.raises(IntegrityError), db.session() as session:
        request_id = session.execute(select(Request.id)).scalar_one()
        for volunteer_id in session.execute(select(Volunteer.id)).scalars():
            session.add(VolunteerOffer(request_id=request_id, volunteer_id=volunteer_id,
                                       status="accepted", offered_by="test"))
        session.flush()


def test_two_volunteers_accepting_at_once_one_gets_it_and_one_is_told_taken(
        config, db, assistant):
    """The second acceptance waits for the first one's transaction (PostgreSQL row lock)."""
    import threading

    import pytest

    if config.database_url.startswith("sqlite"):
        pytest.skip("SQLite lets one transaction write at a time: there is no race to test")
    add_staff(db, "zhao", "staff")
    requester = Chat(assistant, "vol-race")
    requester.onboard("en")
    number = requester.file_request("elderly_help", "Shopping, please", "Building 7")
    racers = [Chat(assistant, f"vol-racer-{i}", channel="web") for i in (1, 2)]
    for volunteer in racers:
        volunteer.onboard("en")
        sign_up(volunteer, "west")
    logged_in(console(config, db), "zhao").post(f"/requests/{number}/volunteers")
    first_answered, let_first_commit = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def accept(user_id: str, hold: bool) -> None:
        with db.session() as session:
            resident = session.execute(select(Resident).where(
                Resident.channel_user_id == user_id)).scalar_one()
            offer_id = service.open_offers(session, resident)[0].id
            outcomes[user_id] = service.answer(session, resident, offer_id, accept=True)
            if hold:
                first_answered.set()
                let_first_commit.wait(10)

    first = threading.Thread(target=accept, args=("vol-racer-1", True))
    first.start()
    assert first_answered.wait(10)
    second = threading.Thread(target=accept, args=("vol-racer-2", False))
    second.start()
    second.join(1.0)
    assert second.is_alive()  # waiting for the first one's transaction
    let_first_commit.set()
    first.join(10)
    second.join(10)
    assert outcomes == {"vol-racer-1": "accepted", "vol-racer-2": "taken"}


def test_a_volunteer_who_erases_their_data_leaves_the_answer_without_the_person(
        config, db, assistant):
    add_staff(db, "zhao", "staff")
    requester, helper = Chat(assistant, "vol-erase-asker"), Chat(assistant, "vol-eraser")
    requester.onboard("en")
    helper.onboard("en")
    sign_up(helper, "west")
    helper.send("/menu")
    number = requester.file_request("elderly_help", "A visit, please", "Building 8")
    worker = logged_in(console(config, db), "zhao")
    worker.post(f"/requests/{number}/volunteers")
    helper.send("1")  # on the terminal the offer comes after this turn: 1 is the menu's
    assert helper.state()[:2] == ("report", "category")
    assert helper.t("When you are ready, send /volunteer to answer.") in helper.text
    helper.send("/volunteer")
    helper.send("1")  # accepts
    assert helper.t("Thank you! You have taken this on. The grid worker will contact you "
                    "with the details.") in helper.text
    helper.send("/forget")
    helper.press_payload("forget:yes")
    with db.session() as session:
        assert session.execute(select(func.count(Volunteer.id))).scalar_one() == 0
        offer = session.execute(select(VolunteerOffer)).scalar_one()
        assert (offer.status, offer.volunteer_id) == ("accepted", None)
    page = worker.get(f"/requests/{number}").text
    assert 'class="offer-accepted"' in page and "erased" in page


def test_an_offer_for_one_skill_reaches_only_the_volunteers_with_it(config, db, assistant):
    add_staff(db, "boss", "admin")  # an admin may offer in any grid
    fixer, shopper = Chat(assistant, "vol-fixer", "web"), Chat(assistant, "vol-shopper", "web")
    for volunteer, skills in ((fixer, ("repairs",)), (shopper, ("shopping",))):
        volunteer.onboard("bo")
        sign_up(volunteer, "east", skills=skills)
        volunteer.send("/menu")
    requester = Chat(assistant, "vol-skill-asker")
    requester.onboard("bo")
    number = requester.file_request("elderly_help", "སྒོ་ཕྱི་ཉམས་གསོ་དགོས།", "ཁང་པ་ ༢")
    admin = logged_in(console(config, db), "boss")
    assert admin.post(f"/requests/{number}/volunteers", {"skill": "repairs"}).status_code == 303
    assert len(offer_rows(db, "vol-fixer")) == 1 and offer_rows(db, "vol-shopper") == []
    text = offer_rows(db, "vol-fixer")[0].payload["text"]
    assert fixer.t("Building {number}", number="2") in text and "སྒོ་ཕྱི" not in text
    # Offered again for any skill: only the one not offered it yet gets it now.
    admin.post(f"/requests/{number}/volunteers")
    assert len(offer_rows(db, "vol-fixer")) == 1 and len(offer_rows(db, "vol-shopper")) == 1


def test_a_volunteer_answers_an_offer_in_words(config, db, nlu_assistant):
    add_staff(db, "zhao", "staff")
    helper = Chat(nlu_assistant, "vol-words", channel="web")
    helper.onboard("zh_Hans")
    sign_up(helper, "west")
    helper.send("/menu")
    requester = Chat(nlu_assistant, "vol-words-asker")
    requester.onboard("zh_Hans")
    number = requester.file_request("elderly_help", "想请人陪我去医院", "6号楼")
    logged_in(console(config, db), "zhao").post(f"/requests/{number}/volunteers")
    helper.send("好的")
    assert helper.t("Thank you! You have taken this on. The grid worker will contact you "
                    "with the details.") in helper.text
