"""``python -m benchmarks.spark_steps LOG [--spark-master URL]``: where a Spark scan's
time goes.

Runs ``scrapewatch.scan(LOG, spark=...)`` in this process with a timer around each
call the run makes of the Spark engine (the load, keeping the files, each table
detection creates) and prints, as they end, the seconds since the start and each
call's own seconds. The JVM's start is the first line. One run: compare steps within
a run, not runs with each other.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

STEPS = ("load", "keep_files", "create", "keep", "rows")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spark_steps",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("log")
    parser.add_argument("--spark-master", default="local[*]")
    args = parser.parse_args(argv)
    began = time.perf_counter()

    def say(text: str) -> None:
        print(f"{time.perf_counter() - began:7.2f} s  {text}", file=sys.stderr, flush=True)

    from scrapewatch.engine.spark import SparkEngine, spark_session
    from scrapewatch.pipeline import scan

    spark = spark_session(args.spark_master)
    say("the JVM started")
    for name in STEPS:
        setattr(SparkEngine, name, _timed(getattr(SparkEngine, name), name, say))
    report = scan([args.log], spark=spark)
    say(f"done: {len(report.findings)} flagged, ${report.damages_usd:,}")
    spark.stop()
    return 0


def _timed(method: Callable[..., Any], name: str, say: Callable[[str], None]
           ) -> Callable[..., Any]:
    @functools.wraps(method)
    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = method(self, *args, **kwargs)
        what = f" {args[0][:50]}" if args and isinstance(args[0], str) else ""
        say(f"{name}{what}: {time.perf_counter() - start:.2f} s")
        return result
    return timed


if __name__ == "__main__":
    raise SystemExit(main())
