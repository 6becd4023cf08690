"""`scan` and `ingest` inputs end to end: each log counted once, only regular files read,
no input is an error (unless --allow-empty)."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result
from conftest import ROOT

from scrapewatch.cli import cli

PINNED = {"SOURCE_DATE_EPOCH": "1741219200"}  # 2025-03-06T00:00:00Z
# k-a accesses 1,200,000 posts in a day ($15,000); k-b 600,000 (not flagged). Counted
# twice, k-a would owe $30,000 and k-b $15,000.
LOG = ('{"ts": "2025-03-04T10:00:00Z", "api_key": "k-a", "posts": 600000}\n'
       '{"ts": "2025-03-04T11:00:00Z", "api_key": "k-a", "posts": 600000}\n'
       '{"ts": "2025-03-04T12:00:00Z", "api_key": "k-b", "posts": 600000}\n')
SINGLE_COPY = {"entities_flagged": 1, "periods": 1, "damages_usd": "15000.00"}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=PINNED)


def scan_json(*paths: Path | str) -> dict:  # type: ignore[type-arg]
    result = invoke("scan", *map(str, paths), "--output", "json")
    assert (result.exit_code, result.stderr) == (0, "")
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def cli_in_subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process, so that a read that blocks fails the test (timeout)
    instead of hanging it."""
    return subprocess.run([sys.executable, "-m", "scrapewatch", *args], cwd=ROOT,
                          env={**os.environ, **PINNED, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=20, check=False)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "access.log").write_text(LOG)
    return folder


def _zstd(path: Path, data: bytes) -> None:
    with pa.CompressedOutputStream(str(path), "zstd") as out:
        out.write(data)


# ---- item 1: the same log reached by two paths, or as a compressed copy, counts once


def test_one_log_alone_is_the_single_copy_amount(logs: Path) -> None:
    report = scan_json(logs)
    assert report["totals"] == SINGLE_COPY
    assert [(e["entity"], e["damages_usd"]) for e in report["entities"]] == [("k-a", "15000.00")]
    assert (report["inputs"]["duplicates"], report["inputs"]["skipped"]) == ([], [])


def test_a_symlink_in_the_directory_is_the_same_file(logs: Path) -> None:
    (logs / "current.log").symlink_to("access.log")
    report = scan_json(logs)
    assert report["totals"] == SINGLE_COPY
    assert [f["path"] for f in report["inputs"]["files"]] == [str(logs / "access.log")]
    assert report["inputs"]["duplicates"] == [
        {"path": str(logs / "current.log"), "duplicate_of": str(logs / "access.log"),
         "reason": "same file"}]
    assert report["inputs"]["lines"] == 3


def test_the_same_path_written_twice_is_read_once(logs: Path) -> None:
    (logs / "sub").mkdir()
    other = logs / "sub" / ".." / "access.log"
    report = scan_json(logs / "access.log", other)
    assert report["totals"] == SINGLE_COPY
    assert report["inputs"]["duplicates"] == [
        {"path": str(other), "duplicate_of": str(logs / "access.log"), "reason": "same file"}]


def test_a_hard_link_is_the_same_file(logs: Path) -> None:
    os.link(logs / "access.log", logs / "copy.log")
    assert scan_json(logs)["totals"] == SINGLE_COPY


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_a_compressed_copy_beside_the_plain_file_is_the_same_content(logs: Path,
                                                                     suffix: str) -> None:
    copy = logs / f"access.log{suffix}"
    if suffix == ".gz":
        copy.write_bytes(gzip.compress(LOG.encode()))
    else:
        _zstd(copy, LOG.encode())
    report = scan_json(logs)
    assert report["totals"] == SINGLE_COPY
    assert report["sensitivity"]["greedy"]["full"] == "15000.00"
    assert [f["path"] for f in report["inputs"]["files"]] == [str(logs / "access.log")]
    assert report["inputs"]["duplicates"] == [
        {"path": str(copy), "duplicate_of": str(logs / "access.log"),
         "reason": "same content"}]
    assert report["run"]["input_sha256"] == [report["inputs"]["files"][0]["sha256"]]


def test_the_input_order_decides_which_copy_is_kept(logs: Path) -> None:
    copy = logs / "access.log.gz"
    copy.write_bytes(gzip.compress(LOG.encode()))
    report = scan_json(copy, logs / "access.log")
    assert report["totals"] == SINGLE_COPY
    assert report["inputs"]["duplicates"] == [
        {"path": str(logs / "access.log"), "duplicate_of": str(copy), "reason": "same content"}]


