"""Charged periods and damages, against hand-checked numbers and a brute-force oracle."""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

import numpy as np
import oracle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapewatch import damages
from scrapewatch.config import Policy
from scrapewatch.damages import Activities, Activity, Period, assess
from scrapewatch.damages.money import period_damages, period_values, usd

DAY = 86_400
T0 = 1_740_787_200  # 2025-03-01T00:00:00Z
POLICY = Policy()


def activity(events: list[tuple[int, int]]) -> Activity:
    """Sum events per second, as the activity table does."""
    by_sec: dict[int, list[int]] = {}
    for t, p in events:
        by_sec.setdefault(t, [0, 0])
        by_sec[t][0] += p
        by_sec[t][1] += 1
    secs = sorted(by_sec)
    return Activity(np.array(secs, dtype=np.int64),
                    np.array([by_sec[s][0] for s in secs], dtype=np.int64),
                    np.array([by_sec[s][1] for s in secs], dtype=np.int64))


def _one(strategy):  # a strategy of damages.py on one entity's activity
    def periods(act: Activity, policy: Policy, rounding: str) -> list[Period]:
        return strategy(Activities.of(act), policy, rounding).of(0)
    return periods


greedy_periods = _one(damages.greedy_periods)
peak_periods = _one(damages.peak_periods)
calendar_periods = _one(damages.calendar_periods)
max_periods = _one(damages.max_periods)


# ---- damages of one period: exact decimals, every rounding and charge ----

@pytest.mark.parametrize(("posts", "rounding", "charge", "expected"), [
    (1_000_001, "full", "all", "15000.00"),
    (1_999_999, "full", "all", "15000.00"),
    (2_000_000, "full", "all", "30000.00"),
    (1_000_001, "started", "all", "30000.00"),
    (1_000_001, "prorata", "all", "15000.02"),   # 15,000.015 rounds half up
    (1_000_003, "prorata", "all", "15000.05"),   # 15,000.045 rounds half up
    (2_500_000, "prorata", "all", "37500.00"),
    (2_500_000, "full", "excess", "15000.00"),   # 1.5 M over: one whole million
    (2_500_000, "started", "excess", "30000.00"),
    (1_000_001, "prorata", "excess", "0.02"),    # 1 post over: 0.015 -> 0.02
    (1_000_001, "full", "excess", "0.00"),
])
def test_period_damages(posts: int, rounding: str, charge: str, expected: str) -> None:
    policy = replace(POLICY, charge=charge)
    assert period_damages(posts, policy=policy, rounding=rounding) == Decimal(expected)


def test_period_damages_with_fractional_rate() -> None:
    policy = replace(POLICY, rate_usd=Decimal("0.015"), per_posts=1)
    assert period_damages(1_000_001, policy=policy, rounding="prorata") == Decimal("15000.02")


def test_period_values_order_like_damages() -> None:
    posts = np.array([999_999, 1_000_000, 1_000_001, 1_000_003, 2_999_999])
    assert period_values(posts, POLICY, "full").tolist() == [0, 0, 1, 1, 2]
    assert period_values(posts, POLICY, "started").tolist() == [0, 0, 2, 2, 3]
    # 1,000,001 x 1.5 cents = 1,500,001.5 -> 1,500,002; 2,999,999 -> 4,499,998.5 -> 4,499,999
    assert period_values(posts, POLICY, "prorata").tolist() == [0, 0, 1_500_002, 1_500_005,
                                                                 4_499_999]


# ---- the 24-hour edge and the threshold edge ----

def test_exactly_threshold_is_not_a_violation() -> None:
    act = activity([(T0, 500_000), (T0 + DAY - 1, 500_000)])
    for strategy in (greedy_periods, peak_periods, max_periods, calendar_periods):
        assert strategy(act, POLICY, "full") == []


def test_requests_24h_apart_never_share_a_period() -> None:
    act = activity([(T0, 600_000), (T0 + DAY, 600_000)])
    for strategy in (greedy_periods, peak_periods, max_periods):
        assert strategy(act, POLICY, "full") == []


