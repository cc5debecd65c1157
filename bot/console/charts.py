"""Chart geometry for server-rendered SVG: bars and stacked columns, no script, no network."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # the value as shown
    y: float
    width: float


@dataclass(frozen=True)
class Segment:
    css: str  # class: the status, for its colour
    title: str
    x: float
    y: float
    width: float
    height: float


BAR_ROW = 26
BAR_LABEL = 180
BAR_SPACE = 250


def bars(items: list[tuple[str, float, str]]) -> tuple[list[Bar], int]:
    """Horizontal bars for (label, value, shown text); returns them and the chart's height."""
    top = max((value for _, value, _ in items), default=0) or 1
    drawn = [Bar(label, value, text, i * BAR_ROW, BAR_SPACE * value / top)
             for i, (label, value, text) in enumerate(items)]
    return drawn, BAR_ROW * len(items)


COLUMNS_WIDTH = 600
COLUMNS_HEIGHT = 150


def stacked_columns(buckets: list[tuple[datetime, Counter]], order: tuple[str, ...],
                    label=lambda key: key) -> tuple[list[Segment], list[tuple[float, str]]]:
    """Columns, one per bucket, stacked in `order`; plus (x, date label) ticks, a few only."""
    tallest = max((sum(c.values()) for _, c in buckets), default=0) or 1
    width = COLUMNS_WIDTH / max(len(buckets), 1)
    segments, ticks = [], []
    step = max(1, len(buckets) // 6)
    for i, (start, counts) in enumerate(buckets):
        y = float(COLUMNS_HEIGHT)
        for key in order:
            if not counts.get(key):
                continue
            height = COLUMNS_HEIGHT * counts[key] / tallest
            y -= height
            segments.append(Segment(key, f"{start:%m-%d} {label(key)}: {counts[key]}",
                                    i * width + 1, y, max(width - 2, 1), height))
        if i % step == 0:
            ticks.append((i * width, f"{start:%m-%d}"))
    return segments, ticks
