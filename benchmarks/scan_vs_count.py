"""Times ``scrapewatch scan`` against a plain DuckDB line count of the same log.

The baseline is the least work any DuckDB-based scan must do: read every line of the
file as one text column and count them. The ratio ``scan / count`` says how much the
parsing, post counting and 24-hour windows cost on top of reading.

Usage (from the repository root)::

    python -m benchmarks.scan_vs_count --lines 10000000 [--workdir /tmp/swbench] \\
        [--repeat 3] [--seed 2]

Steps: generate the combined log and its expected answer with ``benchmarks.generate``
(reused when present and matching), read it once so it sits in the page cache, then
run both commands as whole processes, alternating, ``--repeat`` times each. Wall time
is measured with ``time.perf_counter`` and peak RSS with ``os.wait4`` (``ru_maxrss``,
KiB on Linux). Every scan report is checked against the expected violators (periods
and damages) and every count against the file's line count. The table goes to stdout
and, with the machine, versions and exact commands, to ``<workdir>/scan_vs_count.json``.
MB means 10**6 bytes. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
COUNT_SQL = ("SELECT count(*) FROM read_csv('{path}', columns={{'line': 'VARCHAR'}}, "
             "delim=E'\\x01', quote='', escape='', header=false, auto_detect=false)")
COUNT_CODE = ("import sys, duckdb; "
              "print(duckdb.sql(sys.argv[1]).fetchall()[0][0])")


def prepare_log(workdir: Path, lines: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """Generates the combined log and expected answer unless a matching pair exists.

    Returns:
        The log path and the expected answer.
    """
    log = workdir / f"access-{lines}-seed{seed}.log"
    expected = log.with_suffix(".expected.json")
    if log.exists() and expected.exists():
        answer = json.loads(expected.read_text(encoding="utf-8"))
        made_with = (answer.get("lines"), answer.get("seed"), answer.get("format"))
        if made_with == (lines, seed, "combined"):
            print(f"reusing {log}", file=sys.stderr)
            return log, answer
    tmp_log = log.with_name(log.name + ".tmp")
    tmp_expected = expected.with_name(expected.name + ".tmp")
    cmd = [sys.executable, "-m", "benchmarks.generate", "--lines", str(lines), "--format",
           "combined", "--seed", str(seed), "--out", str(tmp_log), "--expected",
           str(tmp_expected), "--quiet"]
    print(f"generating: {shlex.join(cmd)}", file=sys.stderr)
    began = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True)
    print(f"generated in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    os.replace(tmp_log, log)
    os.replace(tmp_expected, expected)
    return log, json.loads(expected.read_text(encoding="utf-8"))


def warm_and_count(path: Path, block: int = 8 << 20) -> int:
    """Reads the whole file once (filling the page cache) and returns its newline count."""
    count = 0
    with path.open("rb", buffering=0) as handle:
        while chunk := handle.read(block):
            count += chunk.count(b"\n")
    return count


def run_child(cmd: list[str], stdout: Path, stderr: Path) -> dict[str, Any]:
    """Runs one command to completion; stdout and stderr go to files.

    Returns:
        ``wall_s``, ``peak_rss_mb`` (ru_maxrss of that child) and ``returncode``.
    """
    with stdout.open("wb") as out, stderr.open("wb") as err:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss * 1024 / 1e6,
            "returncode": proc.returncode}


def answer_of_expected(expected: dict[str, Any]) -> dict[str, Any]:
    """The generator's violators as {entity: {periods, damages_usd}}."""
    return {name: {"periods": [[p["start"], p["end"], p["posts"]] for p in v["periods"]],
                   "damages_usd": v["damages_usd"]}
            for name, v in expected["violators"].items()}


def answer_of_report(report: dict[str, Any]) -> dict[str, Any]:
    """The scan report's flagged entities in the same shape as answer_of_expected."""
    return {e["entity"]: {"periods": [[p["start"], p["end"], p["posts"]] for p in e["periods"]],
                          "damages_usd": e["damages_usd"]}
            for e in report["entities"]}


