"""`scrapewatch report` end to end: the store's report is the scan's, a window of it,
and a store that does not exist is an error that makes none."""

from __future__ import annotations

import html
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


@pytest.mark.parametrize("args", [["--since", "yesterday"], ["--until", "2025-13-01"]])
def test_a_bad_window_instant_is_a_usage_error_with_an_example(store: Path,
                                                               args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["report", "--store", str(store), *args])
    assert result.exit_code == 2
    assert f"Invalid value for '{args[0]}': '{args[1]}' is not an ISO 8601" in result.stderr
    assert "such as 2025-03-01 or 2025-03-01T12:00:00Z" in result.stderr
    assert "unexpected" not in result.stderr


def test_a_window_that_holds_no_instant_is_a_usage_error(store: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--store", str(store), "--since", "2025-03-05",
                                      "--until", "2025-03-04"])
    assert result.exit_code == 2
    assert ("--since (2025-03-05T00:00:00Z) must be before --until (2025-03-04T00:00:00Z)"
            in result.stderr)


def test_the_window_is_recorded_in_the_run_and_shown_in_every_output(
        store: Path, tmp_path: Path) -> None:
    window = ["--since", "2025-03-04T06:00:00Z", "--until", "2025-03-05T12:00:00Z"]
    result = CliRunner().invoke(cli, ["report", "--store", str(store), *window,
                                      "--out", str(tmp_path / "out")], env=PINNED)
    assert result.exit_code == 0, result.stderr
    said = ("Window: only activity from 2025-03-04T06:00:00Z until 2025-03-05T12:00:00Z "
            "(--since, --until) is counted; the line, request and reject counts are the "
            "files' whole.")
    assert said in result.stdout
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert written["run"]["window"] == {"since": "2025-03-04T06:00:00Z",
                                        "until": "2025-03-05T12:00:00Z"}
    # the first and last requests are those inside the window (the files: 2025-03-03T00:06:57Z
    # to 2025-03-05T23:59:40Z)
    assert (written["inputs"]["first_request_at"], written["inputs"]["last_request_at"]) == (
        "2025-03-04T06:00:00Z", "2025-03-05T11:59:59Z")
    assert html.escape(said) in (tmp_path / "out" / "report.html").read_text()
    whole = CliRunner().invoke(cli, ["report", "--store", str(store), "--output", "json"],
                               env=PINNED)
    assert json.loads(whole.stdout)["run"]["window"] == {"since": None, "until": None}
    assert "Window:" not in CliRunner().invoke(cli, ["report", "--store", str(store)]).stdout


def test_prune_before_a_bad_instant_is_a_usage_error(store: Path) -> None:
    result = CliRunner().invoke(cli, ["prune", "--store", str(store), "--before", "last week"])
    assert result.exit_code == 2 and "'last week' is not an ISO 8601" in result.stderr


def test_report_takes_quiet_and_debug_after_the_command(store: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--store", str(store), "-q", "--debug",
                                      "--output", "json"], env=PINNED)
    assert (result.exit_code, result.stderr) == (0, "")
    assert json.loads(result.stdout)["totals"]["damages_usd"] == "60000.00"
