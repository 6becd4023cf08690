"""Charged periods and damages: the policy of DESIGN.md, exact, with no I/O.

Works on one entity's activity (posts and requests per active second, whole UTC
seconds) as numpy arrays. A 24-hour period starting at second s is [s, s + 86400).
Money is Decimal; comparisons that choose periods use exact integers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from scrapewatch.config import PERIODS, ROUNDINGS, Policy
from scrapewatch.errors import ConfigError
from scrapewatch.schema import DAY_SECONDS

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Activity:
    """One entity's counted activity: sorted unique seconds with their posts and requests."""

    sec: np.ndarray
    posts: np.ndarray
    requests: np.ndarray
    _posts_before: np.ndarray = field(init=False, repr=False)
    _requests_before: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        zero = np.zeros(1, dtype=np.int64)
        object.__setattr__(self, "_posts_before", np.concatenate((zero, np.cumsum(self.posts))))
        object.__setattr__(
            self, "_requests_before", np.concatenate((zero, np.cumsum(self.requests))))

    def posts_between(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Posts in [start, end), elementwise."""
        return np.asarray(self._posts_before[self._index(end)]
                          - self._posts_before[self._index(start)])

    def requests_between(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Requests in [start, end), elementwise."""
        return np.asarray(self._requests_before[self._index(end)]
                          - self._requests_before[self._index(start)])

    def _index(self, at: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.sec, at, side="left")


@dataclass(frozen=True)
class Period:
    """A charged period [start, end) in epoch seconds with what it holds."""

    start: int
    end: int
    posts: int
    requests: int


# The most one charged period may cost: past it the policy is surely mistyped (the
# world's yearly output is about $10^14), and money stays far inside the report's
# decimal(38, 2) and the store's DECIMAL(20, 2) columns.
MAX_PERIOD_DAMAGES = Decimal(10**15)


def period_damages(posts: int, *, policy: Policy, rounding: str) -> Decimal:
    """Damages of one charged period holding `posts` posts, under `rounding`.

    Exact for every rate and count: cents are computed in integers (as `period_values`
    does) and rounded half up once.

    Raises:
        ConfigError: when the period would cost more than MAX_PERIOD_DAMAGES.
    """
    base = posts if policy.charge == "all" else max(0, posts - policy.threshold_posts)
    with localcontext() as ctx:
        ctx.prec = 60
        numerator, denominator = (policy.rate_usd * 100).as_integer_ratio()  # cents
    if rounding == "full":
        units, per = base // policy.per_posts, 1
    elif rounding == "started":
        units, per = -(-base // policy.per_posts), 1
    else:
        units, per = base, policy.per_posts
    cents = (2 * units * numerator + per * denominator) // (2 * per * denominator)
    if cents > MAX_PERIOD_DAMAGES * 100:
        raise ConfigError(
            f"a charged period of {posts:,} posts would cost more than "
            f"${MAX_PERIOD_DAMAGES:,} at policy.rate_usd {policy.rate_usd} per "
            f"{policy.per_posts:,} posts; check rate_usd and per_posts")
    return Decimal(cents).scaleb(-2)


def _period(activity: Activity, start: int, end: int) -> Period:
    s, e = np.array([start]), np.array([end])
    return Period(start, end, int(activity.posts_between(s, e)[0]),
                  int(activity.requests_between(s, e)[0]))


def _ahead(activity: Activity, starts: np.ndarray) -> np.ndarray:
    """Posts in the 24-hour period starting at each of `starts`."""
    return activity.posts_between(starts, starts + DAY_SECONDS)


def greedy_periods(activity: Activity, policy: Policy, rounding: str) -> list[Period]:
    """Walk request times; charge the first period over the threshold, jump 24 h, repeat."""
    del rounding
    over = activity.sec[_ahead(activity, activity.sec) > policy.threshold_posts]
    periods, i = [], 0
    while i < len(over):
        start = int(over[i])
        periods.append(_period(activity, start, start + DAY_SECONDS))
        i = int(np.searchsorted(over, start + DAY_SECONDS, side="left"))
    return periods


def peak_periods(activity: Activity, policy: Policy, rounding: str) -> list[Period]:
    """Only the single worst 24-hour period (the earliest of equals), if it violates."""
    del rounding
    ahead = _ahead(activity, activity.sec)
    best = int(np.argmax(ahead))
    if ahead[best] <= policy.threshold_posts:
        return []
    start = int(activity.sec[best])
    return [_period(activity, start, start + DAY_SECONDS)]


def calendar_periods(activity: Activity, policy: Policy, rounding: str) -> list[Period]:
    """Calendar days in `policy.timezone` (23 or 25 hours across DST) over the threshold."""
    del rounding
    bounds = day_bounds(policy.timezone, int(activity.sec[0]), int(activity.sec[-1]))
    starts, ends = bounds[:-1], bounds[1:]
    posts = activity.posts_between(starts, ends)
    return [_period(activity, int(s), int(e))
            for s, e in zip(starts[posts > policy.threshold_posts],
                            ends[posts > policy.threshold_posts], strict=True)]


def day_bounds(zone: str, first: int, last: int) -> np.ndarray:
    """Epoch seconds of every local midnight from the day of `first` to after `last`."""
    tz = ZoneInfo(zone)
    day = datetime.fromtimestamp(first, tz).date()
    end = datetime.fromtimestamp(last, tz).date()
    bounds = []
    while day <= end + timedelta(days=1):
        bounds.append(_midnight(zone, day))
        day += timedelta(days=1)
    return np.array(bounds, dtype=np.int64)


@lru_cache(maxsize=4096)
def _midnight(zone: str, day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).timestamp())


def period_values(posts: np.ndarray, policy: Policy, rounding: str) -> np.ndarray:
    """Exact integer value of periods holding `posts`, ordered as their damages are.

    full and started count millions (damages = count x rate); prorata counts cents,
    rounded half up per period as the damages are. Zero when a period does not violate.
    """
    posts = np.asarray(posts, dtype=np.int64)
    base = posts if policy.charge == "all" else np.maximum(posts - policy.threshold_posts, 0)
    per = policy.per_posts
    if rounding == "full":
        value = base // per
    elif rounding == "started":
        value = -(-base // per)
    else:
        numerator, denominator = (policy.rate_usd * 100).as_integer_ratio()
        exact = base if _fits_int64(base, 2 * numerator) else base.astype(object)
        value = (2 * exact * numerator + per * denominator) // (2 * per * denominator)
    return np.where(posts > policy.threshold_posts, value, 0)


def _fits_int64(values: np.ndarray, factor: int) -> bool:
    """Whether values * factor (plus a small term) stays clear of int64 overflow."""
    return not values.size or int(values.max()) * factor < 2**62


def max_periods(activity: Activity, policy: Policy, rounding: str) -> list[Period]:
    """Non-overlapping 24-hour periods, starting at any second, of maximum total damages.

    Dynamic programming over start seconds x, right to left:
    best(x) = max(best(x + 1), value(x) + best(x + 86400)). value(x), the damages of
    [x, x + 86400), only changes where a request enters or leaves the window (at
    a - 86399 and a + 1 for each request second a), and best(x) only where value(x) or
    best(x + 86400) does: those points shifted back by whole days. Between consecutive
    points both are constant, so the DP runs on the points, a day of them at a time,
    exactly as it would on every second. Ties go to the later start (a segment's last
    second), so periods start at a request whenever the optimum allows.
    """
    day = DAY_SECONDS
    low, high = int(activity.sec[0]) - day + 1, int(activity.sec[-1])
    changes = np.concatenate((activity.sec - day + 1, activity.sec + 1))
    shifted = (changes[:, None] - np.arange(0, (high - low) // day + 2)[None, :] * day).ravel()
    points = np.unique(np.append(shifted[(shifted >= low) & (shifted <= high)], low))
    values = period_values(_ahead(activity, points), policy, rounding)
    best = np.zeros(len(points) + 1, dtype=values.dtype)  # best[i]: from segment i on
    taken = np.zeros(len(points), dtype=bool)  # the segment's last second starts a period
    # best(p + 86400) lies in a later day: fill the days right to left
    bounds = np.append(np.arange(high + 1, low, -day), low)
    block_ends = np.searchsorted(points, bounds, side="left")
    for start, end in zip(block_ends[1:], block_ends[:-1], strict=False):
        later = np.searchsorted(points, points[start:end] + day, side="right") - 1
        later[points[start:end] + day > high] = len(points)  # past the last start: 0
        take = values[start:end] + best[later]
        suffix = np.maximum.accumulate(np.append(take, best[end])[::-1])[::-1]
        best[start:end] = suffix[:-1]
        taken[start:end] = take > suffix[1:]
    periods, x = [], low
    for second in np.append(points[1:], high + 1)[taken] - 1:
        if second >= x:
            periods.append(_period(activity, int(second), int(second) + day))
            x = int(second) + day
    return periods


PeriodStrategy = Callable[[Activity, Policy, str], list[Period]]
PERIOD_STRATEGIES: dict[str, PeriodStrategy] = {
    "greedy": greedy_periods, "calendar": calendar_periods,
    "max": max_periods, "peak": peak_periods,
}
assert tuple(PERIOD_STRATEGIES) == PERIODS


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
    sensitivity: dict[str, dict[str, Decimal]] = {}
    chosen: dict[str, list[Period]] = {}
    for mode, strategy in PERIOD_STRATEGIES.items():
        sensitivity[mode] = {}
        fixed = None if mode == "max" else strategy(activity, policy, policy.rounding)
        for rounding in ROUNDINGS:
            # max picks different periods per rounding; the others do not depend on it
            periods = fixed if fixed is not None else strategy(activity, policy, rounding)
            sensitivity[mode][rounding] = sum(
                (period_damages(p.posts, policy=policy, rounding=rounding) for p in periods),
                Decimal("0.00"))
            if mode == policy.periods and rounding == policy.rounding:
                chosen["periods"] = periods
    periods = chosen["periods"]
    return Assessment(
        periods=periods,
        period_damages=[period_damages(p.posts, policy=policy, rounding=policy.rounding)
                        for p in periods],
        damages_usd=sensitivity[policy.periods][policy.rounding],
        damages_by_rounding=dict(sensitivity[policy.periods]),
        sensitivity=sensitivity,
    )


def iso(seconds: int) -> str:
    """Epoch seconds as ISO-8601 UTC, `2024-11-15T03:04:05Z`."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
