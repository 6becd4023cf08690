"""scan() end to end on random logs: mixed offsets, shuffled lines, all period modes."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import oracle
import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrapewatch.allow import AllowList
from scrapewatch.config import Config, PostsConfig, load_config
from scrapewatch.damages import iso
from scrapewatch.damages.money import period_damages
from scrapewatch.errors import ConfigError
from scrapewatch.pipeline import scan
from scrapewatch.posts import PostsRule
from scrapewatch.reporting.html import render_html
from scrapewatch.reporting.terminal import render_table

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


def test_allow_listed_entities_are_listed_apart_with_what_they_would_owe() -> None:
    config = load_config(overrides={"entity.allow": "api_key:k-acme-scraper, 198.51.100.0/24, "
                                                    "k-research-lab"})
    report = scan([str(ROOT / "sample_logs")], config=config)
    assert [f.window.entity for f in report.findings] == []
    assert [(f.window.entity, f.assessment.damages_usd) for f in report.allowed] == [
        ("k-acme-scraper", 45000), ("198.51.100.23", 15000)]
    assert report.damages_usd == 0
    assert [w.entity for w in report.watchlist] == ["203.0.113.77"]  # k-research-lab allowed
    doc = report.to_json()
    assert doc["totals"]["damages_usd"] == "0.00"
    assert [a["entity"] for a in doc["allowed"]] == ["k-acme-scraper", "198.51.100.23"]
    table = render_table(report)
    assert "Allow-listed, not charged: 2 (would owe $60,000.00)" in table
    assert "Authorised: allow-listed, not charged" in render_html(report)


def test_an_allow_listed_network_covers_the_networks_inside_it() -> None:
    allow = AllowList.parse(["2001:db8::/32", "user:ops"])
    assert allow.allows("client_ip", "2001:db8:5::/64")
    assert allow.allows("client_ip", "2001:db8::1")
    assert not allow.allows("client_ip", "2001:db9::1")
    assert allow.allows("user", "ops") and not allow.allows("api_key", "ops")
    assert not allow.allows("client_ip", "192.0.2.1")


def test_an_allow_list_covers_ipv4_mapped_clients_and_bad_entries_fail_early() -> None:
    allow = AllowList.parse(["203.0.113.0/24"])
    assert allow.allows("client_ip", "::ffff:203.0.113.5")
    assert AllowList.parse(["::ffff:203.0.113.0/120"]).allows("client_ip", "203.0.113.9")
    with pytest.raises(ConfigError, match="empty entry"):
        load_config(overrides={"entity.allow": "k-partner,"})


def test_a_pseudonymised_report_hides_the_allow_list() -> None:
    config = load_config(overrides={"entity.allow": "k-acme-scraper"})
    doc = scan([str(ROOT / "sample_logs")], config=config,
               pseudonym_key=b"sixteen bytes key").to_json()
    assert doc["run"]["config"]["entity"]["allow"] == ["(1 entries hidden)"]
    assert "k-acme-scraper" not in json.dumps(doc)


def test_an_organisation_is_one_stream_with_its_members_listed(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    log.write_text(
        '{"ts": "2025-03-01T10:00:00Z", "api_key": "k-acme-1", "path": "/x", "posts": 600000}\n'
        '{"ts": "2025-03-01T11:00:00Z", "client_ip": "198.51.100.7", "path": "/x", '
        '"posts": 600000}\n'
        '{"ts": "2025-03-01T12:00:00Z", "api_key": "k-other", "path": "/x", "posts": 900000}\n')
    mapping = tmp_path / "orgs.csv"
    mapping.write_text("key,cidr,org\nk-acme-1,,Acme\n,198.51.100.0/24,Acme\n")
    alone = scan([str(log)], config=load_config())
    assert alone.findings == []  # 600,000 posts each: neither is over the limit
    merged = scan([str(log)], config=load_config(
        overrides={"entity.organisations": str(mapping)}))
    [finding] = merged.findings
    assert (finding.window.entity_kind, finding.window.entity, finding.window.peak_24h_posts,
            finding.assessment.damages_usd) == ("org", "Acme", 1_200_000, 15_000)
    assert finding.members == ["api_key:k-acme-1", "client_ip:198.51.100.7"]
    assert merged.to_json()["entities"][0]["members"] == finding.members
    assert "Members (their requests merged into one stream)" in render_html(merged)


def test_a_bad_organisations_file_is_a_config_error(tmp_path: Path) -> None:
    mapping = tmp_path / "orgs.csv"
    mapping.write_text("key,cidr,org\nk1,10.0.0.0/8,Both\n")
    with pytest.raises(ConfigError, match=r"orgs\.csv:2: each row needs an org and either"):
        load_config(overrides={"entity.organisations": str(mapping)})


def test_each_charged_period_names_its_files_lines_and_edge_lines() -> None:
    report = scan([str(ROOT / "sample_logs")], config=load_config())
    period = report.findings[0].assessment.periods[0]  # k-acme-scraper's first
    source = ROOT / "sample_logs/api-gateway.jsonl"
    lines = source.read_text().splitlines()
    inside = [n for n, line in enumerate(lines, start=1)
              if (r := json.loads(line)).get("api_key") == "k-acme-scraper"
              and iso(period.start) <= r["ts"] < iso(period.end)
              and 200 <= r["status"] < 300]  # the counted requests
    [evidence] = report.findings[0].evidence[0]
    assert (evidence.path, evidence.first_line, evidence.last_line, evidence.requests,
            evidence.posts) == (str(ROOT / "sample_logs/api-gateway.jsonl"), inside[0],
                                inside[-1], period.requests, period.posts)
    assert len(inside) == period.requests
    assert evidence.samples == [  # each line with the UTC second it counts at
        (n, lines[n - 1], int(datetime.fromisoformat(json.loads(lines[n - 1])["ts"]).timestamp()))
        for n in (inside[0], inside[-1])]
    hidden = scan([str(ROOT / "sample_logs")], config=load_config(),
                  pseudonym_key=b"sixteen bytes key").findings[0].evidence[0][0]
    assert (hidden.first_line, hidden.samples) == (inside[0], [])


def test_an_allow_listed_organisation(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    log.write_text("".join(json.dumps({"ts": f"2025-03-01T1{h}:00:00Z", "api_key": f"k{h}",
                                       "path": "/x", "posts": 600_000}) + "\n"
                           for h in range(2)))
    mapping = tmp_path / "orgs.csv"
    mapping.write_text("key,cidr,org\nk0,,Partner\nk1,,Partner\n")
    report = scan([str(log)], config=load_config(overrides={
        "entity.organisations": str(mapping), "entity.allow": "Partner"}))
    assert (report.findings, [f.window.entity for f in report.allowed]) == ([], ["Partner"])
