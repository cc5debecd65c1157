"""Grids (网格): config.yml's buildings and grid workers, and the grid a request lands in."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.config import ConfigError, load_config
from bot.demo import seed
from bot.models import Request, Resident
from bot.places import building_key, grid_for, nearest_building

GRIDS = """
grids:
  - id: east
    name: {zh_Hans: 东区, zh_Hant: 東區, en: East, mn: Зүүн, bo: ཤར, ug: شەرق}
    workers: [liu]
    buildings: [1, {number: 2, lat: 39.99, lon: 116.33}]
"""


def with_grids(tmp_path, text: str):
    """config.yml with a `grids` section of our own (the rest as shipped)."""
    base = load_config()
    raw = base.path.read_text(encoding="utf-8")
    raw = raw[:raw.index("grids:")] + raw[raw.index("emergency_numbers:"):]
    path = tmp_path / "config.yml"
    path.write_text(raw + text, encoding="utf-8")
    return load_config(path)


@pytest.mark.parametrize("written, key", [
    ("5号楼1单元302", "5"), ("5棟", "5"), ("Building 05", "5"), ("5-р байр", "5"),
    ("5-بىنا", "5"), ("ཁང་པ་ ༥", "5"), ("东门", "东门"),
])
def test_a_building_is_its_number_however_it_is_written(written, key):
    assert building_key(written) == key


def test_a_place_in_any_language_or_a_shared_location_finds_its_grid():
    config = load_config()
    for place in ("5号楼2单元", "5號樓", "building 5", "5-р байр", "5-بىنا ئالدى", "ཁང་པ་ ༥"):
        assert grid_for(config, place=place).id == "west", place
    assert grid_for(config, place="3号楼").id == "east"
    # Not a listed building: the resident's own building decides; nothing known, no grid.
    assert grid_for(config, place="东门垃圾站", home="2號樓3單元601").id == "east"
    assert grid_for(config, place="东门垃圾站") is None
    # A shared location: the nearest building, if it is close.
    b5 = config.building("5")[1]
    assert grid_for(config, latitude=b5.latitude + 0.0002, longitude=b5.longitude).id == "west"
    assert nearest_building(config, b5.latitude + 0.05, b5.longitude) is None


def test_grids_are_checked_when_the_config_is_loaded(tmp_path):
    config = with_grids(tmp_path, GRIDS)
    assert [b.key for b in config.grid("east").buildings] == ["1", "2"]
    assert config.grids_of_worker("liu")[0].id == "east"
    with pytest.raises(ConfigError, match=r"grids\[0\].buildings\[1\].number.*already in grid"):
        with_grids(tmp_path, GRIDS.replace("number: 2", "number: 1"))
    with pytest.raises(ConfigError, match=r"grids\[0\].buildings\[1\].*both lat and lon"):
        with_grids(tmp_path, GRIDS.replace(", lon: 116.33", ""))
    # The default language's name is required; another's may be left out (issue 17): it
    # falls back to the default language's.
    with pytest.raises(ConfigError, match=r"grids\[0\].name.zh_Hans"):
        with_grids(tmp_path, GRIDS.replace("zh_Hans: 东区, ", ""))
    assert "ug" not in with_grids(tmp_path, GRIDS.replace(", ug: شەرق", "")).grid("east").names


def test_a_report_from_building_5_lands_in_the_west_grid(chat, db):
    resident, other_resident = chat("gridwest"), chat("gridnone")
    resident.onboard("zh_Hans")
    other_resident.onboard("zh_Hans")
    number = resident.file_request("facility_repair", "电梯坏了", "5号楼2单元")
    other = other_resident.file_request("sanitation", "垃圾没人收", "东门垃圾站")
    with db.session() as session:
        grids = dict(session.execute(select(Request.tracking_number, Request.grid_id)).all())
    assert grids[number] == "west"
    assert grids[other] is None


def test_a_report_with_no_listed_place_falls_back_to_the_residents_building(chat, db):
    resident = chat("gridhome")
    resident.onboard("zh_Hans")
    with db.session() as session:
        row = session.execute(select(Resident).where(
            Resident.channel_user_id == "gridhome")).scalar_one()
        row.building = "3号楼"
    number = resident.file_request("sanitation", "垃圾没人收", "东门垃圾站")
    with db.session() as session:
        assert session.execute(select(Request.grid_id).where(
            Request.tracking_number == number)).scalar_one() == "east"


def test_the_demo_community_puts_its_requests_in_both_grids(db, assistant):
    seed(db, assistant.config)
    with db.session() as session:
        grids = {g for (g,) in session.execute(select(Request.grid_id))}
    assert {"east", "west"} <= grids
