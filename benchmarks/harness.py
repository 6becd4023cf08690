"""Benchmark harness: ``scrapewatch scan`` against plain DuckDB and Polars baselines.

For each generated log (combined and JSON lines, seeded, with a known answer) it times
whole child processes, alternating the tools and repeating, checks every child's answer
against the generator's, prints a table per log and saves everything as JSON. The
command line is in ``benchmarks/__main__.py``; see ``benchmarks/README.md``.

Measures per child: wall time (``time.perf_counter`` around ``Popen`` and
``os.wait4``), CPU time (``ru_utime + ru_stime`` of the child and its reaped children)
and peak RSS (``ru_maxrss``, KiB on Linux; it includes pages of memory-mapped input
files the child touched). MB means 10**6 bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from benchmarks.scan_vs_count import diff_answers, warm_and_count

REPO = Path(__file__).resolve().parent.parent
TOOLS = ("scan", "duckdb", "polars")
BYTES_PER_LINE = {"combined": 215, "jsonl": 250}  # generated logs, rounded up
DISK_FACTOR = 3  # free space needed, as a multiple of the log's size


@dataclass(frozen=True)
class LogSpec:
    """One generated log: its format, size and seed, and where it lives."""

    fmt: str
    lines: int
    seed: int

    @property
    def label(self) -> str:
        """Short name such as ``combined-10M``."""
        return f"{self.fmt}-{human_count(self.lines)}"

    def path(self, workdir: Path) -> Path:
        """The log file (names compatible with ``benchmarks.scan_vs_count``)."""
        if self.fmt == "combined":
            return workdir / f"access-{self.lines}-seed{self.seed}.log"
        return workdir / f"access-{self.lines}-seed{self.seed}-{self.fmt}.{self.fmt}"

    def expected_path(self, workdir: Path) -> Path:
        """The generator's expected answer next to the log."""
        return self.path(workdir).with_suffix(".expected.json")


def human_count(n: int) -> str:
    """1000000 -> ``1M``; other counts as they are, with a K/M/G suffix when exact."""
    for suffix, unit in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


def parse_count(text: str) -> int:
    """``10M`` -> 10000000 (suffixes K, M, G; case-insensitive; ``_`` allowed).

    Raises:
        ValueError: not a positive count.
    """
    text = text.strip().upper().replace("_", "")
    units = {"K": 10**3, "M": 10**6, "G": 10**9}
    unit = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    value = int(Decimal(number) * unit) if number else 0
    if value < 1:
        raise ValueError(f"not a positive line count: {text!r}")
    return value


# ---------------------------------------------------------------------------
# Logs: generate once, reuse, warm
# ---------------------------------------------------------------------------

def load_expected(spec: LogSpec, workdir: Path) -> dict[str, Any] | None:
    """The stored expected answer when it exists and matches ``spec``, else None."""
    log, expected = spec.path(workdir), spec.expected_path(workdir)
    if not (log.exists() and expected.exists()):
        return None
    try:
        answer: dict[str, Any] = json.loads(expected.read_text(encoding="utf-8"))
    except ValueError:
        return None
    made_with = (answer.get("lines"), answer.get("seed"), answer.get("format"))
    return answer if made_with == (spec.lines, spec.seed, spec.fmt) else None


def disk_shortfall(spec: LogSpec, workdir: Path) -> str | None:
    """A message when free disk is under DISK_FACTOR times the log's estimated size."""
    need = spec.lines * BYTES_PER_LINE[spec.fmt] * DISK_FACTOR
    free = shutil.disk_usage(workdir).free
    if free >= need:
        return None
    estimate = need / DISK_FACTOR / 1e9
    return (f"skipping {spec.label}: {free / 1e9:.1f} GB free in {workdir}, need "
            f"{need / 1e9:.1f} GB ({DISK_FACTOR}x the log's estimated {estimate:.1f} GB)")


