"""``python -m benchmarks.stages scan LOG [options]``: where one scan's time goes.

Runs the CLI in this process with timing wrappers around its stages and prints, on
stderr, wall seconds per stage, longest first: each kind of load query (summed over
the loaders, which run side by side), the reader thread (wall and its own CPU), the
time the loaders waited for it, detection, and every other query. One run: compare
stages within a run, not runs with each other.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import scrapewatch.pipeline as pipeline
import scrapewatch.reading.read as read
import scrapewatch.sql as sql

T = TypeVar("T")
SECONDS: collections.defaultdict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter[str] = collections.Counter()
# the load statements, by a piece of their text
LOAD_STATEMENTS = ("load_block", "INSERT INTO activity_parts", "INSERT INTO requests",
                   "count(*) FILTER", "INSERT INTO rejects")


def _label(query: str) -> str:
    head = query.strip()[:400]
    found = next((name for name in LOAD_STATEMENTS if name in head), None)
    return found or "other: " + " ".join(query.split())[:60]


def _timed_run(run: Callable[..., Any]) -> Callable[..., Any]:
    def timed(con: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return run(con, query, *args, **kwargs)
        finally:
            label = _label(query)
            SECONDS[label] += time.perf_counter() - began
            CALLS[label] += 1
    return timed


def _timed_items(label: str, items: Iterator[T], cpu: bool = False) -> Iterator[T]:
    while True:
        began, began_cpu = time.perf_counter(), time.thread_time()
        try:
            item = next(items)
        except StopIteration:
            return
        finally:
            SECONDS[label] += time.perf_counter() - began
            if cpu:
                SECONDS[label + " (its thread's CPU)"] += time.thread_time() - began_cpu
        yield item


def _timed_call(label: str, function: Callable[..., T]) -> Callable[..., T]:
    def timed(*args: Any, **kwargs: Any) -> T:
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SECONDS[label] += time.perf_counter() - began
    return timed


def main(argv: list[str]) -> None:
    """Run `scrapewatch ARGV` with the stages timed, then print them."""
    original = sql.run
    timed_run = _timed_run(original)
    for module in list(sys.modules.values()):
        if module.__name__.startswith("scrapewatch") and getattr(module, "run", None) is original:
            cast(Any, module).run = timed_run
    loading, scanning = cast(Any, read), cast(Any, pipeline)  # patched in place
    blocks, prefetch = loading.prepared_blocks, loading.prefetch
    loading.prepared_blocks = lambda *a, **k: _timed_items(
        "reader thread: read, hash and cut blocks", blocks(*a, **k), cpu=True)
    loading.prefetch = lambda items, *a, **k: _timed_items(
        "loaders waiting for the reader", prefetch(items, *a, **k))
    scanning.detect = _timed_call("detection (windows, periods, evidence)", scanning.detect)
    from scrapewatch.cli import main as cli

    sys.argv = ["scrapewatch", *argv]
    began = time.perf_counter()
    with contextlib.suppress(SystemExit):  # the CLI's exit code is not the point here
        cli()
    total = time.perf_counter() - began
    for label, seconds in sorted(SECONDS.items(), key=lambda item: -item[1]):
        print(f"{seconds:8.3f} s  {CALLS.get(label, '')!s:>5}  {label}", file=sys.stderr)
    print(f"{total:8.3f} s         the whole run", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
