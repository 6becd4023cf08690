"""Pseudonyms: entities as keyed hashes, so a report can be shared without exposing
keys, users or addresses. The same key gives the same pseudonym in every run; without
the key, a pseudonym cannot be turned back into its entity (HMAC-SHA-256)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from scrapewatch.detect.windows import EntityWindow
from scrapewatch.reporting.model import Finding, Report, Stored, config_sha256

PREFIX = "anon-"
# reject reasons that quote log text after these words keep only the words
_QUOTING_REASONS = ("bad timestamp", "bad posts")


def pseudonym(key: bytes, kind: str, entity: str) -> str:
    """The stable pseudonym of an entity of `kind` (80 bits of its keyed hash)."""
    digest = hmac.new(key, f"{kind}\0{entity}".encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:20]


def pseudonymised(report: Report, key: bytes) -> Report:
    """`report` with every entity replaced by its pseudonym."""
    def window(w: EntityWindow) -> EntityWindow:
        return dataclasses.replace(w, entity=pseudonym(key, w.entity_kind, w.entity))

    def finding(f: Finding) -> Finding:
        members = [f"{kind}:{pseudonym(key, kind, entity)}"
                   for kind, _, entity in (m.partition(":") for m in f.members)]
        # a line shows its entity: the line ranges stay, the lines go
        evidence = [[dataclasses.replace(e, samples=[]) for e in period] for period in f.evidence]
        return dataclasses.replace(f, window=window(f.window), members=members,
                                   evidence=evidence)

    # the allow-list names keys and addresses: shown as a count, hashed as it was
    entity = dict(report.config.get("entity", {}))
    if entity.get("allow"):
        entity["allow"] = [f"({len(entity['allow'])} entries hidden)"]
    overview = report.overview and dataclasses.replace(report.overview, top=[
        (kind, pseudonym(key, kind, entity), posts, requests)
        for kind, entity, posts, requests in report.overview.top])
    return dataclasses.replace(
        report, findings=_mapped(report.findings, finding), overview=overview,
        allowed=_mapped(report.allowed, finding),
        watchlist=_mapped(report.watchlist, window), pseudonymised=True,
        config={**report.config, "entity": entity} if report.config else report.config,
        config_sha256=report.config_sha256 or config_sha256(report.config))


T = TypeVar("T")


def _mapped(items: Sequence[T], change: Callable[[T], T]) -> Sequence[T]:
    """`items` changed one by one: as they are read back, when they are stored."""
    return items.mapped(change) if isinstance(items, Stored) else [change(i) for i in items]


def redacted(rejects: Iterable[tuple[str, int, str, str]]
             ) -> Iterator[tuple[str, int, str, str]]:
    """Rejected lines without what they hold: no text, and no log text in the reason."""
    for path, line, reason, _ in rejects:
        yield path, line, next((r for r in _QUOTING_REASONS if reason.startswith(r)), reason), ""
