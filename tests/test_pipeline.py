"""scan() end to end on random logs: mixed offsets, shuffled lines, all period modes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import oracle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrapewatch.config import Config, PostsConfig
from scrapewatch.damages import iso, period_damages
from scrapewatch.pipeline import scan
from scrapewatch.posts import PostsRule

T0 = 1_740_787_200  # 2025-03-01T00:00:00Z
CONFIG = Config(posts=PostsConfig(rules=(PostsRule(path="^/p$", param="n"),)))
ENTITIES = ("192.0.2.1", "2001:db8::7", "198.51.100.3")


def clf_line(entity: str, t: int, posts: int, offset_minutes: int, status: int) -> str:
    zone = timezone(timedelta(minutes=offset_minutes))
    local = datetime.fromtimestamp(t, UTC).astimezone(zone)
    stamp = local.strftime("%d/%b/%Y:%H:%M:%S %z")
    return f'{entity} - - [{stamp}] "GET /p?n={posts} HTTP/1.1" {status} 10 "-" "t"\n'


events_strategy = st.lists(
    st.tuples(st.sampled_from(ENTITIES), st.integers(0, 3 * 86_400), st.integers(0, 600_000),
              st.sampled_from([-720, -300, 0, 330, 840]), st.sampled_from([200, 200, 200, 404])),
    min_size=1, max_size=25)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events_strategy, st.randoms(use_true_random=False))
def test_scan_matches_oracle_whatever_the_offsets_and_order(
        tmp_path: Path, raw: list[tuple[str, int, int, int, int]], rng: random.Random) -> None:
    lines = [clf_line(e, T0 + t, p, off, status) for e, t, p, off, status in raw]
    rng.shuffle(lines)
    path = tmp_path / "mixed.log"
    path.write_text("".join(lines))
    report = scan([str(path)], config=CONFIG)
    counted = {e: [(T0 + t, p) for ee, t, p, _, s in raw if ee == e and s == 200]
               for e in ENTITIES}
    expected = {}
    for entity, events in counted.items():
        periods = oracle.greedy(events, 1_000_000) if events else []
        if periods:
            expected[entity] = [(iso(s), p) for s, p in periods]
    got = {f.window.entity: [(iso(p.start), p.posts) for p in f.assessment.periods]
           for f in report.findings}
    assert got == expected
    for f in report.findings:
        posts, start = oracle.peak(counted[f.window.entity])
        assert (f.window.peak_24h_posts, f.window.peak_start) == (posts, start)
        assert f.assessment.damages_usd == sum(
            (period_damages(p, policy=CONFIG.policy, rounding="full")
             for _, p in expected[f.window.entity]), Decimal("0.00"))
    assert report.requests == len(raw) and report.rejected == 0
