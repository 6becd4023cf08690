"""``python -m benchmarks.engines``: ``scan`` on DuckDB and on Spark, same log, same answer.

Runs ``scrapewatch scan LOG --output json`` with the default engine and with
``--engine spark`` (local mode on this machine unless ``--spark-master`` says
otherwise) on the generator's log, checks that both reports are equal apart from
``generated_at`` and hold the planted answer, and prints and saves (JSON) each
engine's wall time, lines per second, CPU time and peak memory. Spark runs in a JVM
that the scan process starts, so both are measured over the whole process tree: CPU
as the machine's busy time during the run, memory as the largest sum of the tree's
resident sets, sampled every 0.2 s.

Usage::

    python -m benchmarks.engines [--lines 10M] [--format combined] [--repeat 1]
                                 [--spark-master 'local[*]'] [--workdir /tmp/swbench]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    LogSpec,
    busy_cpu_s,
    check_answer,
    environment,
    expected_answer,
    human_count,
    log,
    parse_count,
    prepare_log,
)


def tree_rss_mb(root: int) -> float:
    """Resident memory of process `root` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines()
                          if ":" in line)
        except OSError:
            continue  # the process ended meanwhile
        pid = int(fields["Pid"])
        children.setdefault(int(fields["PPid"]), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total * 1024 / 1e6


def run_tree(cmd: list[str], stdout: Path, stderr: Path) -> dict[str, Any]:
    """Runs `cmd`: wall time, the machine's busy CPU seconds meanwhile, the peak memory
    of its process tree and its exit code."""
    with stdout.open("wb") as out, stderr.open("wb") as err:
        busy, began, peak = busy_cpu_s(), time.perf_counter(), 0.0
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.2)
        wall = time.perf_counter() - began
        after = busy_cpu_s()
    cpu = None if busy is None or after is None else after - busy
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak, "returncode": proc.returncode}


def commands(log_path: Path, spark_master: str) -> dict[str, list[str]]:
    """Each engine's scan command line."""
    scan = [sys.executable, "-m", "scrapewatch", "scan", str(log_path), "--quiet",
            "--output", "json"]
    return {"duckdb": scan, "spark": [*scan, "--engine", "spark",
                                      "--spark-master", spark_master]}


def without_run_time(stdout: Path) -> dict[str, Any]:
    """A report.json on stdout, less what differs from run to run."""
    report: dict[str, Any] = json.loads(stdout.read_text(encoding="utf-8"))
    report.pop("generated_at")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the comparison; returns 1 when an engine fails or the reports differ."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engines",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=parse_count, default=parse_count("10M"))
    parser.add_argument("--format", dest="fmt", choices=("combined", "jsonl"),
                        default="combined")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/swbench"))
    args = parser.parse_args(argv)
    spec = LogSpec(args.fmt, args.lines, args.seed)
    args.workdir.mkdir(parents=True, exist_ok=True)
    answer = prepare_log(spec, args.workdir)
    if isinstance(answer, str):
        log(answer)
        return 1
    want = expected_answer(answer)
    rundir = args.workdir / f"engines-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    rundir.mkdir()
    results: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    for engine, cmd in commands(spec.path(args.workdir), args.spark_master).items():
        for attempt in range(args.repeat):
            out, err = rundir / f"{engine}-{attempt}.json", rundir / f"{engine}-{attempt}.err"
            log(f"{engine} run {attempt + 1}/{args.repeat}: {' '.join(cmd)}")
            run = run_tree(cmd, out, err)
            run["lines_per_s"] = spec.lines / run["wall_s"]
            results.setdefault(engine, []).append(run)
            log(f"{engine}: {run['wall_s']:.1f} s, {run['lines_per_s']:,.0f} lines/s")
            if run["returncode"] != 0:
                problems.append(f"{engine} exited {run['returncode']}: see {err}")
            else:
                problems += check_answer("scan", out, want)
    if not problems and without_run_time(rundir / "duckdb-0.json") != without_run_time(
            rundir / "spark-0.json"):
        problems.append("the two engines' reports differ")
    summary = {"environment": environment(), "log": spec.label, "lines": spec.lines,
               "spark_master": args.spark_master, "runs": results, "problems": problems}
    (rundir / "results.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"{spec.fmt} {human_count(spec.lines)} lines, best of {args.repeat}:")
    print("| engine | wall s | lines/s | CPU s | peak RSS MB |\n|---|---:|---:|---:|---:|")
    for engine, runs in results.items():
        best = min(runs, key=lambda r: r["wall_s"])
        print(f"| {engine} | {best['wall_s']:.1f} | {best['lines_per_s']:,.0f} | "
              f"{best['cpu_s']:.1f} | {best['peak_rss_mb']:,.0f} |")
    print("reports equal apart from generated_at; planted answer found" if not problems
          else "\n".join(problems))
    print(f"saved {rundir / 'results.json'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
