"""`scrapewatch report` end to end: the store's report is the scan's, a window of it,
and a store that does not exist is an error that makes none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLE_LOGS

from scrapewatch.cli import cli
from scrapewatch.config import load_config
from scrapewatch.store import ingest

PINNED = {"SOURCE_DATE_EPOCH": "1741219200"}  # 2025-03-06T00:00:00Z


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "s.db"
    ingest(path, [str(SAMPLE_LOGS)], config=load_config())
    return path


def test_the_report_of_a_store_is_the_scan_of_its_files(store: Path) -> None:
    runner = CliRunner()
    scanned = runner.invoke(cli, ["scan", str(SAMPLE_LOGS), "--output", "json"], env=PINNED)
    reported = runner.invoke(cli, ["report", "--store", str(store), "--output", "json"],
                             env=PINNED)
    assert (reported.exit_code, reported.stderr) == (0, "")
    assert json.loads(reported.stdout)["totals"] == json.loads(scanned.stdout)["totals"] == {
        "entities_flagged": 2, "periods": 3, "damages_usd": "60000.00"}


def test_since_and_until_report_a_window_of_the_store(store: Path) -> None:
    # k-acme-scraper's periods start 2025-03-03T08:00 and 2025-03-05T12:00
    result = CliRunner().invoke(cli, ["report", "--store", str(store), "--output", "json",
                                      "--since", "2025-03-04T06:00:00Z",
                                      "--until", "2025-03-05T12:00:00Z"], env=PINNED)
    assert (result.exit_code, result.stderr) == (0, "")
    assert [e["entity"] for e in json.loads(result.stdout)["entities"]] == ["198.51.100.23"]


def test_a_store_that_does_not_exist_is_an_error_and_is_not_made(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--store", str(tmp_path / "typo.db")])
    assert result.exit_code == 1 and "no such store" in result.stderr
    assert not (tmp_path / "typo.db").exists()
