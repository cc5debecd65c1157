"""Places: the building a message names, the grid (网格) it belongs to, and distances.

A resident names a building as they write it ("5号楼", "5棟", "building 5", "5-р байр",
"5-بىنا"); config.yml's `place_patterns` find it in free text and `building_key` folds it to the
number the community's `grids` list. A shared location is placed at the nearest listed building
(within `NEAREST_BUILDING_M`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bot.config folds building numbers with building_key below
    from bot.config import Building, Config, Grid

# A shared location farther than this from every listed building is not put in a grid.
NEAREST_BUILDING_M = 300.0
EARTH_RADIUS_M = 6_371_000.0
_DIGITS = str.maketrans("༠༡༢༣༤༥༦༧༨༩٠١٢٣٤٥٦٧٨٩", "01234567890123456789")


def building_key(text: str | None) -> str:
    """A building or area as compared: its first number if it has one ("5号楼" → "5",
    "Building 05" → "5", "༥" → "5"), else its folded text."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text).translate(_DIGITS).casefold().strip()
    digits = re.search(r"\d+", folded)
    if digits:
        return str(int(digits.group()))
    return " ".join(folded.split())


def find_place(config: Config, text: str) -> str | None:
    """The first place `text` names by one of config.yml's place_patterns (any language)."""
    for patterns in config.place_patterns.values():
        for pattern in patterns:
            match = pattern.search(text)
            if match:
                return match.group(0).strip()
    return None


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def nearest_building(config: Config, latitude: float,
                     longitude: float) -> tuple[Grid, Building, float] | None:
    """The listed building closest to a point, with its distance, if within reach."""
    best = None
    for grid in config.grids:
        for building in grid.buildings:
            if building.latitude is None:
                continue
            d = distance_m(latitude, longitude, building.latitude, building.longitude)
            if best is None or d < best[2]:
                best = (grid, building, d)
    if best is None or best[2] > NEAREST_BUILDING_M:
        return None
    return best


def listed_building(config: Config, text: str | None) -> tuple[Grid, Building] | None:
    """The listed building a text names ("5号楼1单元302" → building 5), if any."""
    if not text:
        return None
    return config.building(building_key(find_place(config, text) or text))


def grid_for(config: Config, *, place: str | None = None, latitude: float | None = None,
             longitude: float | None = None, home: str | None = None) -> Grid | None:
    """The grid of a request: the building its place names, else the building nearest its
    shared location, else the resident's own building (`home`, as they gave it)."""
    found = listed_building(config, place)
    if found:
        return found[0]
    if latitude is not None and longitude is not None:
        near = nearest_building(config, latitude, longitude)
        if near:
            return near[0]
    found = listed_building(config, home)
    return found[0] if found else None


def home_point(config: Config, home: str | None) -> tuple[float, float] | None:
    """The coordinates of a resident's own building, if it is listed with them."""
    found = listed_building(config, home)
    if found and found[1].latitude is not None:
        return found[1].latitude, found[1].longitude
    return None
