"""The benchmark harness, small: 1 M generated lines, answers checked, no time asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_harness_on_one_million_lines(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "run", "--sizes", "1M", "--jsonl", "none",
         "--repeat", "1", "--only", "scan,duckdb", "--workdir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    [results] = tmp_path.glob("results-*.json")
    report = json.loads(results.read_text())
    assert report["answers_match"] is True and report["problems"] == []
    [log] = report["logs"]
    assert (log["label"], log["lines"]) == ("combined-1M", 1_000_000)
    for tool in ("scan", "duckdb"):
        assert [run["answer_ok"] for run in log["results"][tool]["runs"]] == [True]
    # the planted answer itself, as the generator wrote it
    expected = json.loads(next(tmp_path.glob("*.expected.json")).read_text())
    assert expected["lines"] == 1_000_000 and len(expected["violators"]) >= 2
    assert log["expected_total_damages_usd"] == expected["total_damages_usd"]


def test_stages_times_every_load_statement() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.stages", "scan", "sample_logs", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    counted = [line.split(maxsplit=3) for line in done.stderr.splitlines()]
    stages = {parts[3]: int(parts[2]) for parts in counted
              if len(parts) == 4 and parts[1] == "s" and parts[2].isdigit()}
    # one of each per part of a block: 3 files, one of whose lines may go to the regex
    # query apart from the plain lines the native cut read
    assert stages["load_block"] == stages["INSERT INTO activity_parts"] in (3, 4)
    assert "the whole run" in done.stderr and "reader thread" in done.stderr