def test_different_logs_with_the_same_lines_in_part_both_count(logs: Path) -> None:
    (logs / "more.log").write_text(LOG.replace("k-b", "k-c"))  # not the same content
    report = scan_json(logs)
    assert report["inputs"]["duplicates"] == []
    assert report["totals"] == {"entities_flagged": 1, "periods": 1, "damages_usd": "30000.00"}


def test_empty_files_are_not_duplicates_of_each_other(logs: Path) -> None:
    (logs / "a-empty.log").write_text("")
    (logs / "b-empty.log").write_text("")
    report = scan_json(logs)
    assert report["inputs"]["duplicates"] == []
    assert len(report["inputs"]["files"]) == 3


def test_the_table_and_the_html_say_which_inputs_were_set_aside(logs: Path,
                                                                tmp_path: Path) -> None:
    (logs / "current.log").symlink_to("access.log")
    (logs / "access.log.gz").write_bytes(gzip.compress(LOG.encode()))
    result = invoke("scan", str(logs), "--out", str(tmp_path / "r"))
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines()[:2] == [
        "Read 1 file: 3 lines, 3 requests, 0 rejected.",
        f"Set aside 2 duplicates, counted once: {logs / 'current.log'} (same file as "
        f"{logs / 'access.log'}), {logs / 'access.log.gz'} (same content as "
        f"{logs / 'access.log'})."]
    assert result.stdout.splitlines()[-1].split() == ["total", "1", "15,000.00"]
    html = (tmp_path / "r/report.html").read_text()
    assert f"<td><code>{logs / 'current.log'}</code></td><td>same file as" in html


def test_ingest_reads_another_path_to_the_same_file_once(logs: Path, tmp_path: Path) -> None:
    (logs / "current.log").symlink_to("access.log")
    result = invoke("ingest", str(logs), "--store", str(tmp_path / "s.db"), "--output", "json")
    assert (result.exit_code, result.stderr) == (0, "")
    summary = json.loads(result.stdout)
    assert (summary["files_added"], summary["files_skipped"], summary["damages_usd"]) == (
        1, 1, "15000.00")
    assert summary["files"][1] == {"path": str(logs / "current.log"), "action": "skipped",
                                   "reason": f"same file as {logs / 'access.log'}",
                                   "lines": 0, "rejected": 0, "requests": 0}


# ---- item 5: only regular files are read; a FIFO never blocks


def warned(*lines: str) -> str:
    """The warnings of a run that set inputs aside unread."""
    return "".join(f"warning: not read: {line}\n" for line in lines) + (
        "warning: --exclude GLOB leaves such files out; --strict makes a file no format "
        "fits an error\n")


def test_a_fifo_in_a_directory_is_skipped_not_read(logs: Path) -> None:
    os.mkfifo(logs / "pipe.log")
    done = cli_in_subprocess("scan", str(logs), "--output", "json")
    assert (done.returncode, done.stderr) == (
        0, warned(f"{logs / 'pipe.log'} (a named pipe, not a regular file)"))
    report = json.loads(done.stdout)
    assert report["totals"] == SINGLE_COPY
    assert report["inputs"]["skipped"] == [
        {"path": str(logs / "pipe.log"), "reason": "a named pipe, not a regular file"}]


def test_a_fifo_socket_and_broken_symlink_are_listed_in_the_table(logs: Path) -> None:
    os.mkfifo(logs / "pipe.log")
    (logs / "gone.log").symlink_to("nowhere.log")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(logs / "sock.log"))
        done = cli_in_subprocess("scan", str(logs))
    assert (done.returncode, done.stderr) == (0, warned(
        f"{logs / 'gone.log'} (a broken symlink to nowhere.log)",
        f"{logs / 'pipe.log'} (a named pipe, not a regular file)",
        f"{logs / 'sock.log'} (a socket, not a regular file)"))
    assert done.stdout.splitlines()[1] == (
        f"Skipped 3 paths, not read: {logs / 'gone.log'} (a broken symlink to "
        f"nowhere.log), {logs / 'pipe.log'} (a named pipe, not a regular file), "
        f"{logs / 'sock.log'} (a socket, not a regular file).")


def test_a_fifo_named_directly_is_an_error_not_a_hang(logs: Path) -> None:
    os.mkfifo(logs / "pipe.log")
    done = cli_in_subprocess("scan", str(logs / "pipe.log"))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"error: {logs / 'pipe.log'}: not a regular file (a named pipe); "
                           "scrapewatch reads regular files only: copy it into a file\n")


