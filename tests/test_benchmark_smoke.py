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
