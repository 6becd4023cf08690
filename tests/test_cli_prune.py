"""`scrapewatch prune` end to end: what it drops, what the store reports after, and its
errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import SAMPLE_LOGS

from scrapewatch.cli import cli
from scrapewatch.config import load_config
from scrapewatch.store import ingest


def test_prune_drops_the_activity_before_an_instant_once(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    ingest(Path(store), [str(SAMPLE_LOGS)], config=load_config())
    runner = CliRunner()
    first = runner.invoke(cli, ["prune", "--store", store, "--before", "2025-03-04"])
    assert (first.exit_code, first.stderr) == (0, "")
    assert first.stdout == "Dropped 559 activity rows before 2025-03-04T00:00:00+00:00.\n"
    again = runner.invoke(cli, ["prune", "--store", store, "--before", "2025-03-04"])
    assert again.stdout == "Dropped 0 activity rows before 2025-03-04T00:00:00+00:00.\n"
    # what is left: one period each of k-acme-scraper (2025-03-05) and 198.51.100.23
    reported = json.loads(runner.invoke(cli, ["report", "--store", store, "--output",
                                              "json"]).stdout)
    assert reported["totals"] == {"entities_flagged": 2, "periods": 2,
                                  "damages_usd": "30000.00"}


def test_a_bad_instant_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["prune", "--store", str(tmp_path / "s.db"),
                                      "--before", "yesterday"])
    assert result.exit_code == 2
    assert "'yesterday' is not an ISO 8601 date or instant" in result.stderr


def test_a_store_that_does_not_exist_is_an_error_and_is_not_made(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["prune", "--store", str(tmp_path / "typo.db"),
                                      "--before", "2025-01-01"])
    assert result.exit_code == 1 and "no such store" in result.stderr
    assert not (tmp_path / "typo.db").exists()