def test_ingest_skips_a_fifo_and_releases_the_store(logs: Path, tmp_path: Path) -> None:
    os.mkfifo(logs / "pipe.log")
    store = tmp_path / "s.db"
    done = cli_in_subprocess("ingest", str(logs), "--store", str(store), "--output", "json")
    assert (done.returncode, done.stderr) == (
        0, warned(f"{logs / 'pipe.log'} (a named pipe, not a regular file)"))
    summary = json.loads(done.stdout)
    assert [(f["path"], f["action"], f["reason"]) for f in summary["files"]] == [
        (str(logs / "access.log"), "added", "jsonl"),
        (str(logs / "pipe.log"), "skipped", "a named pipe, not a regular file")]
    assert summary["damages_usd"] == "15000.00"


# ---- item 7: no input is an error, unless --allow-empty


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    result = invoke("scan", str(tmp_path))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (f"error: no input: {tmp_path} holds no log file; pass "
                             "--allow-empty (input.allow_empty) if that is expected\n")


def test_a_directory_of_only_skipped_paths_is_an_error_naming_them(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.log")
    done = cli_in_subprocess("scan", str(tmp_path))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"error: no input: {tmp_path} holds no log file (skipped: {tmp_path / 'pipe.log'}: "
        "a named pipe, not a regular file); pass --allow-empty (input.allow_empty) if that "
        "is expected\n")


def test_one_empty_directory_among_others_is_an_error(logs: Path, tmp_path: Path) -> None:
    (tmp_path / "unmounted").mkdir()
    result = invoke("scan", str(logs), str(tmp_path / "unmounted"))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith(f"error: no input: {tmp_path / 'unmounted'} holds no ")


def test_inputs_with_no_lines_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("")
    (tmp_path / "b.log.gz").write_bytes(gzip.compress(b""))
    result = invoke("scan", str(tmp_path))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (f"error: the inputs hold no lines: {tmp_path / 'a.log'}, "
                             f"{tmp_path / 'b.log.gz'}; pass --allow-empty "
                             "(input.allow_empty) if that is expected\n")


def test_allow_empty_gives_an_empty_report(tmp_path: Path) -> None:
    result = invoke("scan", str(tmp_path), "--allow-empty")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines()[0] == "Read 0 files: 0 lines, 0 requests, 0 rejected."
    assert "No entity crossed the threshold." in result.stdout
    (tmp_path / "a.log").write_text("")
    assert invoke("scan", str(tmp_path), "--allow-empty").exit_code == 0


def test_allow_empty_from_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    config = tmp_path / "c.toml"
    config.write_text("[input]\nallow_empty = true\n")
    result = invoke("scan", str(tmp_path / "logs"), "--config", str(config))
    assert (result.exit_code, result.stderr) == (0, "")
    config.write_text('[input]\nallow_empty = "yes"\n')
    result = invoke("scan", str(tmp_path / "logs"), "--config", str(config))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == ("error: input.allow_empty must be true or false; got 'yes'\n")


