"""``python -m benchmarks run``: time scrapewatch scan against DuckDB and Polars baselines.

Usage (from the repository root)::

    python -m benchmarks run [--sizes 1M,10M,50M] [--jsonl 10M] [--repeat 3] \\
        [--workdir /tmp/swbench] [--only scan,duckdb,polars] [--seed 2]

See benchmarks/README.md for what is measured and how the baselines work.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import TOOLS, LogSpec, parse_count, run


def _counts(text: str) -> list[int]:
    """A comma-separated list of line counts (``1M,10M``); empty or ``none``: no logs."""
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        return [parse_count(part) for part in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _tools(text: str) -> list[str]:
    """A comma-separated subset of TOOLS, kept in TOOLS order."""
    chosen = {part.strip() for part in text.split(",") if part.strip()}
    unknown = chosen - set(TOOLS)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {','.join(TOOLS)}; got {text!r}")
    return [tool for tool in TOOLS if tool in chosen]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("run", help="generate logs, time every tool, check every answer")
    bench.add_argument("--sizes", type=_counts, default=_counts("1M,10M,50M"),
                       help="line counts of the combined logs (default 1M,10M,50M)")
    bench.add_argument("--jsonl", type=_counts, default=_counts("10M"),
                       help="line counts of the JSON lines logs (default 10M; 'none' for none)")
    bench.add_argument("--repeat", type=int, default=3, help="runs of each tool per log")
    bench.add_argument("--workdir", type=Path, default=Path("/tmp/swbench"))
    bench.add_argument("--only", type=_tools, default=list(TOOLS),
                       help="comma-separated tools to run (default scan,duckdb,polars)")
    bench.add_argument("--seed", type=int, default=2, help="generator seed")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.seed < 0:
        parser.error("--repeat must be positive and --seed non-negative")
    if not args.sizes and not args.jsonl:
        parser.error("nothing to do: give --sizes or --jsonl")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    specs = ([LogSpec("combined", n, args.seed) for n in args.sizes]
             + [LogSpec("jsonl", n, args.seed) for n in args.jsonl])
    words = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join([sys.executable, "-m", "benchmarks", *words])
    return run(specs, args.workdir.resolve(), args.only, args.repeat, command)


if __name__ == "__main__":
    sys.exit(main())
