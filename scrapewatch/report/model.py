"""The report model: what a run found, shaped exactly as DESIGN.md's report.json."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from scrapewatch import __version__
from scrapewatch.config import PERIODS, ROUNDINGS, Policy
from scrapewatch.damages import Assessment, iso
from scrapewatch.detect.windows import EntityWindow
from scrapewatch.ingest.sources import DuplicateInput, SkippedInput
from scrapewatch.report.charts import EntitySeries
from scrapewatch.schema import DAY_SECONDS

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
    samples: list[tuple[int, str]] = dataclasses.field(default_factory=list)  # (line, text)


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
    findings: list[Finding]
    watchlist: list[EntityWindow]
    allowed: list[Finding] = dataclasses.field(default_factory=list)  # allow-listed, uncharged
    pseudonymised: bool = False  # entities are keyed hashes (see report.privacy)
    config: dict[str, Any] = dataclasses.field(default_factory=dict)  # config_json of the run
    config_sha256: str = ""  # of the config as run (kept when the shown one is redacted)
    # inputs not read: another path to, or a copy of, a file read; not regular files
    duplicates: list[DuplicateInput] = dataclasses.field(default_factory=list)
    skipped: list[SkippedInput] = dataclasses.field(default_factory=list)

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
        return sum((f.assessment.damages_usd for f in self.findings), Decimal("0.00"))

    @property
    def periods(self) -> int:
        return sum(len(f.assessment.periods) for f in self.findings)

    def sensitivity(self) -> dict[str, dict[str, Decimal]]:
        """Total damages under every periods mode and rounding."""
        return {mode: {rounding: sum((f.assessment.sensitivity[mode][rounding]
                                      for f in self.findings), Decimal("0.00"))
                       for rounding in ROUNDINGS} for mode in PERIODS}

    def run_manifest(self) -> dict[str, Any]:
        """What a re-run needs: the version, the whole config and its hash, and the
        inputs' hashes (the time is `generated_at`)."""
        return {"scrapewatch_version": __version__, "config": self.config,
                "config_sha256": self.config_sha256 or config_sha256(self.config),
                "input_sha256": sorted({f.sha256 for f in self.files})}

    def to_json(self) -> dict[str, Any]:
        """The report.json document."""
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
                "lines": self.lines, "rejected": self.rejected, "requests": self.requests,
                "first_request_at": _iso_or_none(self.first_request_at),
                "last_request_at": _iso_or_none(self.last_request_at),
            },
            "entities": [finding_json(f) for f in self.findings],
            "watchlist": [window_json(w) for w in self.watchlist],
            "allowed": [finding_json(f) for f in self.allowed],
            "totals": {"entities_flagged": len(self.findings), "periods": self.periods,
                       "damages_usd": str(self.damages_usd)},
            "sensitivity": {mode: {r: str(v) for r, v in by.items()}
                            for mode, by in self.sensitivity().items()},
        }


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
                                   "samples": [{"line": n, "text": t} for n, t in e.samples]}
                                  for e in (finding.evidence[i] if finding.evidence else [])]}
                    for i, (p, d) in enumerate(zip(a.periods, a.period_damages,
                                                   strict=True))],
        "damages_usd": str(a.damages_usd),
        "damages_by_rounding": {r: str(v) for r, v in a.damages_by_rounding.items()},
        "members": finding.members,
    }


def _iso_or_none(seconds: int | None) -> str | None:
    return None if seconds is None else iso(seconds)
