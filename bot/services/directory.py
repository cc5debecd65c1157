"""The services directory (15-minute life circle): the nearest services of a type, and whether
each is open now or when it opens next, in the community's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from bot.config import Config, Service, ServiceType
from bot.places import distance_m

NEAREST = 3  # how many services an answer shows


@dataclass(frozen=True)
class Found:
    """A service as a resident is told of it at one moment (times aware, community zone)."""

    service: Service
    distance_m: float | None  # from the resident's point; None when no point is known
    open_until: datetime | None  # when open now: when it closes
    next_opening: datetime | None  # when closed now: when it opens (None: not in two weeks)


def types_offered(config: Config) -> list[ServiceType]:
    """The service types with at least one place, in config.yml's order."""
    listed = {service.type for service in config.services}
    return [kind for kind in config.service_types if kind.id in listed]


def find(config: Config, type_id: str, now: datetime,
         point: tuple[float, float] | None = None, limit: int = NEAREST) -> list[Found]:
    """The services of `type_id`: nearest to `point` first, else in config.yml's order.
    `now` is naive UTC, as stored everywhere else."""
    local = now.replace(tzinfo=timezone.utc).astimezone(config.tz)
    services = [s for s in config.services if s.type == type_id]
    found = []
    for service in services:
        distance = (distance_m(point[0], point[1], service.latitude, service.longitude)
                    if point else None)
        until = service.hours.open_until(local)
        found.append(Found(service, distance, until,
                           None if until else service.hours.next_opening(local)))
    if point:
        found.sort(key=lambda item: item.distance_m)
    return found[:limit]
