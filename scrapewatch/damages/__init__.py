"""Charged periods and damages: the policy of DESIGN.md, exact, with no I/O.

Works on the activity (posts and requests per active second, whole UTC seconds) of
many entities at once, as numpy arrays, so that pricing 200,000 flagged entities costs
a few array operations rather than a Python loop per entity. A 24-hour period starting
at second s is [s, s + 86400). Money is counted in whole cents (exact integers, Python
integers where int64 could overflow) and shown as Decimal; comparisons that choose
periods use exact integers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from scrapewatch.config import PERIODS, ROUNDINGS, Policy
from scrapewatch.damages.money import period_cents, period_values, usd
from scrapewatch.schema import DAY_SECONDS

DAY = DAY_SECONDS
# A row's key is (entity << SEC_BITS) | (second + OFFSET): one sorted int64 array that
# searchsorted walks without ever leaving an entity. Seconds lie in [1970, 9999], below
# 2**38; OFFSET keeps a period start a day before the first request non-negative.
SEC_BITS = 39
OFFSET = 1 << 17
MAX_ENTITIES = 1 << 23  # per batch, so that keys stay below 2**63
_EPOCH_DAY = date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class Activity:
    """One entity's counted activity: sorted unique seconds with their posts and requests."""

    sec: np.ndarray
    posts: np.ndarray
    requests: np.ndarray


@dataclass(frozen=True)
class Activities:
    """The activity of `count` entities, one after the other: entity i's rows are those
    with `entity == i`, sorted by second; every entity has at least one row."""

    entity: np.ndarray
    sec: np.ndarray
    posts: np.ndarray
    requests: np.ndarray
    count: int
    keys: np.ndarray = field(init=False, repr=False)
    starts: np.ndarray = field(init=False, repr=False)  # each entity's first row
    _posts_before: np.ndarray = field(init=False, repr=False)
    _requests_before: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.count > MAX_ENTITIES:
            raise ValueError(f"at most {MAX_ENTITIES} entities in one batch")
        zero = np.zeros(1, dtype=np.int64)
        values = {"keys": _keys(self.entity, self.sec),
                  "starts": np.searchsorted(self.entity, np.arange(self.count)),
                  "_posts_before": np.concatenate((zero, np.cumsum(self.posts))),
                  "_requests_before": np.concatenate((zero, np.cumsum(self.requests)))}
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def of(cls, activity: Activity) -> Activities:
        """One entity's activity as a batch of one."""
        return cls(np.zeros(len(activity.sec), dtype=np.int64), activity.sec,
                   activity.posts, activity.requests, 1)

    @property
    def firsts(self) -> np.ndarray:
        """Each entity's first active second."""
        return np.asarray(self.sec[self.starts])

    @property
    def lasts(self) -> np.ndarray:
        """Each entity's last active second."""
        return np.asarray(self.sec[np.append(self.starts[1:], len(self.sec)) - 1])

    def posts_between(self, entity: np.ndarray, start: np.ndarray, end: np.ndarray
                      ) -> np.ndarray:
        """Posts of `entity` in [start, end), elementwise."""
        return np.asarray(self._posts_before[self._index(entity, end)]
                          - self._posts_before[self._index(entity, start)])

    def requests_between(self, entity: np.ndarray, start: np.ndarray, end: np.ndarray
                         ) -> np.ndarray:
        """Requests of `entity` in [start, end), elementwise."""
        return np.asarray(self._requests_before[self._index(entity, end)]
                          - self._requests_before[self._index(entity, start)])

    def periods(self, entity: np.ndarray, start: np.ndarray, end: np.ndarray) -> Periods:
        """The periods [start, end) of `entity` with the posts and requests they hold."""
        return Periods(entity, start, end, self.posts_between(entity, start, end),
                       self.requests_between(entity, start, end))

    def _index(self, entity: np.ndarray, at: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.keys, _keys(entity, at), side="left")


def _keys(entity: np.ndarray, sec: np.ndarray) -> np.ndarray:
    return (np.asarray(entity, dtype=np.int64) << SEC_BITS) | (np.asarray(sec, np.int64)
                                                              + OFFSET)


@dataclass(frozen=True)
class Period:
    """A charged period [start, end) in epoch seconds with what it holds."""

    start: int
    end: int
    posts: int
    requests: int


