"""The persistent store: incremental, idempotent, crash-safe ingest; reports equal to
scans; one writer at a time; SQL on the store."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from conftest import ROOT

from scrapewatch.cli import cli
from scrapewatch.config import load_config
from scrapewatch.errors import ConfigError
from scrapewatch.pipeline import scan
from scrapewatch.report.model import Report
from scrapewatch.store import StoreBusyError, ingest, prune, query, report

CONFIG = load_config()


def _answer(result: Report) -> dict[str, Any]:
    """What a report says of entities and money (not which files it read)."""
    doc = result.to_json()
    return {key: doc[key] for key in ("entities", "watchlist", "totals", "sensitivity")}


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """A generated 4-day log (two violators whose periods span midnight), and the same
    lines split into one file per day."""
    folder = tmp_path_factory.mktemp("generated")
    whole = folder / "all.log"
    subprocess.run([sys.executable, "-m", "benchmarks.generate", "--lines", "120000",
                    "--days", "4", "--seed", "5", "--out", str(whole), "--quiet"],
                   cwd=ROOT, check=True)
    by_day: dict[str, list[str]] = {}
    for line in whole.read_text().splitlines(keepends=True):
        by_day.setdefault(line.split("[", 1)[1][:11], []).append(line)
    parts = []
    for day, lines in sorted(by_day.items()):
        part = folder / "days" / f"{day.replace('/', '-')}.log"
        part.parent.mkdir(exist_ok=True)
        part.write_text("".join(lines))
        parts.append(part)
    return whole, parts


def test_one_day_a_night_gives_the_scan_of_the_week(days: tuple[Path, list[Path]],
                                                     tmp_path: Path) -> None:
    whole, parts = days
    store = tmp_path / "s.db"
    for part in parts:
        assert [f.action for f in ingest(store, [str(part)], config=CONFIG).files] == ["added"]
    from_store, scanned = report(store, config=CONFIG), scan([str(whole)], config=CONFIG)
    assert _answer(from_store) == _answer(scanned)
    assert [str(f.window.entity) for f in from_store.findings] == ["2001:db8:ffff::2",
                                                                  "192.0.2.45"]
    # a charged period spans midnight: found across two nights' ingests
    period = from_store.findings[0].assessment.periods[0]
    assert period.start // 86_400 != (period.end - 1) // 86_400
    # everything again adds nothing
    again = ingest(store, [str(p) for p in parts], config=CONFIG)
    assert {f.action for f in again.files} == {"skipped"}
    assert _answer(report(store, config=CONFIG)) == _answer(scanned)


def test_a_grown_file_adds_only_its_new_lines(days: tuple[Path, list[Path]],
                                              tmp_path: Path) -> None:
    whole, _ = days
    text = whole.read_bytes()
    cut = text.index(b"\n", len(text) // 2) + 1
    log, store = tmp_path / "access.log", tmp_path / "s.db"
    log.write_bytes(text[:cut] + b'1.2.3.4 - - [02/Mar/2025:00:00:00 +0000] "GET')  # half a line
    first = ingest(store, [str(log)], config=CONFIG).files[0]
    assert (first.action, first.lines) == ("added", text[:cut].count(b"\n"))
    log.write_bytes(text)  # the half line was overwritten by the rest of the log
    grown = ingest(store, [str(log)], config=CONFIG).files[0]
    assert (grown.action, grown.lines) == ("grew", text[cut:].count(b"\n"))
    assert ingest(store, [str(log)], config=CONFIG).files[0].action == "skipped"
    assert _answer(report(store, config=CONFIG)) == _answer(scan([str(whole)], config=CONFIG))
    _, rows = query(store, "SELECT first_line, content_start FROM manifest ORDER BY 1")
    assert rows == [(1, 0), (first.lines + 1, cut)]


def test_a_rotated_and_compressed_log_adds_only_what_it_has_more(
        days: tuple[Path, list[Path]], tmp_path: Path) -> None:
    whole, _ = days
    text = whole.read_bytes()
    cut = text.index(b"\n", len(text) // 3) + 1
    (tmp_path / "access.log").write_bytes(text[:cut])
    (tmp_path / "access.log.1.gz").write_bytes(gzip.compress(text))
    store = tmp_path / "s.db"
    ingest(store, [str(tmp_path / "access.log")], config=CONFIG)
    rotated = ingest(store, [str(tmp_path / "access.log.1.gz")], config=CONFIG).files[0]
    assert (rotated.action, rotated.lines) == ("grew", text[cut:].count(b"\n"))
    (tmp_path / "copy.log.gz").write_bytes(gzip.compress(text[:cut]))
    assert ingest(store, [str(tmp_path / "copy.log.gz")], config=CONFIG).files[0].reason == (
        "no new lines")
    assert _answer(report(store, config=CONFIG)) == _answer(scan([str(whole)], config=CONFIG))


def test_a_header_format_continues_with_its_header(tmp_path: Path) -> None:
    head = "#Fields: date time c-ip cs-uri-stem cs-uri-query\n"
    rows = [f"2025-03-01 10:00:{i:02d} 192.0.2.{i} /2/tweets/search/all max_results=500\n"
            for i in range(6)]
    log, store = tmp_path / "u_ex250301.log", tmp_path / "s.db"
    log.write_text(head + "".join(rows[:3]))
    ingest(store, [str(log)], config=CONFIG)
    log.write_text(head + "".join(rows))
    grown = ingest(store, [str(log)], config=CONFIG).files[0]
    assert (grown.action, grown.lines, grown.requests) == ("grew", 3, 3)
    _, activity = query(store, "SELECT entity, posts FROM activity ORDER BY sec")
    assert activity == [(f"192.0.2.{i}", 500) for i in range(6)]


def test_a_killed_ingest_leaves_whole_files_and_the_next_run_completes_it(
        days: tuple[Path, list[Path]], tmp_path: Path) -> None:
    whole, parts = days
    store = tmp_path / "s.db"
    command = [sys.executable, "-m", "scrapewatch", "ingest", *map(str, parts), "--store",
               str(store), "--quiet"]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    wal = Path(f"{store}.wal")
    deadline = time.monotonic() + 60
    while not (wal.exists() and wal.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # into a file's transaction
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    # what the store holds is exactly the files its manifest lists, whole
    _, listed = query(store, "SELECT path FROM files ORDER BY file_id")
    assert len(listed) < len(parts)
    held = [row[0] for row in listed]
    if held:
        assert _answer(report(store, config=CONFIG)) == _answer(scan(held, config=CONFIG))
    resumed = ingest(store, [str(p) for p in parts], config=CONFIG)
    assert [f.action for f in resumed.files] == ["skipped"] * len(held) + ["added"] * (
        len(parts) - len(held))
    assert _answer(report(store, config=CONFIG)) == _answer(scan([str(whole)], config=CONFIG))


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    ingest(store, [str(ROOT / "sample_logs/api-gateway.jsonl")], config=CONFIG)
    with subprocess.Popen([sys.executable, "-c", "import duckdb, time; "
                           f"c = duckdb.connect({str(store)!r}); print('held', flush=True); "
                           "time.sleep(2)"], stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(StoreBusyError, match="another process is writing this store"):
            ingest(store, [str(ROOT / "sample_logs")], config=CONFIG)
        run = ingest(store, [str(ROOT / "sample_logs")], config=CONFIG, wait_s=30)  # waits
        assert [f.action for f in run.files] == ["skipped", "added", "added"]


def test_the_settings_that_make_activity_must_not_change(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    ingest(store, [str(ROOT / "sample_logs/api-gateway.jsonl")], config=CONFIG)
    other = load_config(overrides={"entity.keys": "client_ip"})
    with pytest.raises(ConfigError, match="other entity settings"):
        ingest(store, [str(ROOT / "sample_logs")], config=other)
    with pytest.raises(ConfigError, match="other entity settings"):
        report(store, config=other)
    pricier = load_config(overrides={"policy.rate_usd": "20000"})  # a policy may differ
    assert report(store, config=pricier).damages_usd == Decimal("60000.00")  # 3 millions


def test_since_until_and_prune(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    ingest(store, [str(ROOT / "sample_logs")], config=CONFIG)
    full = report(store, config=CONFIG)
    assert len(full.findings) == 2
    from scrapewatch.config import parse_instant
    # k-acme-scraper's periods start 2025-03-03T08:00 and 2025-03-05T12:00
    between = report(store, config=CONFIG, since=parse_instant("2025-03-04T06:00:00Z"),
                     until=parse_instant("2025-03-05T12:00:00Z"))
    assert [f.window.entity for f in between.findings] == ["198.51.100.23"]
    assert prune(store, before=parse_instant("2025-03-04")) > 0
    assert {f.window.entity: f.assessment.damages_usd
            for f in report(store, config=CONFIG).findings} == {
        "k-acme-scraper": 15000, "198.51.100.23": 15000}
    # pruned files are still known: ingesting them again adds nothing
    assert {f.action for f in ingest(store, [str(ROOT / "sample_logs")], config=CONFIG)
            .files} == {"skipped"}


def test_cli_ingest_report_and_sql(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    runner = CliRunner()
    first = runner.invoke(cli, ["ingest", str(ROOT / "sample_logs"), "--store", store,
                                "--output", "json", "--fail-on-violation"])
    assert first.exit_code == 3, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["files_added"], summary["rejected"], summary["findings"],
            summary["new_findings"], summary["damages_usd"]) == (
        3, 1, 2, ["api_key:k-acme-scraper", "client_ip:198.51.100.23"], "60000.00")
    again = json.loads(runner.invoke(cli, ["ingest", str(ROOT / "sample_logs"), "--store",
                                           store, "--output", "json"]).stdout)
    assert (again["files_added"], again["files_skipped"], again["new_findings"]) == (0, 3, [])
    scanned = runner.invoke(cli, ["scan", str(ROOT / "sample_logs"), "--output", "json"])
    reported = runner.invoke(cli, ["report", "--store", store, "--output", "json"])
    assert json.loads(reported.stdout)["totals"] == json.loads(scanned.stdout)["totals"]
    table = runner.invoke(cli, ["sql", "--store", store,
                                "SELECT count(*) AS n FROM runs WHERE command = 'report'"])
    assert table.stdout == "n\n-\n3\n(1 row)\n"
    out = tmp_path / "periods.parquet"
    assert runner.invoke(cli, ["sql", "--store", store, "SELECT * FROM periods", "--output",
                               "parquet", "--out", str(out)]).exit_code == 0
    assert duckdb.sql(f"SELECT count(*) FROM '{out}'").fetchall() == [(9,)]
    bad = runner.invoke(cli, ["sql", "--store", store, "SELECT nope"])
    assert bad.exit_code == 1 and "SQL error" in bad.stderr
    prompt = runner.invoke(cli, ["sql", "--store", store],
                           input="SELECT count(*) AS n\nFROM files;\n.quit\n",
                           env={"HOME": str(tmp_path)})
    assert prompt.exit_code == 0 and "Views: files" in prompt.stdout and "3\n" in prompt.stdout


def test_the_store_is_a_plain_duckdb_file(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    ingest(store, [str(ROOT / "sample_logs")], config=CONFIG)
    con = duckdb.connect(str(store), read_only=True)
    assert con.sql("SELECT count(*) FROM files").fetchall() == [(3,)]
    assert os.path.getsize(store) > 0


def test_the_readme_sql_examples_run(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    ingest(store, [str(ROOT / "sample_logs")], config=CONFIG)
    report(store, config=CONFIG)
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```sql\n", 1)[1].split("```", 1)[0]
    statements = [s for s in block.split(";") if s.strip()]
    assert len(statements) == 3
    answers = [query(store, statement)[1] for statement in statements]
    assert answers[0][0][1:] == ("k-acme-scraper", 2_500_000)  # 2025-03-03
    assert answers[1] == [(2, 2, Decimal("60000.00"))]  # run 2: the report
    assert answers[2][0][1:] == ("not a common/combined log line", 1)
