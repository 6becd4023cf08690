"""`ingest` killed with SIGKILL at random moments: each time the store holds whole files
only, and the run that finishes the work leaves exactly what one uninterrupted ingest
into a fresh store leaves (entities, periods, damages, files, activity, rejects).

The killed runs start from a store that read one log's start with its last line cut
short, so a kill can also fall in the transaction that reads that part again."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from benchmarks.generate import generate
from scrapewatch.config import load_config
from scrapewatch.store import ingest, query, report

SEED = 20241115  # the kill moments; a failure names the moment, to run it again
KILLS = 5
CONFIG = load_config()
NOISE = ["not a log line at all", "", "\t", '{"ts": "not a time"}']


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], bytes]:
    """Three logs, about 210,000 lines (a few rejects and blank lines among them): a plain
    and a gzipped combined log, and a JSON-lines log; and the JSON-lines log's start,
    cut short in its last line, which the stores have read before."""
    folder = tmp_path_factory.mktemp("logs")
    generate(folder / "all.log", lines=150_000, fmt="combined", seed=3, days=4)
    generate(folder / "api.jsonl", lines=60_000, fmt="jsonl", seed=4, days=4)
    lines = (folder / "all.log").read_bytes().splitlines(keepends=True)
    for at, noise in enumerate(NOISE):  # spread over both halves
        lines.insert(at * 40_000 + 7, noise.encode() + b"\n")
    half = len(lines) // 2
    (folder / "a.log").write_bytes(b"".join(lines[:half]))
    (folder / "b.log.gz").write_bytes(gzip.compress(b"".join(lines[half:]), compresslevel=1))
    (folder / "all.log").unlink()
    api = (folder / "api.jsonl").read_bytes()
    cut = api.index(b"\n", 200_000) + 30
    return [folder / "a.log", folder / "b.log.gz", folder / "api.jsonl"], api[:cut]


def _ingest_command(store: Path, paths: list[Path]) -> list[str]:
    return [sys.executable, "-m", "scrapewatch", "ingest", *map(str, paths), "--store",
            str(store), "--quiet"]


def _read_cut_short_start(store: Path, log: Path, start: bytes) -> None:
    """What a store holds of `log` when it read it settled with its last line cut short:
    the ingests after it read that part again, whole."""
    whole = log.read_bytes()
    log.write_bytes(start)
    os.utime(log, (time.time() - 3600, time.time() - 3600))
    assert ingest(store, [str(log)], config=CONFIG).files[0].action == "added"
    log.write_bytes(whole)


def _assert_whole_files(store: Path) -> None:
    """The store holds exactly the files (and parts) its manifest lists, each whole."""
    files = query(store, "SELECT file_id, rejected FROM files ORDER BY 1").to_pylist()
    manifest = query(store, "SELECT file_id FROM manifest ORDER BY 1").to_pylist()
    assert [f["file_id"] for f in files] == [m["file_id"] for m in manifest]
    rejects = query(store, "SELECT file_id, count(*) AS n FROM rejects GROUP BY 1 ORDER BY 1"
                    ).to_pylist()
    assert rejects == [{"file_id": f["file_id"], "n": f["rejected"]} for f in files
                       if f["rejected"]]
    orphans = query(store, "SELECT count(*) AS n FROM activity_parts WHERE file_id NOT IN "
                           "(SELECT file_id FROM files)").to_pylist()
    assert orphans == [{"n": 0}]


def _totals(store: Path) -> dict[str, Any]:
    """What the store says: the report's entities, periods, damages and inputs, and the
    sums of its tables."""
    doc = report(store, config=CONFIG).to_json()
    doc["inputs"]["files"].sort(key=lambda f: f["path"])
    sums = {name: query(store, sql).to_pylist() for name, sql in {
        "activity": "SELECT count(*) AS seconds, sum(posts) AS posts, sum(requests) AS "
                    "requests, sum(observed_posts) AS observed FROM activity",
        "rejects": "SELECT file_id, line_no, reason, text FROM rejects JOIN files "
                   "USING (file_id) ORDER BY path, line_no",
        "manifest": "SELECT path, content_start, content_end, first_line, complete FROM "
                    "manifest JOIN files USING (file_id) ORDER BY path, content_start"}.items()}
    for row in sums["rejects"]:
        del row["file_id"]  # numbered in the order the files went in
    return {**{key: doc[key] for key in ("inputs", "entities", "watchlist", "totals",
                                         "sensitivity")}, **sums}


def test_ingest_killed_at_random_moments_ends_as_one_clean_ingest(
        logs: tuple[list[Path], bytes], tmp_path: Path) -> None:
    paths, api_start = logs
    before = tmp_path / "before.db"  # the JSON-lines log's cut-short start read
    _read_cut_short_start(before, paths[2], api_start)
    assert not Path(f"{before}.wal").exists()  # all of it in the file copied
    clean = tmp_path / "clean.db"  # a fresh store
    began = time.monotonic()
    subprocess.run(_ingest_command(clean, paths), cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    span = time.monotonic() - began  # the kills fall in a clean run's time
    expected = _totals(clean)
    assert expected["inputs"]["lines"] == 210_000 + len(NOISE)
    rng = random.Random(SEED)
    for kill in range(KILLS):
        moment = rng.uniform(0.05, span)
        killed = tmp_path / f"killed-{kill}.db"
        shutil.copyfile(before, killed)
        child = subprocess.Popen(_ingest_command(killed, paths), cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            child.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
        assert child.wait() in (0, -signal.SIGKILL), f"kill {kill} at {moment:.2f} s"
        _assert_whole_files(killed)
        subprocess.run(_ingest_command(killed, paths), cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        assert _totals(killed) == expected, f"kill {kill} at {moment:.2f} s"