def test_requests_one_second_less_apart_do() -> None:
    act = activity([(T0, 600_000), (T0 + DAY - 1, 600_000)])
    [period] = greedy_periods(act, POLICY, "full")
    assert (period.start, period.end, period.posts, period.requests) == (
        T0, T0 + DAY, 1_200_000, 2)


def test_greedy_jumps_to_the_first_request_after_the_period() -> None:
    # 0 h: 1.1 M; 23 h: 0.5 M; 25 h: 0.6 M; 47 h: 0.5 M
    act = activity([(T0, 1_100_000), (T0 + 23 * 3600, 500_000), (T0 + 25 * 3600, 600_000),
                    (T0 + 47 * 3600, 500_000)])
    periods = greedy_periods(act, POLICY, "full")
    assert [(p.start - T0, p.posts) for p in periods] == [(0, 1_600_000),
                                                          (25 * 3600, 1_100_000)]


def test_max_beats_greedy_with_a_period_ending_just_after_a_request() -> None:
    # A at 0 h holds 1.1 M, B at 20 h 0.5 M, C at 30 h 0.6 M.
    events = [(T0, 1_100_000), (T0 + 20 * 3600, 500_000), (T0 + 30 * 3600, 600_000)]
    act = activity(events)
    # Greedy charges [0 h, 24 h) = A + B, then C alone is under the line: $15,000.
    assert [(p.start - T0, p.posts) for p in greedy_periods(act, POLICY, "full")] == [
        (0, 1_600_000)]
    # Max charges A alone in a period that starts before any request, then B + C:
    # $30,000. Of equal optima it picks the latest starts: A's period ends at B.
    periods = max_periods(act, POLICY, "full")
    assert [(p.start - T0, p.end - T0, p.posts) for p in periods] == [
        (-4 * 3600, 20 * 3600, 1_100_000), (20 * 3600, 20 * 3600 + DAY, 1_100_000)]
    assert assess(act, POLICY).sensitivity["max"]["full"] == Decimal("30000.00")
    assert assess(act, POLICY).sensitivity["greedy"]["full"] == Decimal("15000.00")


def test_calendar_day_across_dst_has_23_hours() -> None:
    # 2025-03-09 in New York is 23 hours long (clocks jump 02:00 -> 03:00).
    start = 1_741_496_400  # 2025-03-09T05:00:00Z = local midnight
    act = activity([(start, 700_000), (start + 22 * 3600 + 59 * 60, 400_000)])
    policy = replace(POLICY, timezone="America/New_York")
    [period] = calendar_periods(act, policy, "full")
    assert (period.start, period.end - period.start, period.posts) == (start, 23 * 3600,
                                                                       1_100_000)


def test_calendar_days_split_at_local_midnight() -> None:
    # 23:59:59 and 00:00:00 UTC are different calendar days in UTC ...
    act = activity([(T0 - 1, 600_000), (T0, 600_000)])
    assert calendar_periods(act, POLICY, "full") == []
    # ... but the same day in Tokyo (UTC+9).
    [period] = calendar_periods(act, replace(POLICY, timezone="Asia/Tokyo"), "full")
    assert period.posts == 1_200_000 and period.start == T0 - 9 * 3600


def test_assess_gives_every_mode_and_rounding() -> None:
    act = activity([(T0, 1_500_000), (T0 + 3 * DAY, 2_000_001)])
    result = assess(act, POLICY)
    assert [p.posts for p in result.periods] == [1_500_000, 2_000_001]
    assert result.damages_usd == Decimal("45000.00")
    assert result.damages_by_rounding == {"full": Decimal("45000.00"),
                                          "prorata": Decimal("52500.02"),
                                          "started": Decimal("75000.00")}
    assert result.sensitivity["peak"] == {"full": Decimal("30000.00"),
                                          "prorata": Decimal("30000.02"),
                                          "started": Decimal("45000.00")}


# ---- property tests against the oracle ----

THRESHOLD = 1_000_000
events_strategy = st.lists(
    st.tuples(st.integers(0, 4 * DAY), st.integers(0, 700_000)), min_size=1, max_size=12)


