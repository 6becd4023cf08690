"""Faults of the machine, not of the input: a full disk under --out, the temp folder or
the store; a corrupt store; a reader of stdout that goes away. Each is one line naming
the file or folder and the cause (exit 1), or, for a closed stdout, a quiet stop.

Full disks are real: small tmpfs mounts (the tests that need one skip where mounting is
not allowed), and a file size limit (RLIMIT_FSIZE) in a subprocess, which works anywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result
from conftest import ROOT, SAMPLE_LOGS

from scrapewatch.cli import cli
from scrapewatch.engine.duckdb import engine_error
from scrapewatch.errors import StoreError, TempFolderError

PINNED = {"SOURCE_DATE_EPOCH": "1741219200"}
UNREADABLE = "; restore it from a copy, or ingest into a new store\n"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=PINNED)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def subprocess_env() -> dict[str, str]:
    return {**os.environ, **PINNED, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mounts a tmpfs of the size asked for (e.g. "96k") under tmp_path; skips the test
    where mounting is not allowed (not root)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(point)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def synthetic_log(path: Path, lines: int) -> Path:
    """`lines` requests of as many clients, one a second: much activity, little text."""
    path.write_text("".join(
        f'10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255} - - [04/Mar/2025:{i // 3600 % 24:02d}:'
        f'{i // 60 % 60:02d}:{i % 60:02d} +0000] "GET /2/tweets/{i} HTTP/1.1" 200 1 "-" '
        f'"agent-{i}"\n' for i in range(lines)))
    return path


# --- a full disk under --out ---------------------------------------------------------

def test_a_full_disk_under_out_names_the_file_and_keeps_the_previous_set(
        tiny_disk: Callable[[str], Path]) -> None:
    out = tiny_disk("192k") / "r"  # room for one set (128 KiB in pages), not for two
    assert run("scan", str(SAMPLE_LOGS), "--out", str(out)).exit_code == 0
    before = snapshot(out)
    result = run("scan", str(SAMPLE_LOGS), "--out", str(out))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: cannot write {out}/report.html: No space left on device (free some space, or "
        f"give --out on another disk); {out} was left as it was\n")
    assert snapshot(out) == before
    assert os.listdir(out.parent) == ["r"]  # the half-written set is gone


def test_a_file_size_limit_under_out_names_the_file(tmp_path: Path) -> None:
    # a real failed write anywhere: report.json (23 KB) fits in 24 KiB, report.html does not
    script = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
              "resource.setrlimit(resource.RLIMIT_FSIZE, (24576, 24576)); "
              "from scrapewatch.cli import main; sys.argv[0] = 'scrapewatch'; main()")
    out = tmp_path / "r"
    done = subprocess.run([sys.executable, "-c", script, "scan", str(SAMPLE_LOGS), "--out",
                           str(out)], capture_output=True, text=True, env=subprocess_env(),
                          timeout=120, check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"error: cannot write {out}/report.html: File too large (over the "
                           f"file size limit: see ulimit -f); {out} was left as it was\n")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("output", "unbuffered"), [("json", "1"), ("csv", "")])
def test_results_that_stdout_cannot_take_are_an_error(output: str, unbuffered: str) -> None:
    # unbuffered, a write fails as scrapewatch makes it; buffered, the flush at exit does
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "scrapewatch", "scan", str(SAMPLE_LOGS),
                               "--output", output], stdout=full, stderr=subprocess.PIPE,
                              text=True, env={**subprocess_env(),
                                              "PYTHONUNBUFFERED": unbuffered},
                              timeout=120, check=False)
    assert (done.returncode, done.stderr) == (
        1, "error: cannot write the results to stdout: No space left on device\n")


# --- a full temp folder ----------------------------------------------------------------

def test_a_full_temp_folder_names_it_and_says_what_to_do(
        tiny_disk: Callable[[str], Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    log = synthetic_log(tmp_path / "many.log", 200_000)
    temp = tiny_disk("512k")
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # what $TMPDIR sets
    result = run("scan", str(log), "--memory-limit", "20MB")  # past 20 MB it spills
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: DuckDB's temp folder {temp} is full: work past the memory limit spills "
        "there; free space in it, set TMPDIR to a folder with more room, or raise "
        "--memory-limit\n")


@pytest.mark.parametrize(("error", "message"), [
    (duckdb.OutOfMemoryException("Out of Memory Error: failed to offload data block of size "
                                 "256.0 KiB (448.0 KiB/460.7 KiB used)."),
     "DuckDB's temp folder {temp} is full: work past the memory limit spills there; free "
     "space in it, set TMPDIR to a folder with more room, or raise --memory-limit"),
    (duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block of size "
                                 "256.0 KiB (19.2 MiB/19.0 MiB used)"),
     "DuckDB ran out of memory: raise --memory-limit (past it, DuckDB spills what it can to "
     "its temp folder {temp}: check that it is writable and has free space)"),
    (duckdb.IOException('IO Error: Could not write file "/big/tmp/duckdb_temp_1_0_storage_'
                        'S32K-0.tmp": No space left on device'),
     "cannot write DuckDB's temp folder /big/tmp: No space left on device; free space in it, "
     "set TMPDIR to another folder, or raise --memory-limit"),
])
def test_duckdb_failures_of_the_temp_folder_are_named(error: Exception, message: str) -> None:
    failure = engine_error(error)
    assert isinstance(failure, TempFolderError)
    assert str(failure) == message.format(temp=tempfile.gettempdir())


def test_other_duckdb_failures_stay_bugs() -> None:
    assert engine_error(duckdb.BinderException('Binder Error: column "x" not found')) is None
    assert engine_error(ValueError("x")) is None


# --- the store: a full disk, corrupt files ---------------------------------------------

def test_a_full_disk_under_the_store_names_it_and_keeps_what_was_added(
        tiny_disk: Callable[[str], Path], tmp_path: Path) -> None:
    disk = tiny_disk("1m")
    store = disk / "s.duckdb"
    log = synthetic_log(tmp_path / "many.log", 30_000)
    assert run("ingest", str(SAMPLE_LOGS), "--store", str(store)).exit_code == 0
    result = run("ingest", str(log), "--store", str(store))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (f"error: {store}: cannot write the store: No space left on device; "
                             "it keeps what was added before this failure: free space and run "
                             "again\n")
    subprocess.run(["mount", "-o", "remount,size=32m", str(disk)], check=True)
    report = run("report", "--store", str(store), "--output", "csv")
    assert report.exit_code == 0 and report.stdout.count("\n") == 3  # sample_logs' 2 entities
    again = run("ingest", str(log), "--store", str(store))
    assert again.exit_code == 0 and "1 file added" in again.stdout


@pytest.fixture(scope="module")
def good_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, int]:
    """A store of sample_logs: its bytes, the bytes of a WAL of 1,000 more rows not yet
    checkpointed, and the offset of a block that holds activity (read by every command,
    found by corrupting each block in turn: ATTACH succeeds, reading activity fails)."""
    folder = tmp_path_factory.mktemp("store")
    store = folder / "s.duckdb"
    assert run("ingest", str(SAMPLE_LOGS), "--store", str(store)).exit_code == 0
    data = store.read_bytes()
    copy = folder / "copy.duckdb"
    copy.write_bytes(data)
    con = duckdb.connect(str(copy))
    con.execute("SET checkpoint_threshold = '1TB'")
    con.execute("INSERT INTO runs (run_id, command) SELECT 1000 + i, 'x' FROM range(1000) t(i)")
    wal = Path(f"{copy}.wal").read_bytes()  # taken while the WAL is live
    con.close()
    return data, wal, _activity_block(data, folder / "probe.duckdb")


def _activity_block(data: bytes, probe: Path) -> int:
    for offset in range(12288, len(data), 262144):
        probe.write_bytes(data[:offset + 8] + b"\xff" * 64 + data[offset + 72:])
        con = duckdb.connect()
        try:
            con.execute(f"ATTACH '{probe}' AS s (READ_ONLY)")
        except duckdb.Error:
            continue
        try:
            con.execute("SELECT sum(sec), sum(posts) FROM s.activity_parts").fetchall()
        except duckdb.Error:
            return offset
        finally:
            con.close()
    raise AssertionError("no block of activity found")


def corrupt(kind: str, data: bytes, wal: bytes, block: int, store: Path) -> None:
    if kind == "garbage":
        store.write_bytes(os.urandom(100_000))
    elif kind == "empty":
        store.write_bytes(b"")
    elif kind == "truncated":
        store.write_bytes(data[:100_000])
    elif kind == "corrupt WAL":
        store.write_bytes(data)
        Path(f"{store}.wal").write_bytes(wal[:200] + b"\xff" * 2000 + wal[2200:])
    else:  # a block of activity: found only when read, after the store opened fine
        store.write_bytes(data[:block + 8] + b"\xff" * 64 + data[block + 72:])


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "corrupt WAL",
                                  "corrupt block"])
@pytest.mark.parametrize("command", [["ingest", str(SAMPLE_LOGS)], ["report"],
                                     ["prune", "--before", "2100-01-01"]])
def test_a_corrupt_store_is_named_as_not_readable(
        good_store: tuple[bytes, bytes, int], tmp_path: Path, kind: str,
        command: list[str]) -> None:
    store = tmp_path / "s.duckdb"
    corrupt(kind, *good_store, store)
    result = run(*command, "--store", str(store))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith(f"error: {store}: not a readable scrapewatch store (")
    assert result.stderr.endswith(UNREADABLE) and result.stderr.count("\n") == 1


def test_a_duckdb_file_of_other_tables_is_not_written(tmp_path: Path) -> None:
    store = tmp_path / "other.duckdb"
    with duckdb.connect(str(store)) as con:
        con.execute("CREATE TABLE accounts (id INTEGER)")
    for command in (["report"], ["ingest", str(SAMPLE_LOGS)], ["prune", "--before", "2025-01-01"]):
        result = run(*command, "--store", str(store))
        assert (result.exit_code, result.stderr) == (
            1, f"error: {store}: not a scrapewatch store: it holds other tables (accounts); "
               "give a store that `scrapewatch ingest` made, or a new path\n")
    with duckdb.connect(str(store), read_only=True) as con:
        assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [
            ("accounts",)]


def test_store_errors_name_the_store() -> None:
    store = Path("night/s.duckdb")
    failure = engine_error(duckdb.TransactionException(
        "TransactionContext Error: Failed to commit: Could not write file "
        f'"{os.path.abspath(store)}.wal": Disk quota exceeded'), store=store)
    assert isinstance(failure, StoreError)
    assert str(failure) == ("night/s.duckdb: cannot write the store: Disk quota exceeded; it "
                            "keeps what was added before this failure: free space and run again")


# --- a reader of stdout that goes away -------------------------------------------------

@pytest.mark.parametrize("output", ["json", "csv"])
def test_a_closed_stdout_stops_quietly_with_141(output: str) -> None:
    # json (13 KB) fails while it is written, csv (448 bytes) when it is flushed at exit
    with subprocess.Popen([sys.executable, "-m", "scrapewatch", "scan", str(SAMPLE_LOGS),
                           "--output", output], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=subprocess_env()) as scan:
        assert scan.stdout is not None and scan.stderr is not None
        scan.stdout.close()  # before scrapewatch writes a byte
        assert (scan.stderr.read(), scan.wait(timeout=120)) == (b"", 141)


def test_scan_piped_into_head_never_complains() -> None:
    if shutil.which("head") is None:
        pytest.skip("no head here")
    for _ in range(3):
        with subprocess.Popen([sys.executable, "-m", "scrapewatch", "scan", str(SAMPLE_LOGS),
                               "--output", "json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=subprocess_env()) as scan:
            assert scan.stdout is not None and scan.stderr is not None
            head = subprocess.run(["head", "-c", "10"], stdin=scan.stdout,
                                  capture_output=True, check=True)
            scan.stdout.close()  # head holds the pipe now
            assert head.stdout == b'{\n  "schem'
            assert scan.stderr.read() == b""
            assert scan.wait(timeout=120) in (0, 141)  # 0 when all fitted in the pipe in time


def test_an_out_of_memory_error_with_the_temp_folder_full_says_the_folder_is_full(
        tiny_disk: Callable[[str], Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB may fail some other allocation before the block it cannot offload: with
    the temp folder's disk all but full, that is still a full temp folder."""
    from scrapewatch.engine.duckdb import engine_error

    error = duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of "
                                        "size 256.0 KiB (20.0 MiB/20.0 MiB used)")
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(roomy))
    assert str(engine_error(error)).startswith("DuckDB ran out of memory: raise --memory-limit")
    full = tiny_disk("64k")
    (full / "filler").write_bytes(b"x" * (64 << 10))
    monkeypatch.setattr(tempfile, "tempdir", str(full))
    assert str(engine_error(error)) == (
        f"DuckDB's temp folder {full} is full: work past the memory limit spills there; "
        "free space in it, set TMPDIR to a folder with more room, or raise --memory-limit")
