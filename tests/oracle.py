"""A brute-force reference for windows and periods, written straight from DESIGN.md.

Slow and obvious on purpose: it works on the raw (second, posts) events, one loop per
definition, so the fast code can be checked against it on small random cases.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

DAY = 86_400
Events = list[tuple[int, int]]  # (epoch second, posts) per request


def window(events: Events, start: int, end: int) -> int:
    return sum(p for t, p in events if start <= t < end)


def request_times(events: Events) -> list[int]:
    return sorted({t for t, _ in events})


def peak(events: Events) -> tuple[int, int]:
    """(posts, start) of the fullest [s, s + 24 h) over request times s, earliest first."""
    return max((window(events, s, s + DAY), -s) for s in request_times(events))[0], min(
        s for s in request_times(events)
        if window(events, s, s + DAY) == max(window(events, x, x + DAY)
                                             for x in request_times(events)))


def first_crossing(events: Events, threshold: int) -> int | None:
    for t in request_times(events):
        if window(events, t - DAY + 1, t + 1) > threshold:
            return t
    return None


def greedy(events: Events, threshold: int) -> list[tuple[int, int]]:
    """Walk request times in order, charging then jumping, as DESIGN.md words it."""
    periods, times, i = [], request_times(events), 0
    while i < len(times):
        s = times[i]
        if window(events, s, s + DAY) > threshold:
            periods.append((s, window(events, s, s + DAY)))
            while i < len(times) and times[i] < s + DAY:
                i += 1
        else:
            i += 1
    return periods


def calendar(events: Events, threshold: int, zone: str) -> list[tuple[int, int]]:
    """Local calendar days over the threshold, as (day start, posts)."""
    tz = ZoneInfo(zone)
    by_day: dict[object, int] = defaultdict(int)
    for t, p in events:
        by_day[datetime.fromtimestamp(t, tz).date()] += p
    out = []
    for day, posts in sorted(by_day.items()):
        if posts > threshold:
            start = datetime(day.year, day.month, day.day, tzinfo=tz)  # type: ignore[attr-defined]
            out.append((int(start.timestamp()), posts))
    return out


def max_total(events: Events, value, step: int = 1) -> int:
    """The best total value of disjoint periods [s, s + 24 h), s over every `step` seconds.

    best(x) = max(best(x + step), value(window at x) + best(x + 24 h)), by definition.
    """
    times = request_times(events)
    low = (times[0] - DAY + 1) // step * step
    high = times[-1]

    @cache
    def best(x: int) -> int:
        if x > high:
            return 0
        return max(best(x + step), value(window(events, x, x + DAY)) + best(x + DAY))

    for x in range(high, low - 1, -step):  # fill the cache from the right: no deep recursion
        best(x)
    return best(low)