def _value(rounding: str):
    def value(posts: int) -> int:
        return int(period_values(np.array([posts]), POLICY, rounding)[0])
    return value


@settings(max_examples=200, deadline=None)
@given(events_strategy)
def test_greedy_and_peak_match_oracle(raw: list[tuple[int, int]]) -> None:
    events = [(T0 + t, p) for t, p in raw]
    act = activity(events)
    assert [(p.start, p.posts) for p in greedy_periods(act, POLICY, "full")] == \
        oracle.greedy(events, THRESHOLD)
    peak_posts, peak_start = oracle.peak(events)
    expected = [(peak_start, peak_posts)] if peak_posts > THRESHOLD else []
    assert [(p.start, p.posts) for p in peak_periods(act, POLICY, "full")] == expected


@settings(max_examples=100, deadline=None)
@given(events_strategy, st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]))
def test_calendar_matches_oracle(raw: list[tuple[int, int]], zone: str) -> None:
    events = [(T0 + t, p) for t, p in raw]
    policy = replace(POLICY, timezone=zone)
    assert [(p.start, p.posts) for p in calendar_periods(activity(events), policy, "full")] \
        == oracle.calendar(events, THRESHOLD, zone)


def _check_max(events: list[tuple[int, int]], rounding: str, step: int) -> None:
    periods = max_periods(activity(events), POLICY, rounding)
    for a, b in itertools.pairwise(periods):
        assert a.end <= b.start  # disjoint
    value = _value(rounding)
    got = sum(value(p.posts) for p in periods)
    assert got == oracle.max_total(events, value, step=step)
    # the reported posts are the posts really in each period
    assert all(p.posts == oracle.window(events, p.start, p.end) for p in periods)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 96), st.integers(0, 700_000)), min_size=1,
                max_size=14),
       st.sampled_from(["full", "prorata", "started"]))
def test_max_is_optimal_on_an_hour_grid(raw: list[tuple[int, int]], rounding: str) -> None:
    # Events on whole hours: an optimum over hourly starts is an optimum over all seconds.
    _check_max([(T0 + h * 3600, p) for h, p in raw], rounding, step=3600)


@settings(max_examples=12, deadline=None)
@given(st.lists(st.tuples(st.integers(0, DAY + DAY // 2), st.integers(100_000, 700_000)),
                min_size=2, max_size=7),
       st.sampled_from(["full", "prorata"]))
def test_max_is_optimal_at_any_second(raw: list[tuple[int, int]], rounding: str) -> None:
    _check_max([(T0 + t, p) for t, p in raw], rounding, step=1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 3 * DAY), st.integers(0, 900_000)),
                         min_size=1, max_size=8), min_size=1, max_size=6),
       st.sampled_from(["greedy", "calendar", "max", "peak"]),
       st.sampled_from(["full", "prorata", "started"]),
       st.sampled_from(["UTC", "America/New_York"]))
def test_many_entities_at_once_price_as_each_alone(raw: list[list[tuple[int, int]]], mode: str,
                                                   rounding: str, zone: str) -> None:
    # Pricing a batch of entities gives each entity what pricing it alone gives.
    policy = replace(POLICY, periods=mode, rounding=rounding, timezone=zone)
    alone = [assess(activity([(T0 + t, p) for t, p in events]), policy) for events in raw]
    acts = [activity([(T0 + t, p) for t, p in events]) for events in raw]
    batch = Activities(np.concatenate([np.full(len(a.sec), i) for i, a in enumerate(acts)]),
                       *(np.concatenate([getattr(a, name) for a in acts])
                         for name in ("sec", "posts", "requests")), len(acts))
    many = damages.assess_many(batch, policy)
    for i, one in enumerate(alone):
        assert many.periods.of(i) == one.periods
        assert {r: usd(c[i]) for r, c in many.cents.items()} == one.damages_by_rounding
        assert {m: {r: usd(c[i]) for r, c in by.items()}
                for m, by in many.sensitivity.items()} == one.sensitivity
