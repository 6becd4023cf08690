"""The window SQL (peak, first crossing, watch level) against the brute-force oracle."""

from __future__ import annotations

from dataclasses import replace

import oracle
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapewatch.config import Policy
from scrapewatch.detect.windows import entity_windows
from scrapewatch.engine.duckdb import DuckDBEngine, connect
from scrapewatch.reporting.model import window_of_row
from scrapewatch.sql import run

DAY = 86_400
T0 = 1_740_787_200  # 2025-03-01T00:00:00Z


def windows_of(events_by_entity: dict[str, list[tuple[int, int]]],
               policy: Policy | None = None):
    policy = policy or Policy()
    con = connect()
    rows = [(e, t, p) for e, events in events_by_entity.items() for t, p in events]
    con.register("input", pa.table({"entity": [r[0] for r in rows],
                                    "sec": pa.array([r[1] for r in rows], pa.int64()),
                                    "posts": pa.array([r[2] for r in rows], pa.int64())}))
    run(con, "INSERT INTO activity_parts SELECT 'client_ip', entity, sec, posts, 1, 0, 0, 1, 1 "
             "FROM input")
    entity_windows(DuckDBEngine(con), policy)
    rows = con.sql("SELECT * FROM windows").to_arrow_table().to_pylist()
    return con, {w.entity: w for w in map(window_of_row, rows)}


def test_exactly_24h_apart_never_share_a_window() -> None:
    _, found = windows_of({"a": [(T0, 600_000), (T0 + DAY, 600_000)]},
                          replace(Policy(), warning_share=0))
    assert found["a"].peak_24h_posts == 600_000
    assert found["a"].first_crossing is None


def test_one_second_less_apart_share_one() -> None:
    _, found = windows_of({"a": [(T0, 600_000), (T0 + DAY - 1, 600_000)]})
    w = found["a"]
    assert (w.peak_24h_posts, w.peak_start, w.first_crossing) == (1_200_000, T0, T0 + DAY - 1)
    assert (w.total_posts, w.requests) == (1_200_000, 2)


def test_requests_in_one_second_are_summed() -> None:
    _, found = windows_of({"a": [(T0, 400_000)] * 3})
    assert (found["a"].peak_24h_posts, found["a"].requests) == (1_200_000, 3)


def test_entities_below_the_watch_level_are_left_out() -> None:
    _, found = windows_of({"low": [(T0, 799_999)], "watch": [(T0, 800_000)],
                           "spread": [(T0 + d * DAY, 200_000) for d in range(5)]})
    assert set(found) == {"watch"}  # "spread" has 1 M posts, but never 800,000 in a day
    _, found = windows_of({"low": [(T0, 799_999)]}, replace(Policy(), warning_share=0))
    assert set(found) == {"low"}


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]),
                       st.lists(st.tuples(st.integers(0, 3 * DAY), st.integers(0, 600_000)),
                                min_size=1, max_size=10), min_size=1))
def test_windows_match_oracle(raw: dict[str, list[tuple[int, int]]]) -> None:
    events = {e: [(T0 + t, p) for t, p in ev] for e, ev in raw.items()}
    _, found = windows_of(events, replace(Policy(), warning_share=0))
    assert set(found) == set(events)  # a watch level of 0 keeps every entity
    for entity, ev in events.items():
        posts, start = oracle.peak(ev)
        w = found[entity]
        assert (w.peak_24h_posts, w.peak_start) == (posts, start)
        assert w.first_crossing == oracle.first_crossing(ev, 1_000_000)
        assert w.total_posts == sum(p for _, p in ev)