def prepare_log(spec: LogSpec, workdir: Path) -> dict[str, Any] | str:
    """Generates the log and its expected answer unless a matching pair exists.

    Returns:
        The expected answer, or a message saying why the log was skipped.
    """
    answer = load_expected(spec, workdir)
    if answer is not None:
        log(f"reusing {spec.path(workdir)}")
        return answer
    if (short := disk_shortfall(spec, workdir)) is not None:
        return short
    target, expected = spec.path(workdir), spec.expected_path(workdir)
    tmp_log = target.with_name(target.name + ".tmp")
    tmp_expected = expected.with_name(expected.name + ".tmp")
    cmd = [sys.executable, "-m", "benchmarks.generate", "--lines", str(spec.lines),
           "--format", spec.fmt, "--seed", str(spec.seed), "--out", str(tmp_log),
           "--expected", str(tmp_expected), "--quiet"]
    log(f"generating {spec.label}: {shlex.join(cmd)}")
    began = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True)
    log(f"generated {spec.label} in {time.perf_counter() - began:.1f} s")
    os.replace(tmp_log, target)
    os.replace(tmp_expected, expected)
    loaded: dict[str, Any] = json.loads(expected.read_text(encoding="utf-8"))
    return loaded


# ---------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------

def _money(text: Any) -> Decimal | str:
    """Money as a Decimal (so ``45000`` equals ``45000.00``); unreadable text as is."""
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return str(text)


def _violators(entries: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """``{entity: {"periods": [[start, end, posts]], "damages_usd": Decimal}}``."""
    return {name: {"periods": [[p["start"], p["end"], int(p["posts"])] for p in v["periods"]],
                   "damages_usd": _money(v["damages_usd"])}
            for name, v in entries}


def expected_answer(expected: dict[str, Any]) -> dict[str, Any]:
    """The generator's answer: violators and total."""
    return {"violators": _violators(list(expected["violators"].items())),
            "total": _money(expected["total_damages_usd"])}


def read_answer(tool: str, stdout: Path) -> dict[str, Any]:
    """A child's answer from its stdout: scan's report.json or a baseline's JSON.

    Raises:
        ValueError, KeyError, TypeError: the output is not such a document.
    """
    doc = json.loads(stdout.read_text(encoding="utf-8"))
    if tool == "scan":
        entries = [(e["entity"], e) for e in doc["entities"]]
        return {"violators": _violators(entries), "total": _money(doc["totals"]["damages_usd"])}
    return {"violators": _violators(list(doc["violators"].items())),
            "total": _money(doc["total_damages_usd"])}


def check_answer(tool: str, stdout: Path, want: dict[str, Any]) -> list[str]:
    """Differences between a child's answer and the expected one (empty when equal)."""
    try:
        got = read_answer(tool, stdout)
    except (ValueError, KeyError, TypeError) as exc:
        return [f"unreadable answer in {stdout}: {exc!r}"]
    problems = diff_answers(want["violators"], got["violators"])
    if got["total"] != want["total"]:
        problems.append(f"total damages: expected {want['total']}, got {got['total']}")
    return problems


# ---------------------------------------------------------------------------
# Running children
# ---------------------------------------------------------------------------

def commands_for(log_path: Path, tools: Sequence[str]) -> dict[str, list[str]]:
    """The command line of each tool for one log."""
    every = {"scan": [sys.executable, "-m", "scrapewatch", "scan", str(log_path), "--quiet",
                      "--output", "json"],
             "duckdb": [sys.executable, "-m", "benchmarks.baselines", "duckdb", str(log_path)],
             "polars": [sys.executable, "-m", "benchmarks.baselines", "polars", str(log_path)]}
    return {tool: every[tool] for tool in tools}


def busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def run_child(cmd: list[str], stdout: Path, stderr: Path) -> dict[str, Any]:
    """Runs one command to completion from the repository root.

    Returns:
        ``wall_s``, ``cpu_s`` (user + system of the child), ``peak_rss_mb``,
        ``returncode``, ``other_cpu_s`` (CPU seconds the rest of the machine used
        meanwhile: other work competing for the cores shows up here) and
        ``code_state`` (see git_state).
    """
    code = git_state()["state"]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        busy = busy_cpu_s()
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        busy_after = busy_cpu_s()
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
    cpu = usage.ru_utime + usage.ru_stime
    other = None if busy is None or busy_after is None else max(0.0, busy_after - busy - cpu)
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": usage.ru_maxrss * 1024 / 1e6,
            "returncode": proc.returncode, "other_cpu_s": other, "code_state": code}


