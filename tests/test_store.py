"""The persistent store: incremental, idempotent, crash-safe ingest; reports equal to
scans; one writer at a time; SQL on the store."""

from __future__ import annotations

import gzip
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
from conftest import ROOT
from helpers import load

from scrapewatch.config import load_config
from scrapewatch.errors import ConfigError, StoreBusyError
from scrapewatch.pipeline import scan
from scrapewatch.reporting.model import Report
from scrapewatch.store import ingest, prune, query, report

CONFIG = load_config()


def _answer(result: Report) -> dict[str, Any]:
    """What a report says of entities and money (not which files it read, and so not the
    evidence, which names them)."""
    doc = result.to_json()
    for entity in doc["entities"]:
        for period in entity["periods"]:
            del period["evidence"]
    return {key: doc[key] for key in ("entities", "watchlist", "totals", "sensitivity")}


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """A generated week of logs (violators whose periods span midnight), and the same
    lines split into one file per day."""
    folder = tmp_path_factory.mktemp("generated")
    whole = folder / "all.log"
    subprocess.run([sys.executable, "-m", "benchmarks.generate", "--lines", "150000",
                    "--days", "7", "--seed", "5", "--out", str(whole), "--quiet"],
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
    assert len(parts) >= 7 and len(from_store.findings) >= 2
    # charged periods span midnight: found across two nights' ingests
    assert any(p.start // 86_400 != (p.end - 1) // 86_400
               for f in from_store.findings for p in f.assessment.periods)
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
    rows = query(store, "SELECT first_line, content_start FROM manifest ORDER BY 1")
    assert rows.to_pylist() == [{"first_line": 1, "content_start": 0},
                                {"first_line": first.lines + 1, "content_start": cut}]


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
    activity = query(store, "SELECT entity, posts FROM activity ORDER BY sec")
    assert activity.to_pylist() == [{"entity": f"192.0.2.{i}", "posts": 500} for i in range(6)]


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
    held = query(store, "SELECT path FROM files ORDER BY file_id").column("path").to_pylist()
    assert len(held) < len(parts)
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
        with pytest.raises(StoreBusyError, match="another process has this store open"):
            ingest(store, [str(ROOT / "sample_logs")], config=CONFIG)
        run = ingest(store, [str(ROOT / "sample_logs")], config=CONFIG, wait_s=30)  # waits
        assert [f.action for f in run.files] == ["skipped", "added", "added"]


def test_the_settings_that_make_activity_must_not_change(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    ingest(store, [str(ROOT / "sample_logs/api-gateway.jsonl")], config=CONFIG)
    other = load_config(overrides={"entity.keys": "client_ip", "entity.ipv4_prefix": 24})
    said = ('this store was filled with other settings: entity.keys is ["api_key", "user", '
            '"client_ip"] in the store, ["client_ip"] here; entity.ipv4_prefix is 32 in the '
            "store, 24 here; use the store's")
    with pytest.raises(ConfigError) as refused:
        ingest(store, [str(ROOT / "sample_logs")], config=other)
    assert str(refused.value).startswith(said)
    with pytest.raises(ConfigError) as refused:
        report(store, config=other)
    assert str(refused.value).startswith(said)
    later = load_config(overrides={"policy.effective_from": "2025-01-01"})
    with pytest.raises(ConfigError, match=r"policy\.effective_from is "
                                          r'"2024-11-15T00:00:00\+00:00" in the store, '
                                          r'"2025-01-01T00:00:00\+00:00" here'):
        report(store, config=later)
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
    answers = [list(zip(*(c.to_pylist() for c in query(store, statement).columns),
                        strict=True)) for statement in statements]
    assert answers[0][0][1:] == ("k-acme-scraper", 2_500_000)  # 2025-03-03
    # run 2: the report ingest makes; run 3: the one above
    assert answers[1] == [(3, 2, Decimal("60000.00")), (2, 2, Decimal("60000.00"))]
    assert answers[2][0][1:] == ("not a common/combined log line", 1)


def _log(path: Path, lines: list[str], *, end: str = "\n", settled: bool = False) -> Path:
    path.write_text("".join(line + "\n" for line in lines[:-1]) + lines[-1] + end)
    if settled:  # written long enough ago that a last line without newline is final
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    return path


LINE = ('192.0.2.{i} - - [01/Mar/2025:10:00:{i:02d} +0000] "GET /2/tweets/search/all'
        '?max_results=500 HTTP/1.1" {status} 5')


def test_a_last_line_without_newline_waits_until_it_ends_or_the_file_settles(
        tmp_path: Path) -> None:
    store, log = tmp_path / "s.db", tmp_path / "a.log"
    lines = [LINE.format(i=i, status=200) for i in range(3)]
    _log(log, lines, end="")
    assert ingest(store, [str(log)], config=CONFIG).files[0].lines == 2  # the third waits
    assert ingest(store, [str(log)], config=CONFIG).files[0].reason == "no new lines"
    _log(log, lines, end="", settled=True)  # nobody finished it: it is the file's end
    assert ingest(store, [str(log)], config=CONFIG).files[0].lines == 1
    assert query(store, "SELECT count(*) AS n FROM activity").to_pylist() == [{"n": 3}]
    first = tmp_path / "b.log"
    first.write_text(LINE.format(i=9, status=200)[:30])  # its first line, half written
    assert ingest(store, [str(first)], config=CONFIG).files[0].reason == (
        "no complete line yet")


def test_a_shorter_copy_is_not_counted_twice(tmp_path: Path) -> None:
    """(Both longer than the 4 KiB the manifest knows a file's start by.)"""
    store = tmp_path / "s.db"
    lines = [LINE.format(i=i % 60, status=200) for i in range(200)]
    full = tmp_path / "full.log.gz"
    full.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    ingest(store, [str(full)], config=CONFIG)
    part = _log(tmp_path / "part.log", lines[:100])
    outcome = ingest(store, [str(part)], config=CONFIG).files[0]
    assert (outcome.action, outcome.reason) == (
        "skipped", f"starts like {full}, ingested before, but is shorter; not added")


def test_a_parquet_file_is_no_prefix_of_text_files(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = tmp_path / "s.db"
    pq.write_table(pa.table({"ts": ["2025-03-01T10:00:00Z"], "client_ip": ["192.0.2.1"]}),
                   tmp_path / "a.parquet")
    ingest(store, [str(tmp_path / "a.parquet")], config=CONFIG)
    text = ingest(store, [str(_log(tmp_path / "b.log", [LINE.format(i=2, status=200)]))],
                  config=CONFIG).files[0]
    assert (text.action, text.reason, text.requests) == ("added", "common", 1)


def test_first_and_last_request_as_scan_gives_them(tmp_path: Path) -> None:
    log = _log(tmp_path / "a.log", [LINE.format(i=1, status=404), LINE.format(i=2, status=200),
                                    LINE.format(i=3, status=500)])
    run = ingest(tmp_path / "s.db", [str(log)], config=CONFIG)
    scanned = scan([str(log)], config=CONFIG)
    assert (run.report.first_request_at, run.report.last_request_at) == (
        scanned.first_request_at, scanned.last_request_at)


# a small threshold, so that a few lines make charged periods with evidence
FEW = load_config(overrides={"policy.threshold_posts": "1000",
                             "input.max_rejected_share": "1"})


def _lines(count: int) -> list[str]:
    """`count` lines of three clients, one second apart, with a reject and a blank line;
    under 500 bytes each (quoted whole), and eleven more than the HEAD_BYTES (4 KiB) a
    file is known by."""
    lines = [f'192.0.2.{i % 3} - - [01/Mar/2025:10:{i // 60:02d}:{i % 60:02d} +0000] "GET '
             f'/2/tweets/search/all?max_results=500&q={"x" * 380} HTTP/1.1" 200 {i}'
             for i in range(count)]
    lines[4], lines[9] = "not a log line", ""
    return lines


def _assert_numbered_as_the_file(store: Path, log: Path) -> None:
    """Every request, reject and quoted line of the store sits at its line number of the
    whole file, and the store holds what one ingest of the file as it is now holds."""
    loaded, requests, rejects = load(log, config=FEW)
    assert query(store, "SELECT line_no, sec, entity_kind, entity, status, posts, observed, "
                        "counted FROM requests ORDER BY line_no").to_pylist() == [
        dict(zip(("line_no", "sec", "entity_kind", "entity", "status", "posts", "observed",
                  "counted"), row, strict=True)) for row in requests]
    assert query(store, "SELECT line_no, reason, text FROM rejects ORDER BY line_no"
                 ).to_pylist() == [dict(zip(("line_no", "reason", "text"), row, strict=True))
                                   for row in rejects]
    assert query(store, "SELECT sum(lines)::INT AS n FROM files").to_pylist() == [
        {"n": loaded.lines}]
    text = [line.rstrip("\r") for line in log.read_bytes().decode().split("\n")]
    quoted = [(sample["line"], sample["text"])
              for entity in report(store, config=FEW).to_json()["entities"]
              for period in entity["periods"] for evidence in period["evidence"]
              for sample in evidence["samples"]]
    assert quoted and all(line == text[n - 1] for n, line in quoted)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_numbers_are_the_whole_files_as_it_grows_past_held_lines(
        tmp_path: Path, newline: str) -> None:
    """A last line held back while written, then completed: alone, with more lines, and
    again and again (the numbering goes on from the lines read, not the bytes)."""
    lines = [line + newline for line in _lines(40)]
    store, log = tmp_path / "s.db", tmp_path / "a.log"
    steps = [(6, 20), (6, 0), (12, 7), (25, 0), (40, 0)]  # (whole lines, chars of the next)
    for whole, part in steps:
        log.write_text("".join(lines[:whole]) + lines[whole][:part] if part else
                       "".join(lines[:whole]), newline="")
        ingest(store, [str(log)], config=FEW, keep_requests=True)
    assert query(store, "SELECT first_line FROM manifest ORDER BY 1").to_pylist() == [
        {"first_line": n} for n in (1, 7, 13, 26)]
    _assert_numbered_as_the_file(store, log)


@pytest.mark.parametrize(("newline", "cut", "rejected"), [
    ("\n", 20, 2),  # line 13, cut short, is a reject
    ("\r\n", -1, 1),  # line 13 lacks only its "\n": a request, and its rest no blank line
])
def test_a_cut_short_last_line_completed_later_is_read_again_whole(
        tmp_path: Path, newline: str, cut: int, rejected: int) -> None:
    """A last line without newline, unchanged for SETTLED_S, is read as it is; when its
    writer finishes it after all, the line is read again whole, not its rest as a line."""
    lines = [line + newline for line in _lines(30)]
    store, log = tmp_path / "s.db", tmp_path / "a.log"
    log.write_text("".join(lines[:12]) + lines[12][:cut], newline="")
    os.utime(log, (time.time() - 3600, time.time() - 3600))  # settled
    first = ingest(store, [str(log)], config=FEW, keep_requests=True).files[0]
    assert (first.lines, first.rejected) == (13, rejected)
    log.write_text("".join(lines), newline="")
    grown = ingest(store, [str(log)], config=FEW, keep_requests=True).files[0]
    _assert_numbered_as_the_file(store, log)
    assert (grown.action, grown.reason, grown.lines) == (
        "grew", "line 13 was cut short when read and is now complete: read again from "
        "line 1", 30)
    assert query(store, "SELECT first_line, content_start FROM manifest").to_pylist() == [
        {"first_line": 1, "content_start": 0}]
    assert _answer(report(store, config=FEW)) == _answer(scan([str(log)], config=FEW))


def test_a_cut_short_line_read_after_others_is_read_again_from_its_part(
        tmp_path: Path) -> None:
    lines = _lines(30)
    store, log = tmp_path / "s.db", tmp_path / "a.log"
    _log(log, lines[:10])
    ingest(store, [str(log)], config=FEW, keep_requests=True)
    _log(log, [*lines[:20], lines[20][:15]], end="", settled=True)
    assert ingest(store, [str(log)], config=FEW).files[0].lines == 11
    log.write_text("\n".join(lines[:20]) + "\n" + lines[20][:40])  # being written again
    waiting = ingest(store, [str(log)], config=FEW).files[0]
    assert (waiting.action, waiting.reason) == ("skipped", "no new lines")
    _log(log, lines)
    assert ingest(store, [str(log)], config=FEW, keep_requests=True).files[0].reason == (
        "line 21 was cut short when read and is now complete: read again from line 11")
    # a compressed copy of the log as it was when its line 21 was cut short adds nothing
    cut = "\n".join(lines[:20]) + "\n" + lines[20][:15]
    (tmp_path / "then.log.gz").write_bytes(gzip.compress(cut.encode()))
    assert ingest(store, [str(tmp_path / "then.log.gz")], config=FEW).files[0].action == (
        "skipped")
    _assert_numbered_as_the_file(store, log)


def test_a_compressed_copy_cut_between_two_ingests_is_not_counted_twice(
        tmp_path: Path) -> None:
    lines = _lines(40)
    store, log = tmp_path / "s.db", tmp_path / "a.log"
    for whole in (12, 30):
        _log(log, lines[:whole])
        ingest(store, [str(log)], config=FEW, keep_requests=True)
    # cut inside the second part, and inside the first
    for name, count in (("mid.log.gz", 20), ("early.log.gz", 11)):
        (tmp_path / name).write_bytes(gzip.compress(("\n".join(lines[:count]) + "\n")
                                                    .encode()))
        outcome = ingest(store, [str(tmp_path / name)], config=FEW).files[0]
        assert (outcome.action, outcome.reason) == (
            "skipped", f"starts like {log}, ingested before, but is shorter; not added")
    _assert_numbered_as_the_file(store, log)
