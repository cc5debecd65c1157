"""Volunteers: a resident signs up by numbers, the grid worker offers an elderly_help request to
the volunteers of its grid, the first to accept gets it; through the real core and database."""

from __future__ import annotations

from sqlalchemy import select

from bot.models import Volunteer


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
    assert "你什么时候能帮忙" in resident.text  # no grid question: building 3 is in the east
    resident.send("1")
    resident.send(numbered(resident.replies, "完成"))
    with db.session() as session:
        assert session.execute(select(Volunteer.grid_id)).scalar_one() == "east"