def measure(commands: dict[str, list[str]], rundir: Path, repeat: int,
            want: dict[str, Any]) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Runs the commands alternately ``repeat`` times, checking every answer.

    Returns:
        Per tool its runs, and every problem found (failed runs, wrong answers).
    """
    runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in commands}
    problems: list[str] = []
    for i in range(1, repeat + 1):
        for tool, cmd in commands.items():
            out, err = rundir / f"{tool}-{i}.stdout", rundir / f"{tool}-{i}.stderr"
            run = run_child(cmd, out, err)
            found = check_answer(tool, out, want) if run["returncode"] == 0 else [
                f"exit code {run['returncode']}: "
                + err.read_text(encoding="utf-8", errors="replace")[-2000:]]
            run["answer_ok"] = not found
            runs[tool].append(run)
            problems += [f"{rundir.name} {tool} run {i}: {p}" for p in found]
            log(f"{rundir.name} run {i}/{repeat} {tool}: {run['wall_s']:.2f} s wall, "
                f"{run['cpu_s']:.1f} s cpu, {run['peak_rss_mb']:.0f} MB, others "
                f"{run['other_cpu_s'] or 0:.1f} s cpu, answer {'ok' if not found else 'WRONG'}")
    return runs, problems


# ---------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------

def summarise(runs: list[dict[str, Any]], lines: int, size: int) -> dict[str, Any]:
    """Medians of one tool's runs: wall, throughput, CPU/wall, others' CPU; largest RSS."""
    wall = statistics.median(r["wall_s"] for r in runs)
    cpu = statistics.median(r["cpu_s"] for r in runs)
    other = statistics.median(r["other_cpu_s"] or 0.0 for r in runs)
    return {"median_wall_s": round(wall, 3), "median_cpu_s": round(cpu, 3),
            "median_other_cpu_s": round(other, 3),
            "cpu_per_wall": round(statistics.median(r["cpu_s"] / r["wall_s"] for r in runs), 2),
            "lines_per_s": round(lines / wall), "mb_per_s": round(size / 1e6 / wall, 1),
            "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
            "runs": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
                     for r in runs]}


def add_ratios(results: dict[str, dict[str, Any]]) -> None:
    """Adds ``scan_over_this``: scan's median wall time / this tool's (>1: scan slower)."""
    if "scan" not in results:
        return
    for summary in results.values():
        summary["scan_over_this"] = round(results["scan"]["median_wall_s"]
                                          / summary["median_wall_s"], 2)


def table(label: str, lines: int, size: int, results: dict[str, dict[str, Any]]) -> str:
    """One log's results as a fixed-width table."""
    head = (f"{label}: {lines:,} lines, {size / 1e6:,.0f} MB\n"
            f"{'tool':8} {'median s':>9} {'lines/s':>11} {'MB/s':>7} {'peak RSS MB':>12} "
            f"{'cpu/wall':>9} {'scan/tool':>10} {'others cpu s':>13}")
    rows = [head]
    for tool, r in results.items():
        ratio = f"{r['scan_over_this']:10.2f}" if "scan_over_this" in r else f"{'-':>10}"
        rows.append(f"{tool:8} {r['median_wall_s']:9.2f} {r['lines_per_s']:11,} "
                    f"{r['mb_per_s']:7.1f} {r['peak_rss_mb']:12,.0f} "
                    f"{r['cpu_per_wall']:9.2f} {ratio} {r['median_other_cpu_s']:13.1f}")
    return "\n".join(rows)


