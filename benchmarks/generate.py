"""Seeded generator of realistic access logs with planted scrapers and their expected answer.

What it plants (the entity is the client IP for ``combined``, the api_key for ``jsonl``):

* ``max(2, 2 + lines // 2_000_000)`` **violators**. Each sends bursts lasting at most
  20 h; bursts of one entity start at least 48 h apart; each burst carries a known
  number of counted posts above 1,000,000 (1.0x to 3.5x million; the very first burst
  of the first violator carries exactly 1,000,001). So under the default policy
  (greedy periods, full rounding) every charged period starts at a burst's first
  request, ends 24 h later and holds exactly that burst's posts.
* one entity whose single burst holds **exactly 1,000,000** posts, spread over
  23:59:59 (not a violation: the clause says *more than*; it is on the watchlist),
* one **watchlist** entity peaking at 850,000 posts,
* **background** traffic from at least 200,000 clients (5 % IPv6, a few timezone
  offsets), mixing API calls with 0-post pages and assets, none of them above
  700,000 posts in any 24 h (checked while writing; the bound is reported).

Planted bursts also carry about 3 % of HTTP 429 answers to the same URLs, which must
not count (only 2xx does). Posts per request follow scrapewatch's built-in path rules
(``rule_posts`` in ``catalogue``); in JSON lines ``result_count`` is the observed count and wins.

Expected answer (returned by ``generate`` and written by ``--expected``)::

    {"lines": N, "format": "combined", "seed": S, "threshold_posts": 1000000,
     "violators": {ENTITY: {"periods": [{"start": ..., "end": ..., "posts": ...}],
                            "damages_usd": "45000.00", "peak_24h_posts": ...,
                            "first_crossing_at": ...}},
     "exactly_threshold": {ENTITY: 1000000},
     "watchlist": {ENTITY: peak},          # both the 850,000 and the 1,000,000 entity
     "total_damages_usd": "...", ...}

Usage::

    python -m benchmarks.generate --lines 10000000 --format combined --seed 1 \\
        --out /tmp/access.log.gz --expected /tmp/expected.json

Speed: text is built per chunk with pyarrow ``take`` + ``binary_join_element_wise`` from
lookup tables, and written (and gzipped, level 1) on a second thread. Same arguments
give a byte-identical file.

Layout: this module holds the public API (``generate``) and the CLI; the parts live in
``benchmarks.catalogue`` (path rules, request templates), ``benchmarks.traffic`` (clients,
lines, background traffic), ``benchmarks.planting`` (planted entities, bursts, expected
answer) and ``benchmarks.render`` (text and writing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.catalogue import background_catalogue
from benchmarks.planting import (
    BURST_GAP_S,
    MAX_BURST_S,
    PlantedEntity,
    burst_lines,
    check_bursts,
    expected_answer,
    fit_profiles,
    iso,
    name_entities,
    place_bursts,
    plan_roles,
)
from benchmarks.render import ChunkWriter, build_tables, render
from benchmarks.traffic import (
    DAY,
    BackgroundPeakCheck,
    DiurnalClock,
    Lines,
    World,
    background_chunk,
    background_population,
    response_bytes,
)

FORMATS = ("combined", "jsonl")
DEFAULT_START = "2025-03-01T00:00:00Z"
DEFAULT_DAYS = 7
EFFECTIVE_FROM = datetime(2024, 11, 15, tzinfo=UTC)

BACKGROUND_CAP = 700_000  # no background entity may get closer to the threshold
CHUNK_LINES = 500_000  # big enough to amortise, small enough to keep memory reused
MIN_CLIENTS = 200_000


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

def parse_start(start: str | datetime) -> int:
    """A start instant (ISO-8601 or datetime, UTC if naive) as epoch seconds."""
    when = (start if isinstance(start, datetime)
            else datetime.fromisoformat(start.replace("Z", "+00:00")))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when < EFFECTIVE_FROM:
        raise ValueError("start must be on or after 2024-11-15T00:00:00Z "
                         "(earlier requests do not count)")
    return int(when.timestamp())


def build_world(rng: np.random.Generator, *, lines: int, fmt: str, seed: int,
                t0: int, days: int) -> tuple[World, list[PlantedEntity], Lines]:
    """Plans the whole file: clients, requests, planted entities and their lines."""
    span = days * DAY
    # More clients when days are dense, so busy background clients stay far below the line.
    clients = min(max(MIN_CLIENTS, lines // days // 40), 5_000_000)
    cat = background_catalogue(rng)
    pop = background_population(rng, clients)
    entities = plan_roles(rng, lines, (span - 1 - MAX_BURST_S) // BURST_GAP_S + 1)
    fit_profiles(entities, lines, fmt)
    name_entities(rng, entities, pop, fmt)
    for entity in entities:
        place_bursts(rng, entity, t0, span)
    parts = [burst_lines(rng, e, b, cat) for e in entities for b in e.bursts]
    planted = Lines.concat(parts)
    planted = planted.take(np.argsort(planted.ts, kind="stable"))
    cat.freeze()
    pop.freeze()
    planted.nbytes = response_bytes(rng, cat, planted.template, planted.status, planted.observed)
    world = World(fmt, seed, t0, span, cat, pop, DiurnalClock(span))
    check_bursts(entities, planted, world)
    return world, entities, planted


def write_lines(path: Path, world: World, planted: Lines, n_background: int,
                progress: bool) -> int:
    """Writes background chunks merged with planted lines in time order.

    Returns:
        The upper bound of any background client's posts in 24 h.
    """
    tables = build_tables(world)
    n_chunks = max(1, math.ceil(n_background / CHUNK_LINES))
    cuts = [n_background * k // n_chunks for k in range(n_chunks + 1)]
    # Planted lines go to the chunk whose time range holds them (see edges).
    edges = [world.t0 + math.floor(float(world.clock.seconds_at(c / n_background))) for c in cuts]
    check, writer, began, done = BackgroundPeakCheck(world), ChunkWriter(path), time.monotonic(), 0
    try:
        for k in range(n_chunks):
            rng = np.random.default_rng([world.seed, 1, k])
            chunk = background_chunk(rng, world, cuts[k + 1] - cuts[k],
                                     cuts[k] / n_background, cuts[k + 1] / n_background)
            lo = 0 if k == 0 else int(np.searchsorted(planted.ts, edges[k]))
            hi = (len(planted) if k == n_chunks - 1
                  else int(np.searchsorted(planted.ts, edges[k + 1])))
            merged = Lines.concat([chunk, planted.take(slice(lo, hi))])
            merged = merged.take(np.argsort(merged.ts, kind="stable"))
            check.add(merged)
            writer.write(render(merged, world, tables))
            done += len(merged)
            if progress:
                report_progress(done, n_background + len(planted), began)
    finally:
        writer.close()
    return check.finish()


def report_progress(done: int, total: int, began: float) -> None:
    """One progress line on stderr (rewritten in place on a terminal)."""
    rate = done / max(time.monotonic() - began, 1e-9)
    end = "\r" if sys.stderr.isatty() and done < total else "\n"
    print(f"generate: {done:,}/{total:,} lines ({done / total:.0%}), "
          f"{rate / 1e6:.2f} M lines/s", end=end, file=sys.stderr, flush=True)


def generate(path: str | os.PathLike[str], *, lines: int, fmt: str, seed: int,
             start: str | datetime = DEFAULT_START, days: int = DEFAULT_DAYS,
             progress: bool = False) -> dict[str, Any]:
    """Writes a log file with planted violators and returns the expected answer.

    Args:
        path: output file; gzip (level 1) when it ends in ``.gz``.
        lines: exact number of lines to write.
        fmt: "combined" (nginx/Apache) or "jsonl".
        seed: random seed; same arguments give a byte-identical file.
        start: first instant of the traffic (UTC), on or after 2024-11-15.
        days: whole days of traffic.
        progress: print progress to stderr.

    Returns:
        The expected answer (see the module docstring).

    Raises:
        ValueError: bad arguments, or too few lines for the planted entities.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if lines < 1 or days < 1 or seed < 0:
        raise ValueError("lines and days must be positive and seed non-negative")
    t0 = parse_start(start)
    world, entities, planted = build_world(np.random.default_rng([seed, 0]), lines=lines,
                                           fmt=fmt, seed=seed, t0=t0, days=days)
    bound = write_lines(Path(path), world, planted, lines - len(planted), progress)
    if bound > BACKGROUND_CAP:
        raise AssertionError(f"a background client reached {bound} posts in 48 h; change the seed")
    return expected_answer(entities, lines=lines, format=fmt, seed=seed, start=iso(t0), days=days,
                           planted_lines=len(planted), background_peak_24h_upper_bound=bound)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, required=True, help="number of lines to write")
    parser.add_argument("--format", choices=FORMATS, default="combined", dest="fmt")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True, help="output file (.gz for gzip level 1)")
    parser.add_argument("--expected", help="write the expected answer here as JSON")
    parser.add_argument("--start", default=DEFAULT_START, help="first instant, ISO-8601 UTC")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    try:
        answer = generate(args.out, lines=args.lines, fmt=args.fmt, seed=args.seed,
                          start=args.start, days=args.days, progress=not args.quiet)
    except ValueError as exc:
        parser.error(str(exc))
    if args.expected:
        Path(args.expected).write_text(json.dumps(answer, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
