"""The report model: what a run found, shaped exactly as DESIGN.md's report.json."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import pyarrow.parquet as pq

from scrapewatch.config import PERIODS, ROUNDINGS, Policy
from scrapewatch.damages import Assessment, Period, iso
from scrapewatch.damages.money import usd
from scrapewatch.detect.windows import EntityWindow
from scrapewatch.reading.inputs import DuplicateInput, SkippedInput
from scrapewatch.reporting.charts import EntitySeries
from scrapewatch.reporting.counted import Funnel, Overview
from scrapewatch.schema import ALL_TIME, DAY_SECONDS, Window
from scrapewatch.version import __version__

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class FileSummary:
    """One input file as read."""

    path: str
    sha256: str
    format: str | None
    size: int
    lines: int
    rejected: int
    requests: int


@dataclass(frozen=True)
class PeriodFile:
    """What one file holds of a charged period."""

    path: str
    sha256: str
    first_line: int
    last_line: int
    requests: int
    posts: int
    # the first and last line quoted: (line, text, the second it counts at)
    samples: list[tuple[int, str, int]] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    """A flagged entity: its windows and its charged periods."""

    window: EntityWindow
    assessment: Assessment
    series: EntitySeries | None = None  # what report.html draws
    members: list[str] = dataclasses.field(default_factory=list)  # an organisation's kind:entity
    # per charged period, the files its requests came from
    evidence: list[list[PeriodFile]] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class Report:
    """Everything a run found."""

    generated_at: datetime
    policy: Policy
    files: list[FileSummary]
    first_request_at: int | None
    last_request_at: int | None
    findings: Sequence[Finding]
    watchlist: Sequence[EntityWindow]
    allowed: Sequence[Finding] = dataclasses.field(default_factory=list)  # allow-listed, uncharged
    pseudonymised: bool = False  # entities are keyed hashes (see report.privacy)
    config: dict[str, Any] = dataclasses.field(default_factory=dict)  # config_json of the run
    config_sha256: str = ""  # of the config as run (kept when the shown one is redacted)
    totals: Totals | None = None  # of `findings`, when they are too many to add up again
    # inputs not read: another path to, or a copy of, a file read; not regular files
    duplicates: list[DuplicateInput] = dataclasses.field(default_factory=list)
    skipped: list[SkippedInput] = dataclasses.field(default_factory=list)
    # files the --include and --exclude patterns left out
    excluded: list[SkippedInput] = dataclasses.field(default_factory=list)
    window: Window = ALL_TIME  # the activity counted: --since and --until
    funnel: Funnel | None = None  # None: a store with files from before it was kept
    overview: Overview | None = None  # as funnel

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def requests(self) -> int:
        return sum(f.requests for f in self.files)

    @property
    def damages_usd(self) -> Decimal:
        if self.totals is not None:
            return usd(self.totals.cents)
        return sum((f.assessment.damages_usd for f in self.findings), Decimal("0.00"))

    @property
    def periods(self) -> int:
        if self.totals is not None:
            return self.totals.periods
        return sum(len(f.assessment.periods) for f in self.findings)

    def sensitivity(self) -> dict[str, dict[str, Decimal]]:
        """Total damages under every periods mode and rounding."""
        if self.totals is not None:
            return {mode: {rounding: usd(cents) for rounding, cents in by.items()}
                    for mode, by in self.totals.sensitivity.items()}
        return {mode: {rounding: sum((f.assessment.sensitivity[mode][rounding]
                                      for f in self.findings), Decimal("0.00"))
                       for rounding in ROUNDINGS} for mode in PERIODS}

    def run_manifest(self) -> dict[str, Any]:
        """What a re-run needs: the version, the whole config and its hash, and the
        inputs' hashes (the time is `generated_at`)."""
        return {"scrapewatch_version": __version__, "config": self.config,
                "config_sha256": self.config_sha256 or config_sha256(self.config),
                "input_sha256": sorted({f.sha256 for f in self.files}),
                "window": {"since": _iso_or_none(self.window.since),
                           "until": _iso_or_none(self.window.until)}}

    def to_json(self, *, lists: bool = True) -> dict[str, Any]:
        """The report.json document; without `lists`, its entities, watchlist and
        allowed are left empty (they are streamed: see report.files)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "scrapewatch_version": __version__,
            "generated_at": self.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "pseudonymised": self.pseudonymised,
            "policy": policy_json(self.policy),
            "run": self.run_manifest(),
            "inputs": {
                "files": [dataclasses.asdict(f) for f in self.files],
                "duplicates": [dataclasses.asdict(d) for d in self.duplicates],
                "skipped": [dataclasses.asdict(s) for s in self.skipped],
                "excluded": [dataclasses.asdict(s) for s in self.excluded],
                "lines": self.lines, "rejected": self.rejected, "requests": self.requests,
                "first_request_at": _iso_or_none(self.first_request_at),
                "last_request_at": _iso_or_none(self.last_request_at),
            },
            "funnel": None if self.funnel is None else self.funnel.to_json(),
            "overview": None if self.overview is None else self.overview.to_json(),
            "entities": [finding_json(f) for f in self.findings] if lists else [],
            "watchlist": [window_json(w) for w in self.watchlist] if lists else [],
            "allowed": [finding_json(f) for f in self.allowed] if lists else [],
            "totals": {"entities_flagged": len(self.findings), "periods": self.periods,
                       "damages_usd": str(self.damages_usd)},
            "sensitivity": {mode: {r: str(v) for r, v in by.items()}
                            for mode, by in self.sensitivity().items()},
        }


@dataclass(frozen=True)
class Totals:
    """What a run's findings add up to, in cents: damages, charged periods, and the
    damages under every periods mode and rounding; and the requests and posts of the
    allow-listed entities whose peak reached the watch level."""

    cents: int
    periods: int
    sensitivity: dict[str, dict[str, int]]
    allowed_requests: int = 0
    allowed_posts: int = 0


T = TypeVar("T")
ROWS_READ = 8192  # rows of a stored sequence read back at a time


class Stored(Sequence[T], Generic[T]):
    """A long sequence kept in a Parquet file, in order, and read back in batches, so
    that millions of findings never sit in memory at once. `convert` makes an item of
    a row; `keep` is held for as long as the sequence is (the folder of the file)."""

    def __init__(self, path: Path | None, count: int, convert: Callable[[dict[str, Any]], T],
                 keep: object = None) -> None:
        self.path, self.size, self.convert, self.keep = path, count, convert, keep

    def mapped(self, change: Callable[[T], T]) -> Stored[T]:
        """The same sequence with `change` applied to each item as it is read."""
        convert = self.convert
        return Stored(self.path, self.size, lambda row: change(convert(row)), self.keep)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[T]:
        if self.path is None or not self.size:
            return
        for batch in pq.ParquetFile(self.path).iter_batches(ROWS_READ):
            for row in batch.to_pylist():
                yield self.convert(row)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self.size)
            return list(itertools.islice(self, start, stop, step))
        if not -self.size <= index < self.size:
            raise IndexError(index)
        return next(itertools.islice(self, index % self.size, None))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Stored({self.size} items in {self.path})"


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last one shorter); itertools.batched of 3.12."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def finding_of_row(row: dict[str, Any], series: dict[tuple[str, str], EntitySeries]
                   ) -> Finding:
    """A finding from a row of the findings file (see report.findings), with its
    chart series when it is among the charted ones."""
    window = window_of_row(row)
    periods = row["periods"]
    assessment = Assessment(
        periods=[Period(p["start"], p["end"], p["posts"], p["requests"]) for p in periods],
        period_damages=[p["damages_usd"] for p in periods], damages_usd=row["damages_usd"],
        damages_by_rounding={r: row[f"damages_{r}"] for r in ROUNDINGS}, sensitivity={})
    evidence = [[PeriodFile(e["file"], e["sha256"], e["first_line"], e["last_line"],
                            e["requests"], e["posts"],
                            [(s["line"], s["text"], s["at"]) for s in e["samples"]])
                 for e in p["evidence"]] for p in periods]
    return Finding(window, assessment, series.get((window.entity_kind, window.entity)),
                   row["members"], evidence)


def window_of_row(row: dict[str, Any]) -> EntityWindow:
    """An entity's window figures from a row with EntityWindow's columns."""
    return EntityWindow(row["entity_kind"], row["entity"], row["total_posts"],
                        row["requests"], row["observed_posts"], row["peak_24h_posts"],
                        row["peak_start"], row["first_crossing"])


def config_sha256(config: dict[str, Any]) -> str:
    """The SHA-256 of a config_json document (keys sorted)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def policy_json(policy: Policy) -> dict[str, Any]:
    """The policy with Decimals as strings and instants as ISO-8601 UTC."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(policy):
        value = getattr(policy, f.name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.strftime("%Y-%m-%dT%H:%M:%SZ")
        out[f.name] = value
    return out


def window_json(window: EntityWindow) -> dict[str, Any]:
    """An entity's identity, totals and peak."""
    return {
        "entity": window.entity,
        "entity_kind": window.entity_kind,
        "total_posts": window.total_posts,
        "observed_posts": window.observed_posts,
        "estimated_posts": window.total_posts - window.observed_posts,
        "requests": window.requests,
        "peak_24h_posts": window.peak_24h_posts,
        "peak_start": iso(window.peak_start),
        "peak_end": iso(window.peak_start + DAY_SECONDS),
        "first_crossing_at": _iso_or_none(window.first_crossing),
    }


def finding_json(finding: Finding) -> dict[str, Any]:
    """A flagged entity with its charged periods and damages."""
    a = finding.assessment
    return {
        **window_json(finding.window),
        "periods": [{"start": iso(p.start), "end": iso(p.end), "posts": p.posts,
                     "requests": p.requests, "damages_usd": str(d),
                     "evidence": [{"file": e.path, "sha256": e.sha256,
                                   "first_line": e.first_line, "last_line": e.last_line,
                                   "requests": e.requests, "posts": e.posts,
                                   "samples": [{"line": n, "text": t, "at": iso(at)}
                                               for n, t, at in e.samples]}
                                  for e in (finding.evidence[i] if finding.evidence else [])]}
                    for i, (p, d) in enumerate(zip(a.periods, a.period_damages,
                                                   strict=True))],
        "damages_usd": str(a.damages_usd),
        "damages_by_rounding": {r: str(v) for r, v in a.damages_by_rounding.items()},
        "members": finding.members,
    }


def _iso_or_none(seconds: int | None) -> str | None:
    return None if seconds is None else iso(seconds)
