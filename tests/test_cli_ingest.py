"""`scrapewatch ingest` end to end: its summary on stdout, exit codes, files that fail
alone, a second run that adds nothing, pseudonyms. (What a store keeps: test_store.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLE_LOGS

from scrapewatch.cli import cli
from scrapewatch.config import load_config
from scrapewatch.store import report


def test_the_summary_says_what_was_added_and_a_second_run_adds_nothing(tmp_path: Path
                                                                        ) -> None:
    store = str(tmp_path / "s.db")
    runner = CliRunner()
    first = runner.invoke(cli, ["ingest", str(SAMPLE_LOGS), "--store", store,
                                "--output", "json", "--fail-on-violation"])
    assert first.exit_code == 3, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["files_added"], summary["rejected"], summary["findings"],
            summary["new_findings"], summary["damages_usd"]) == (
        3, 1, 2, ["api_key:k-acme-scraper", "client_ip:198.51.100.23"], "60000.00")
    again = json.loads(runner.invoke(cli, ["ingest", str(SAMPLE_LOGS), "--store",
                                           store, "--output", "json"]).stdout)
    assert (again["files_added"], again["files_skipped"], again["new_findings"]) == (0, 3, [])


def test_a_file_that_cannot_be_read_fails_alone(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    (tmp_path / "cut.log.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"not deflate" * 50)
    good = tmp_path / "good.log"
    good.write_text('192.0.2.1 - - [01/Mar/2025:10:00:01 +0000] "GET /2/tweets/search/all'
                    '?max_results=500 HTTP/1.1" 200 5\n')
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "cut.log.gz"), str(good),
                                      "--store", str(store), "--output", "json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert [(Path(f["path"]).name, f["action"]) for f in summary["files"]] == [
        ("cut.log.gz", "failed"), ("good.log", "added")]
    assert (summary["files_added"], summary["files_failed"]) == (1, 1)


def test_ingest_pseudonymises_its_summary_and_allow_lists_need_no_new_store(
        tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    key = {"SCRAPEWATCH_PSEUDONYM_KEY": "a key of sixteen bytes or more"}
    result = CliRunner().invoke(cli, ["ingest", str(SAMPLE_LOGS), "--store", store,
                                      "--pseudonymise"], env=key)
    assert result.exit_code == 0, result.stderr
    assert "k-acme-scraper" not in result.stdout and "api_key:anon-" in result.stdout
    allowing = load_config(overrides={"entity.allow": "k-acme-scraper"})
    assert [f.window.entity for f in report(Path(store), config=allowing).allowed] == [
        "k-acme-scraper"]


def test_the_store_comes_from_scrapewatch_store_or_the_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCRAPEWATCH_STORE", "nightly.db")
    added = runner.invoke(cli, ["ingest", str(SAMPLE_LOGS), "--output", "json"])
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["files_added"] == 3 and Path("nightly.db").is_file()
    counted = runner.invoke(cli, ["sql", "SELECT count(*) AS n FROM files", "--output", "csv"])
    assert (counted.exit_code, counted.stdout) == (0, "n\n3\n")
    assert "Dropped 0 activity rows" in runner.invoke(
        cli, ["prune", "--before", "2025-01-01"]).stdout
    monkeypatch.delenv("SCRAPEWATCH_STORE")
    Path("sw.toml").write_text('[store]\npath = "nightly.db"\n')
    reported = runner.invoke(cli, ["report", "--config", "sw.toml", "--output", "json"])
    assert reported.exit_code == 0, reported.stderr
    assert json.loads(reported.stdout)["totals"]["damages_usd"] == "60000.00"
    # --store wins over both
    monkeypatch.setenv("SCRAPEWATCH_STORE", "nightly.db")
    other = runner.invoke(cli, ["report", "--store", "other.db", "--config", "sw.toml"])
    assert other.exit_code == 1 and "no such store" in other.stderr


def test_no_store_anywhere_is_a_usage_error_that_says_where_one_comes_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCRAPEWATCH_STORE", raising=False)
    for args in (["ingest", str(SAMPLE_LOGS)], ["report"], ["sql", "SELECT 1"],
                 ["prune", "--before", "2025-01-01"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, args
        assert ("no store given: pass --store FILE, set SCRAPEWATCH_STORE, or set path "
                "under [store] in the --config file") in result.stderr
