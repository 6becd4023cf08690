"""Scan the seeded generator's logs and compare with the answer planted in them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from benchmarks.generate import generate
from scrapewatch.config import load_config
from scrapewatch.pipeline import scan


@pytest.mark.parametrize(("fmt", "lines", "name"), [("combined", 200_000, "access.log.gz"),
                                                    ("jsonl", 60_000, "api.jsonl")])
def test_scan_finds_exactly_the_planted_answer(tmp_path: Path, fmt: str, lines: int,
                                               name: str) -> None:
    expected = generate(tmp_path / name, lines=lines, fmt=fmt, seed=11,
                        start=datetime(2025, 3, 1, tzinfo=UTC), days=7)
    report = scan([str(tmp_path)], config=load_config()).to_json()
    assert report["inputs"]["lines"] == lines
    assert report["inputs"]["rejected"] == 0
    got = {e["entity"]: {"periods": [{k: p[k] for k in ("start", "end", "posts")}
                                     for p in e["periods"]],
                         "damages_usd": e["damages_usd"]} for e in report["entities"]}
    want = {entity: {"periods": v["periods"], "damages_usd": v["damages_usd"]}
            for entity, v in expected["violators"].items()}
    assert got == want
    assert report["totals"]["damages_usd"] == expected["total_damages_usd"]
    watch = {w["entity"]: w["peak_24h_posts"] for w in report["watchlist"]}
    assert watch == expected["watchlist"]
    assert set(expected["exactly_threshold"]) <= set(watch)
