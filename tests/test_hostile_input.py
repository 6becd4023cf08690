"""Inputs a reviewer found could mislead or crash a scan: each must be a clear reject."""

from __future__ import annotations

import json
import os
import random
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import load

from scrapewatch.cli import cli
from scrapewatch.config import load_config
from scrapewatch.reading.formats import FORMATS, jsonl, sniff_format
from scrapewatch.reading.sources import lines_array

TS = "2025-03-04T10:00:00Z"


def record(**fields: object) -> str:
    return json.dumps({"ts": TS, "ip": "192.0.2.1", **fields})


def test_two_objects_on_one_line_are_not_two_requests(tmp_path: Path) -> None:
    text = record(posts=600_000) + record(posts=600_000) + "\n\n"
    assert jsonl.read_block(lines_array(text.encode()), 1, load_config().input) is None
    path = tmp_path / "two.jsonl"
    path.write_text(text)
    loaded, requests, rejects = load(path, "jsonl")
    assert (loaded.lines, requests) == (2, [])
    assert [reason for _, reason, _ in rejects] == ["invalid JSON"]  # and a blank line


@pytest.mark.parametrize("ts", [-99_999_999_999, "9999-12-31T23:59:59-05:00"])
def test_times_no_report_can_write_are_rejects(tmp_path: Path, ts: object) -> None:
    path = tmp_path / "far.jsonl"
    path.write_text(json.dumps({"ts": ts, "ip": "192.0.2.1"}) + "\n")
    _, requests, rejects = load(path, "jsonl")
    assert requests == [] and rejects[0][1].startswith("time out of range")


def test_an_epoch_past_any_calendar_is_a_bad_timestamp_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "far.jsonl"
    path.write_text(json.dumps({"ts": "1e30", "ip": "192.0.2.1"}) + "\n")
    _, requests, rejects = load(path, "jsonl")
    assert (requests, [r[1] for r in rejects]) == ([], ["bad timestamp 1e30"])


def test_a_clf_time_in_year_one_is_a_reject(tmp_path: Path) -> None:
    path = tmp_path / "old.log"
    path.write_text('192.0.2.1 - - [01/Jan/0001:00:30:00 +0100] "GET / HTTP/1.1" 200 1\n')
    _, requests, rejects = load(path, "combined")
    assert requests == [] and rejects[0][1].startswith("time out of range")


def test_a_query_field_with_its_question_mark(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(record(path="/2/tweets/search/recent", query="?max_results=100") + "\n")
    _, requests, _ = load(path, "jsonl")
    assert requests[0][5] == 100


@pytest.mark.parametrize("posts", ["9000000000000000000", "1e300", "-3", "many"])
def test_posts_that_are_no_count_are_rejects(tmp_path: Path, posts: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(f'{{"ts": "{TS}", "ip": "192.0.2.1", "posts": "{posts}"}}\n')
    _, requests, rejects = load(path, "jsonl")
    assert requests == [] and rejects[0][1] == f"bad posts {posts}"


def test_numeric_names_are_read_as_written(tmp_path: Path) -> None:
    # a 30-digit key would print differently once Arrow had read it as a number
    path = tmp_path / "n.jsonl"
    path.write_text("".join(record(api_key=123456789012345678901234567890) + "\n"
                            for _ in range(3)))
    _, requests, _ = load(path, "jsonl")
    assert {r[3] for r in requests} == {"123456789012345678901234567890"}


def test_machine_output_carries_no_terminal_control(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        record(api_key="\u001b]8;;http://evil\u001b\\\u202e\u009b", posts=1_000_001) + "\n")
    for output in ("json", "csv"):
        result = CliRunner().invoke(cli, ["scan", str(tmp_path), "--output", output])
        assert result.exit_code == 0
        assert not any(c in result.stdout for c in "\x1b\u202e\x9b"), output


def test_report_files_follow_the_umask(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(record() + "\n")
    old = os.umask(0o022)
    try:
        CliRunner().invoke(cli, ["scan", str(tmp_path / "a.jsonl"), "--out", str(tmp_path / "r")])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r/report.json").stat().st_mode) == 0o644


@pytest.mark.parametrize("args", [["--rate", "abc"], ["--format", "bogus"],
                                  ["--memory-limit", "lots"], ["--count-status", "2yy"],
                                  ["--timezone", "Mars/Base"], ["--threshold", "-5"]])
def test_bad_option_values_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["scan", str(tmp_path), *args])
    assert result.exit_code == 2, result.output


def test_a_bad_source_date_epoch_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["scan", str(tmp_path)], env={"SOURCE_DATE_EPOCH": "x"})
    assert result.exit_code == 2


def test_a_file_of_blank_lines_is_counted_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "blank.log").write_text("\n \n\n")
    result = CliRunner().invoke(cli, ["scan", str(tmp_path), "--max-rejected-share", "1"])
    assert result.exit_code == 0
    assert "3 lines, 0 requests, 0 rejected" in result.stdout


UNKNOWN = ("not a log format scrapewatch knows (tried "
           + ", ".join(name for name, f in FORMATS.items() if f.magic is None) + "); ")
GIVE_FORMAT = "give --format if it is one of them"
NUL = "it holds NUL bytes: binary, or UTF-16 text to convert to UTF-8 (iconv -f UTF-16 -t UTF-8)"
CLF = b'203.0.113.7 - - [15/Nov/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5'
HOSTILE_FIRST_BLOCKS = {  # name -> (content, the end of the one-line error)
    "random_bytes": (random.Random(5).randbytes(4096), NUL),
    "one_20_mb_line": (b"a" * (20 << 20), GIVE_FORMAT),
    "quotes_past_the_csv_field_limit": (b'"' * (1 << 18) + b"\n", GIVE_FORMAT),
    "deeply_nested_json": (b"[" * 100_000 + b"\n", GIVE_FORMAT),
    "nul_bytes": (b"\0" * 1000 + b"\n" + b"x\0y\n", NUL),
    "utf16": ((CLF.decode() + "\n").encode("utf-16") * 3, NUL),
    # one line of three records, of which a CLF reader would take the first alone
    "cr_line_ends": (CLF + b"\r" + CLF + b"\r" + CLF + b"\r",
                     "its lines end in CR alone: make them LF (tr '\\r' '\\n')"),
}


@pytest.mark.parametrize("case", HOSTILE_FIRST_BLOCKS)
def test_hostile_first_blocks_are_no_known_format(tmp_path: Path, case: str) -> None:
    content, end = HOSTILE_FIRST_BLOCKS[case]
    path = tmp_path / f"{case}.log"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["scan", str(path), "--quiet"])
    assert result.exit_code == 1  # set aside unread, it leaves no input
    assert result.stderr == (f"error: the inputs hold no lines: {path} (not read: "
                             f"{UNKNOWN}{end}); pass --allow-empty (input.allow_empty) if "
                             "that is expected\n")
    strict = CliRunner().invoke(cli, ["scan", str(path), "--quiet", "--strict"])
    assert (strict.exit_code, strict.stderr) == (1, f"error: {path}: {UNKNOWN}{end}\n")


@pytest.mark.parametrize("line", ["a" * (1 << 18), "a\rb,c", "[" * 100_000, '{"a":' * 100_000,
                                  "\0" * 1000, '"' * (1 << 18)],
                         ids=["long", "cr", "nested_array", "nested_object", "nul", "quotes"])
def test_sniffers_never_raise(line: str) -> None:
    assert sniff_format([line]) is None