def markdown_table(label: str, results: dict[str, dict[str, Any]]) -> str:
    """The same table in Markdown (for benchmarks/README.md)."""
    rows = [f"| {label} | median s | lines/s | MB/s | peak RSS MB | cpu/wall | scan / tool "
            "| others' cpu s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for tool, r in results.items():
        ratio = f"{r['scan_over_this']:.2f}" if "scan_over_this" in r else "-"
        rows.append(f"| {tool} | {r['median_wall_s']:.2f} | {r['lines_per_s']:,} | "
                    f"{r['mb_per_s']:.1f} | {r['peak_rss_mb']:,.0f} | {r['cpu_per_wall']:.2f} "
                    f"| {ratio} | {r['median_other_cpu_s']:.1f} |")
    return "\n".join(rows)


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------

def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def git_state() -> dict[str, Any]:
    """Commit of the checkout and a fingerprint of its uncommitted changes.

    Read-only git calls (``--no-optional-locks``: not even the index is refreshed).
    scrapewatch is installed editable, so the code a scan runs is the working tree:
    ``state`` (commit plus a hash of ``git diff HEAD``) tells whether it changed
    between two moments.
    """
    def git(*args: str) -> str:
        done = subprocess.run(["git", "--no-optional-locks", *args], cwd=REPO,
                              capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""
    commit = git("rev-parse", "HEAD") or None
    diff = git("diff", "HEAD", "--", "scrapewatch", "pyproject.toml")
    fingerprint = hashlib.sha256(diff.encode()).hexdigest()[:12] if diff else "clean"
    return {"commit": commit, "dirty": bool(diff), "state": f"{(commit or '?')[:12]}+{fingerprint}"}


def environment() -> dict[str, Any]:
    """Date, machine, versions and the checkout under test."""
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "python_executable": sys.executable,
            "versions": {p: _version(p) for p in ("duckdb", "polars", "pyarrow", "scrapewatch")},
            "git": git_state()}


def log(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

def benchmark_log(spec: LogSpec, expected: dict[str, Any], workdir: Path,
                  tools: Sequence[str], repeat: int) -> dict[str, Any]:
    """Warms one log, times every tool on it and checks every answer."""
    path = spec.path(workdir)
    log(f"warming {path}")
    lines, size = warm_and_count(path), path.stat().st_size
    rundir = workdir / "runs" / spec.label
    rundir.mkdir(parents=True, exist_ok=True)
    commands = commands_for(path, tools)
    runs, problems = measure(commands, rundir, repeat, expected_answer(expected))
    if lines != expected["lines"]:
        problems.append(f"{spec.label}: file has {lines} lines, expected {expected['lines']}")
    results = {tool: summarise(r, lines, size) for tool, r in runs.items()}
    add_ratios(results)
    return {"label": spec.label, "format": spec.fmt, "seed": spec.seed, "log": str(path),
            "lines": lines, "bytes": size, "expected_total_damages_usd":
            expected["total_damages_usd"], "expected_violators": len(expected["violators"]),
            "commands": {tool: shlex.join(cmd) for tool, cmd in commands.items()},
            "results": results, "problems": problems}


def run(specs: Sequence[LogSpec], workdir: Path, tools: Sequence[str], repeat: int,
        command: str) -> int:
    """Generates (or reuses) every log, then benchmarks them one after the other.

    Returns:
        The exit status: 1 when any answer differs from the expected one or a child
        failed, else 0. Skipped logs (too little disk) are reported, not failures.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    prepared = {spec: prepare_log(spec, workdir) for spec in specs}
    skipped = [why for why in prepared.values() if isinstance(why, str)]
    for why in skipped:
        log(why)
    env = environment()
    logs = [benchmark_log(spec, answer, workdir, tools, repeat)
            for spec, answer in prepared.items() if not isinstance(answer, str)]
    for entry in logs:
        print(table(entry["label"], entry["lines"], entry["bytes"], entry["results"]) + "\n")
    problems = [p for entry in logs for p in entry["problems"]]
    states = sorted({r["code_state"] for e in logs for runs in e["results"].values()
                     for r in runs["runs"]})
    if len(states) > 1:
        log(f"WARNING: the scrapewatch checkout changed during the benchmark: {states}")
    summary = {**env, "git_at_end": git_state(), "code_states_seen": states,
               "command": command, "workdir": str(workdir), "repeat": repeat,
               "tools": list(tools), "logs": logs, "skipped": skipped,
               "answers_match": not problems, "problems": problems,
               "markdown": "\n\n".join(markdown_table(e["label"], e["results"]) for e in logs)}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = workdir / f"results-{stamp}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    for problem in problems:
        print(f"MISMATCH: {problem}", file=sys.stderr)
    print("all answers match the expected ones" if not problems
          else f"{len(problems)} problem(s): see above")
    return 1 if problems else 0
