"""``python -m benchmarks.many_entities``: scan with very many violators.

A log of N violating API keys, each with P charged periods, is generated (JSON lines,
seeded, one charged period every other day, two requests of 600,000 posts each in
every period: 1,200,000 posts, so $15,000 a period under the default
policy), then ``scrapewatch scan LOG --out DIR --quiet`` runs as a child process and its
wall time and peak RSS are recorded, and its answer is checked: N entities flagged,
N x P periods, $15,000 x N x P in total, from report.json's totals and from the rows of
entities.parquet and periods.parquet.

Usage (from the repository root)::

    python -m benchmarks.many_entities --violators 200K,2M --periods 1 \\
        [--workdir /tmp/swmany] [--memory-limit 512MB]

Prints one line per run and writes ``results-many-*.json`` into the workdir.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.harness import human_count, parse_count, run_child

START = 1_735_689_600  # 2025-01-01T00:00:00Z, after the clause's effective date
POSTS_PER_REQUEST = 600_000
DAMAGES_PER_PERIOD = Decimal("15000.00")
CHUNK = 500_000  # lines rendered at a time


def generate(path: Path, violators: int, periods: int, seed: int = 1) -> int:
    """Write the log: each key's two requests per period, in time order by day; the
    lines within a day are shuffled. Returns the number of lines."""
    rng = np.random.default_rng(seed)
    lines = 0
    with path.open("wb") as out:
        for day in range(periods):
            keys = np.repeat(np.arange(violators), 2)
            for start in range(0, len(keys), CHUNK):
                part = keys[start:start + CHUNK]
                # both requests of a key within the first 12 hours of every other day:
                # no 24-hour period holds requests of two of its periods
                sec = START + day * 2 * 86_400 + rng.integers(0, 43_200, len(part))
                text = pc.binary_join_element_wise(
                    '{"ts": ', pc.cast(pa.array(sec), pa.string()),
                    ', "api_key": "k-', pc.utf8_lpad(pc.cast(pa.array(part), pa.string()), 8,
                                                     "0"),
                    f'", "path": "/2/tweets/search/all", "status": 200, '
                    f'"posts": {POSTS_PER_REQUEST}}}\n', "")
                out.write("".join(text.to_pylist()).encode())
                lines += len(part)
    return lines


def check(out: Path, violators: int, periods: int) -> list[str]:
    """What differs in `out` from the planted answer."""
    problems = []
    want_total = DAMAGES_PER_PERIOD * violators * periods
    tail = (out / "report.json").read_bytes()[-20_000:].decode("ascii")
    match = re.search(r'"totals": \{\s*"entities_flagged": (\d+),\s*"periods": (\d+),'
                      r'\s*"damages_usd": "([0-9.]+)"', tail)
    if match is None:
        return ["report.json: no totals found at its end"]
    got = (int(match[1]), int(match[2]), Decimal(match[3]))
    if got != (violators, violators * periods, want_total):
        problems.append(f"report.json totals {got}, expected "
                        f"{(violators, violators * periods, want_total)}")
    entities = pq.read_table(out / "entities.parquet", columns=["damages_usd"])
    periods_table = pq.read_table(out / "periods.parquet", columns=["posts"])
    if entities.num_rows != violators:
        problems.append(f"entities.parquet: {entities.num_rows} rows, expected {violators}")
    if periods_table.num_rows != violators * periods:
        problems.append(f"periods.parquet: {periods_table.num_rows} rows, expected "
                        f"{violators * periods}")
    if pc.sum(entities["damages_usd"]).as_py() != want_total:
        problems.append("entities.parquet: damages do not add up to the total")
    return problems


def bench(violators: int, periods: int, workdir: Path, memory_limit: str | None
          ) -> dict[str, Any]:
    """Generate (or reuse) one log, scan it once, check the answer."""
    label = f"many-{human_count(violators)}x{periods}"
    log_path = workdir / f"{label}.jsonl"
    if not log_path.exists():
        began = time.perf_counter()
        partial = log_path.with_suffix(".partial")
        lines = generate(partial, violators, periods)
        partial.rename(log_path)
        print(f"{label}: generated {lines:,} lines in {time.perf_counter() - began:.1f} s",
              file=sys.stderr)
    out = workdir / f"{label}-out"
    cmd = [sys.executable, "-m", "scrapewatch", "scan", str(log_path), "--quiet",
           "--out", str(out)] + (["--memory-limit", memory_limit] if memory_limit else [])
    result = run_child(cmd, workdir / f"{label}.stdout", workdir / f"{label}.stderr")
    problems = (check(out, violators, periods) if result["returncode"] == 0 else
                [(workdir / f"{label}.stderr").read_text(errors="replace")[-2000:]])
    return {"label": label, "violators": violators, "periods": periods,
            "log_bytes": log_path.stat().st_size, "report_json_bytes":
            (out / "report.json").stat().st_size if (out / "report.json").exists() else None,
            **result, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.many_entities",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--violators", default="200K",
                        help="comma-separated counts of violating keys [200K]")
    parser.add_argument("--periods", default="1",
                        help="comma-separated charged periods per key [1]")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/swmany"))
    parser.add_argument("--memory-limit", help="passed to scan's --memory-limit")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    for violators in (parse_count(v) for v in args.violators.split(",")):
        for periods in (int(p) for p in args.periods.split(",")):
            run = bench(violators, periods, args.workdir, args.memory_limit)
            runs.append(run)
            print(f"{run['label']}: {run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} s cpu, "
                  f"peak RSS {run['peak_rss_mb']:,.0f} MB, report.json "
                  f"{(run['report_json_bytes'] or 0) / 1e6:,.1f} MB, other CPU "
                  f"{run['other_cpu_s'] or 0:.1f} s; "
                  + ("answer OK" if not run["problems"] else "; ".join(run["problems"])))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (args.workdir / f"results-many-{stamp}.json").write_text(json.dumps(runs, indent=2) + "\n")
    return 1 if any(r["problems"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
