"""`scrapewatch ingest` end to end: its summary on stdout, exit codes, files that fail
alone, a second run that adds nothing, pseudonyms. (What a store keeps: test_store.py.)"""

from __future__ import annotations

import json
from pathlib import Path

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
    (tmp_path / "notes.txt").write_text("dear diary\n")
    good = tmp_path / "good.log"
    good.write_text('192.0.2.1 - - [01/Mar/2025:10:00:01 +0000] "GET /2/tweets/search/all'
                    '?max_results=500 HTTP/1.1" 200 5\n')
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "notes.txt"), str(good),
                                      "--store", str(store), "--output", "json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert [(Path(f["path"]).name, f["action"]) for f in summary["files"]] == [
        ("notes.txt", "failed"), ("good.log", "added")]
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