def test_ingest_of_no_input_is_an_error_and_leaves_no_store(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    store = tmp_path / "s.db"
    result = invoke("ingest", str(tmp_path / "logs"), "--store", str(store))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith(f"error: no input: {tmp_path / 'logs'} holds no log file")
    (tmp_path / "logs/a.log").write_text("")
    result = invoke("ingest", str(tmp_path / "logs"), "--store", str(store))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (f"error: the inputs hold no lines: {tmp_path / 'logs/a.log'}; "
                             "pass --allow-empty (input.allow_empty) if that is expected\n")
    assert not store.exists()
    result = invoke("ingest", str(tmp_path / "logs"), "--store", str(store), "--allow-empty")
    assert (result.exit_code, result.stderr) == (0, "")
    assert "0 files added, 1 skipped, 0 failed; 0 lines, 0 rejected." in result.stdout


# ---- a stray file does not kill the run, and is never silently skipped (issue 15)

UNKNOWN = ("not a log format scrapewatch knows (tried vhost_combined, combined, common, alb, "
           "elb, cloudfront, w3c, iis, jsonl, csv, tsv); give --format if it is one of them")


@pytest.fixture
def stray(logs: Path) -> Path:
    """The logs with a README and an nginx error log beside them."""
    (logs / "README.txt").write_text("These are the gateway's logs.\n")
    (logs / "error.log").write_text("2025/03/04 10:00:00 [error] 123#0: *1 open() "
                                    '"/srv/x" failed (2: No such file or directory)\n')
    return logs


def test_a_file_no_format_fits_is_skipped_with_a_warning_and_listed(stray: Path,
                                                                    tmp_path: Path) -> None:
    result = invoke("scan", str(stray), "--output", "json", "--out", str(tmp_path / "r"))
    assert result.exit_code == 0
    assert result.stderr == warned(f"{stray / 'README.txt'} ({UNKNOWN})",
                                   f"{stray / 'error.log'} ({UNKNOWN})")
    report = json.loads(result.stdout)
    assert report["totals"] == SINGLE_COPY
    assert report["inputs"]["skipped"] == [
        {"path": str(stray / "README.txt"), "reason": UNKNOWN},
        {"path": str(stray / "error.log"), "reason": UNKNOWN}]
    assert [f["path"] for f in report["inputs"]["files"]] == [str(stray / "access.log")]
    html = (tmp_path / "r/report.html").read_text()
    assert f"<td><code>{stray / 'README.txt'}</code></td><td>not a log format" in html


def test_strict_makes_a_file_no_format_fits_an_error(stray: Path, tmp_path: Path) -> None:
    result = invoke("scan", str(stray), "--strict")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: {stray / 'README.txt'}: {UNKNOWN}\n"
    (tmp_path / "c.toml").write_text("[input]\nstrict = true\n")
    assert invoke("scan", str(stray), "--config", str(tmp_path / "c.toml")).exit_code == 1


def test_include_and_exclude_choose_the_files_found(stray: Path, tmp_path: Path) -> None:
    (stray / "old").mkdir()
    (stray / "old" / "access.log").write_text(LOG.replace("2025-03-04", "2025-03-10"))
    excluded = invoke("scan", str(stray), "--output", "json", "--exclude", "README*",
                      "--exclude", "error.log", "--exclude", "*/old/*")
    assert (excluded.exit_code, excluded.stderr) == (0, "")  # nothing read was skipped
    report = json.loads(excluded.stdout)
    assert report["totals"] == SINGLE_COPY and report["inputs"]["skipped"] == []
    assert report["inputs"]["excluded"] == [
        {"path": str(stray / "README.txt"), "reason": "excluded by --exclude 'README*'"},
        {"path": str(stray / "error.log"), "reason": "excluded by --exclude 'error.log'"},
        {"path": str(stray / "old" / "access.log"), "reason": "excluded by --exclude '*/old/*'"}]
    included = json.loads(invoke("scan", str(stray), "--output", "json", "--include", "acc*",
                                 "--quiet").stdout)
    assert [f["path"] for f in included["inputs"]["files"]] == [
        str(stray / "access.log"), str(stray / "old" / "access.log")]
    assert included["totals"]["periods"] == 2
    assert [e["reason"] for e in included["inputs"]["excluded"]] == [
        "excluded: matches no --include ('acc*')"] * 2
    # a file named on the command line is read whatever the patterns say
    named = invoke("scan", str(stray / "access.log"), "--exclude", "*.log", "--output", "json")
    assert json.loads(named.stdout)["totals"] == SINGLE_COPY
    # in the config too; the table says what was left out
    (tmp_path / "c.toml").write_text('[input]\ninclude = ["*.log"]\nexclude = ["error*"]\n')
    table = invoke("scan", str(stray), "--config", str(tmp_path / "c.toml"))
    assert (table.exit_code, table.stderr) == (0, "")
    assert table.stdout.splitlines()[1] == (
        f"Excluded 2 files by --include and --exclude: {stray / 'README.txt'}, "
        f"{stray / 'error.log'}.")


def test_ingest_skips_a_stray_file_and_adds_the_logs(stray: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    result = invoke("ingest", str(stray), "--store", store, "--output", "json")
    assert result.exit_code == 0
    assert result.stderr == warned(f"{stray / 'README.txt'} ({UNKNOWN})",
                                   f"{stray / 'error.log'} ({UNKNOWN})")
    summary = json.loads(result.stdout)
    assert [(f["path"], f["action"], f["reason"]) for f in summary["files"]] == [
        (str(stray / "README.txt"), "skipped", UNKNOWN),
        (str(stray / "access.log"), "added", "jsonl"),
        (str(stray / "error.log"), "skipped", UNKNOWN)]
    assert (summary["files_added"], summary["files_skipped"], summary["damages_usd"]) == (
        1, 2, "15000.00")
    strict = invoke("ingest", str(stray), "--store", str(tmp_path / "t.db"), "--strict",
                    "--output", "json")
    assert strict.exit_code == 1
    assert json.loads(strict.stdout)["files_failed"] == 2
    excluded = invoke("ingest", str(stray), "--store", str(tmp_path / "u.db"), "--exclude",
                      "*.txt", "--exclude", "error.log", "--output", "json")
    assert (excluded.exit_code, excluded.stderr) == (0, "")
    assert json.loads(excluded.stdout)["files_excluded"] == 2


def test_a_folder_of_stray_files_only_is_no_input(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("nothing here\n")
    result = invoke("scan", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.endswith(
        f"error: the inputs hold no lines: {tmp_path / 'README.txt'} (not read: {UNKNOWN}); "
        "pass --allow-empty (input.allow_empty) if that is expected\n")