@dataclass(frozen=True)
class Periods:
    """Charged periods of many entities, by entity and then start."""

    entity: np.ndarray
    start: np.ndarray
    end: np.ndarray
    posts: np.ndarray
    requests: np.ndarray

    def of(self, entity: int) -> list[Period]:
        """One entity's periods."""
        rows = np.flatnonzero(self.entity == entity)
        return [Period(int(self.start[i]), int(self.end[i]), int(self.posts[i]),
                       int(self.requests[i])) for i in rows]


def _ahead(acts: Activities) -> np.ndarray:
    """Posts in the 24-hour period starting at each active second."""
    return acts.posts_between(acts.entity, acts.sec, acts.sec + DAY)


def _chain(keys: np.ndarray) -> np.ndarray:
    """Of sorted candidate start keys, those a walk picks: each entity's first, then the
    first at or after 24 hours later, and so on. Runs all entities at once, one step of
    every walk per loop."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    entity = keys >> SEC_BITS
    following = np.searchsorted(keys, keys + DAY, side="left")
    inside = following < len(keys)
    inside[inside] = entity[following[inside]] == entity[inside]
    following[~inside] = len(keys)  # that entity's walk ends
    picked, current = [], np.flatnonzero(np.r_[True, entity[1:] != entity[:-1]])
    while current.size:
        picked.append(current)
        current = following[current]
        current = current[current < len(keys)]
    return np.sort(np.concatenate(picked))


def greedy_periods(acts: Activities, policy: Policy, rounding: str) -> Periods:
    """Walk request times; charge the first period over the threshold, jump 24 h, repeat."""
    del rounding
    over = np.flatnonzero(_ahead(acts) > policy.threshold_posts)
    rows = over[_chain(acts.keys[over])]
    return acts.periods(acts.entity[rows], acts.sec[rows], acts.sec[rows] + DAY)


def peak_periods(acts: Activities, policy: Policy, rounding: str) -> Periods:
    """Only the single worst 24-hour period (the earliest of equals), if it violates."""
    del rounding
    ahead = _ahead(acts)
    peak = np.maximum.reduceat(ahead, acts.starts)
    best = np.flatnonzero(ahead == peak[acts.entity])
    rows = best[np.r_[True, acts.entity[best][1:] != acts.entity[best][:-1]]]
    rows = rows[peak > policy.threshold_posts]
    return acts.periods(acts.entity[rows], acts.sec[rows], acts.sec[rows] + DAY)


def calendar_periods(acts: Activities, policy: Policy, rounding: str) -> Periods:
    """Calendar days in `policy.timezone` (23 or 25 hours across DST) over the threshold."""
    del rounding
    # an instant's local day is its UTC day, the one before or the one after: their
    # midnights, and the next day's, are all that is needed
    utc_days = np.unique(acts.sec // DAY) + _EPOCH_DAY
    days = np.unique(np.concatenate([utc_days + k for k in (-1, 0, 1, 2)]))
    midnights = np.array([_midnight(policy.timezone, int(d)) for d in days], dtype=np.int64)
    index = np.searchsorted(midnights, acts.sec, side="right") - 1
    runs = np.flatnonzero(np.r_[True, (acts.entity[1:] != acts.entity[:-1])
                                | (index[1:] != index[:-1])])
    posts = np.add.reduceat(acts.posts, runs)
    over = runs[posts > policy.threshold_posts]
    start = midnights[index[over]]
    end = midnights[np.searchsorted(days, days[index[over]] + 1)]
    return acts.periods(acts.entity[over], start, end)


def day_bounds(zone: str, first: int, last: int) -> np.ndarray:
    """Epoch seconds of every local midnight from the day of `first` to after `last`."""
    tz = ZoneInfo(zone)
    day = datetime.fromtimestamp(first, tz).date().toordinal()
    end = datetime.fromtimestamp(last, tz).date().toordinal()
    return np.array([_midnight(zone, d) for d in range(day, end + 2)], dtype=np.int64)


@lru_cache(maxsize=1 << 16)
def _midnight(zone: str, ordinal: int) -> int:
    """The epoch second of local midnight starting day `ordinal` (proleptic Gregorian)
    in `zone`; past year 9999, counted on in whole days."""
    if ordinal > date.max.toordinal():
        return _midnight(zone, date.max.toordinal()) + (ordinal - date.max.toordinal()) * DAY
    day = date.fromordinal(ordinal)
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).timestamp())


def max_periods(acts: Activities, policy: Policy, rounding: str) -> Periods:
    """Non-overlapping 24-hour periods, starting at any second, of maximum total damages.

    Dynamic programming over start seconds x, right to left:
    best(x) = max(best(x + 1), value(x) + best(x + 86400)). value(x), the damages of
    [x, x + 86400), only changes where a request enters or leaves the window (at
    a - 86399 and a + 1 for each request second a), and best(x) only where value(x) or
    best(x + 86400) does: those points shifted back by whole days. Between consecutive
    points both are constant, so the DP runs on the points, exactly as it would on
    every second: a day of them at a time (best(x + 86400) lies in a later day), every
    entity's day k in the same step. Ties go to the later start (a segment's last
    second), so periods start at a request whenever the optimum allows.
    """
    low, high = acts.firsts - DAY + 1, acts.lasts
    entity, point = _points(acts, low, high)
    keys = _keys(entity, point)
    values = period_values(acts.posts_between(entity, point, point + DAY), policy, rounding)
    n = len(keys)
    past_end = point + DAY > high[entity]  # best(x + 86400) is 0 there
    later = np.searchsorted(keys, keys + DAY, side="right") - 1
    day = (high[entity] - point) // DAY
    best = np.zeros(n + 1, dtype=values.dtype)
    taken = np.zeros(n, dtype=bool)
    order = np.argsort(day, kind="stable")
    bounds = np.searchsorted(day[order], np.arange(int(day.max()) + 2))
    for k in range(len(bounds) - 1):
        rows = order[bounds[k]:bounds[k + 1]]
        take = values[rows] + np.where(past_end[rows], 0, best[later[rows]])
        # each entity's points of day k are a run; after a run comes best of the first
        # point of its day k - 1, or 0 at the entity's end
        run_start = np.r_[True, (np.diff(rows) != 1)
                          | (entity[rows][1:] != entity[rows][:-1])]
        run_end = np.append(np.flatnonzero(run_start)[1:], len(rows)) - 1
        after = rows[run_end] + 1
        same = after < n
        same[same] = entity[after[same]] == entity[rows[run_end][same]]
        tail = np.where(same, best[np.where(same, after, n)], 0)
        suffix, following = _suffix_max(take, run_start, tail)
        best[rows] = suffix
        taken[rows] = take > following
    ends = np.append(point[1:], 0)  # a point segment's last second, + 1
    last_of_entity = np.r_[entity[1:] != entity[:-1], True]
    ends[last_of_entity] = high[entity[last_of_entity]] + 1
    chosen = np.flatnonzero(taken)
    starts = ends[chosen] - 1
    picks = _chain(_keys(entity[chosen], starts))
    return acts.periods(entity[chosen][picks], starts[picks], starts[picks] + DAY)


def _points(acts: Activities, low: np.ndarray, high: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Each entity's change points in [low, high] (see max_periods), sorted by entity
    and second: the entity and second of each."""
    changes = np.concatenate((acts.sec - DAY + 1, acts.sec + 1))
    owner = np.concatenate((acts.entity, acts.entity))
    days = ((high - low) // DAY + 2)[owner]
    repeat = np.repeat(np.arange(len(changes)), days)
    shift = np.arange(len(repeat)) - np.repeat(np.cumsum(days) - days, days)
    shifted, owner = changes[repeat] - shift * DAY, owner[repeat]
    keep = (shifted >= low[owner]) & (shifted <= high[owner])
    keys = np.unique(np.concatenate((_keys(owner[keep], shifted[keep]),
                                     _keys(np.arange(acts.count), low))))
    return keys >> SEC_BITS, (keys & ((1 << SEC_BITS) - 1)) - OFFSET


def _suffix_max(values: np.ndarray, run_start: np.ndarray, tail: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per run of `values` (runs begin where `run_start`), the running maximum from the
    right, each run followed by its `tail` value: the maximum at each position, and at
    the position after it."""
    run = np.cumsum(run_start) - 1
    runs = int(run[-1]) + 1 if len(run) else 0
    position = np.arange(len(values)) + run  # where each value lands among the tails
    merged = np.zeros(len(values) + runs, dtype=values.dtype)
    merged[position] = values
    ends = np.append(np.flatnonzero(run_start)[1:], len(values)) + np.arange(runs)
    merged[ends] = tail
    group = np.repeat(np.arange(runs), np.diff(np.r_[0, ends + 1]))
    # a later group's values all exceed an earlier group's: the running maximum from
    # the right never carries across a run
    span = (int(merged.max()) + 1) if len(merged) else 1
    if merged.dtype != object and span * (runs + 1) >= 2**62:
        merged = merged.astype(object)
    lift = (runs - 1 - group).astype(merged.dtype) * span
    best = np.maximum.accumulate((merged + lift)[::-1])[::-1] - lift
    return best[position], best[position + 1]


PeriodStrategy = Callable[[Activities, Policy, str], Periods]
PERIOD_STRATEGIES: dict[str, PeriodStrategy] = {
    "greedy": greedy_periods, "calendar": calendar_periods,
    "max": max_periods, "peak": peak_periods,
}
assert tuple(PERIOD_STRATEGIES) == PERIODS


@dataclass(frozen=True)
class Assessments:
    """Many entities' charged periods under the policy, and every alternative's total.

    Attributes:
        periods: the charged periods (the policy's mode and rounding).
        period_cents: the damages of each, in cents.
        cents: per rounding, each entity's damages in cents under the policy's mode.
        sensitivity: per mode and rounding, each entity's damages in cents.
    """

    periods: Periods
    period_cents: np.ndarray
    cents: dict[str, np.ndarray]
    sensitivity: dict[str, dict[str, np.ndarray]]


def assess_many(acts: Activities, policy: Policy) -> Assessments:
    """Charged periods and damages of every entity of `acts` under every periods mode
    and rounding."""
    sensitivity: dict[str, dict[str, np.ndarray]] = {}
    chosen = None
    for mode, strategy in PERIOD_STRATEGIES.items():
        sensitivity[mode] = {}
        fixed = None if mode == "max" else strategy(acts, policy, policy.rounding)
        for rounding in ROUNDINGS:
            # max picks different periods per rounding; the others do not depend on it
            periods = fixed if fixed is not None else strategy(acts, policy, rounding)
            cents = period_cents(periods.posts, policy, rounding)
            total = np.zeros(acts.count, dtype=cents.dtype)
            np.add.at(total, periods.entity, cents)
            sensitivity[mode][rounding] = total
            if mode == policy.periods and rounding == policy.rounding:
                chosen = periods, cents
    assert chosen is not None
    return Assessments(chosen[0], chosen[1], dict(sensitivity[policy.periods]), sensitivity)


@dataclass(frozen=True)
class Assessment:
    """One entity's charged periods under the policy, and every alternative's total."""

    periods: list[Period]
    period_damages: list[Decimal]
    damages_usd: Decimal
    damages_by_rounding: dict[str, Decimal]
    sensitivity: dict[str, dict[str, Decimal]]


def assess(activity: Activity, policy: Policy) -> Assessment:
    """Charged periods and damages of one entity under every periods mode and rounding."""
    many = assess_many(Activities.of(activity), policy)
    return Assessment(
        periods=many.periods.of(0),
        period_damages=[usd(c) for c in many.period_cents],
        damages_usd=usd(many.cents[policy.rounding][0]),
        damages_by_rounding={r: usd(c[0]) for r, c in many.cents.items()},
        sensitivity={mode: {r: usd(c[0]) for r, c in by.items()}
                     for mode, by in many.sensitivity.items()},
    )


def iso(seconds: int) -> str:
    """Epoch seconds as ISO-8601 UTC, `2024-11-15T03:04:05Z`."""
    day, second = divmod(seconds, DAY)
    hour, second = divmod(second, 3600)
    return f"{_iso_day(day)}T{hour:02d}:{second // 60:02d}:{second % 60:02d}Z"


@lru_cache(maxsize=1 << 14)
def _iso_day(day: int) -> str:
    """The date of a day counted from 1970-01-01 (a report names few distinct days)."""
    return datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d")