def diff_answers(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Human-readable differences between two answers; empty when they are equal."""
    problems = [f"missing entity {name}: expected {want[name]}" for name in want if name not in got]
    problems += [f"unexpected entity {name}: {got[name]}" for name in got if name not in want]
    for name in want.keys() & got.keys():
        for key in ("periods", "damages_usd"):
            if want[name][key] != got[name][key]:
                problems.append(f"{name} {key}: expected {want[name][key]}, got {got[name][key]}")
    return sorted(problems)


def check_scan(out: Path, want: dict[str, Any]) -> list[str]:
    """Compares one scan's report.json (its stdout) with the expected answer."""
    try:
        report = json.loads(out.read_text(encoding="utf-8"))
        return diff_answers(want, answer_of_report(report))
    except (ValueError, KeyError, TypeError) as exc:
        return [f"unreadable report {out}: {exc!r}"]


def check_count(out: Path, lines: int) -> list[str]:
    """Compares the DuckDB child's printed count with the file's line count."""
    text = out.read_text(encoding="utf-8").strip()
    return [] if text == str(lines) else [f"duckdb count {text!r} != {lines} lines"]


def measure(commands: dict[str, list[str]], workdir: Path, repeat: int,
            checks: dict[str, Any]) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Runs the commands alternately ``repeat`` times, checking every output.

    Returns:
        Per command the list of runs, and every problem found.
    """
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in commands}
    problems: list[str] = []
    for i in range(repeat):
        for name, cmd in commands.items():
            out, err = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
            run = run_child(cmd, out, err)
            runs[name].append(run)
            print(f"run {i + 1}/{repeat} {name}: {run['wall_s']:.2f} s, "
                  f"{run['peak_rss_mb']:.0f} MB", file=sys.stderr)
            if run["returncode"] != 0:
                tail = err.read_text(encoding="utf-8", errors="replace")[-4000:]
                raise SystemExit(f"{name} failed with exit code {run['returncode']}: "
                                 f"{shlex.join(cmd)}\n{tail}")
            problems += [f"{name} run {i + 1}: {p}" for p in checks[name](out)]
    return runs, problems


def summarise(runs: list[dict[str, Any]], lines: int, size: int) -> dict[str, Any]:
    """Median wall time, throughput and the largest peak RSS of one command's runs."""
    wall = statistics.median(r["wall_s"] for r in runs)
    return {"median_wall_s": round(wall, 3), "lines_per_s": round(lines / wall),
            "mb_per_s": round(size / 1e6 / wall, 1),
            "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
            "runs": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
                     for r in runs]}


def table(results: dict[str, dict[str, Any]], ratio: float) -> str:
    """The summary as a small fixed-width table."""
    rows = [f"{'':6} {'median s':>9} {'lines/s':>12} {'MB/s':>8} {'peak RSS MB':>12}"]
    for name, r in results.items():
        rows.append(f"{name:6} {r['median_wall_s']:9.2f} {r['lines_per_s']:12,} "
                    f"{r['mb_per_s']:8.1f} {r['peak_rss_mb']:12.0f}")
    rows.append(f"scan / count = {ratio:.2f}")
    return "\n".join(rows)


def environment() -> dict[str, Any]:
    """Date, machine and versions of the Python environment under test."""
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "python_executable": sys.executable,
            "duckdb": version("duckdb"), "pyarrow": version("pyarrow"),
            "scrapewatch": version("scrapewatch")}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scan_vs_count",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, required=True, help="lines of the generated log")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/swbench"))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command")
    parser.add_argument("--seed", type=int, default=2, help="generator seed")
    args = parser.parse_args(argv)
    if args.lines < 1 or args.repeat < 1:
        parser.error("--lines and --repeat must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log, expected = prepare_log(workdir, args.lines, args.seed)
    lines, size = warm_and_count(log), log.stat().st_size
    sql = COUNT_SQL.format(path=str(log).replace("'", "''"))
    commands = {"scan": [sys.executable, "-m", "scrapewatch", "scan", str(log), "--quiet",
                         "--output", "json"],
                "count": [sys.executable, "-c", COUNT_CODE, sql]}
    want = answer_of_expected(expected)
    checks = {"scan": lambda out: check_scan(out, want),
              "count": lambda out: check_count(out, lines)}
    runs, problems = measure(commands, workdir, args.repeat, checks)
    if lines != expected["lines"]:
        problems.append(f"file has {lines} lines, the generator promised {expected['lines']}")
    results = {name: summarise(r, lines, size) for name, r in runs.items()}
    ratio = results["scan"]["median_wall_s"] / results["count"]["median_wall_s"]
    print(table(results, ratio))
    summary = {**environment(), "log": str(log), "lines": lines, "bytes": size,
               "repeat": args.repeat, "seed": args.seed, "count_sql": sql,
               "commands": {name: shlex.join(cmd) for name, cmd in commands.items()},
               "results": results, "ratio_scan_over_count": round(ratio, 2),
               "answers_match": not problems, "problems": problems}
    out = workdir / "scan_vs_count.json"
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    for problem in problems:
        print(f"MISMATCH: {problem}", file=sys.stderr)
    print("answers match" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
