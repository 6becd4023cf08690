"""The terminal table of flagged entities, with the total."""

from __future__ import annotations

import itertools
from decimal import Decimal

from scrapewatch.damages import iso
from scrapewatch.reporting.counted import funnel_words, plural, window_words
from scrapewatch.reporting.escape import for_terminal
from scrapewatch.reporting.model import Report

MAX_ENTITY_WIDTH = 48
TABLE_ROWS = 50  # flagged entities listed; the files list them all
WATCHLIST_SHOWN = 10
TOP_SHOWN = 3  # entities with the most posts in the table; report.json has ten


def render_table(report: Report) -> str:
    """A plain-text summary: inputs, flagged entities, watchlist size and the total."""
    policy = report.policy
    lines = [
        f"Read {plural(len(report.files), 'file')}: {plural(report.lines, 'line')}, "
        f"{plural(report.requests, 'request')}, {report.rejected:,} rejected.",
        *filter(None, [window_words(report.window)]),
        *_set_aside(report),
        *(funnel_words(report.funnel, policy) if report.funnel else []),
        *_overview(report),
        f"Policy: more than {policy.threshold_posts:,} posts in a 24-hour period; "
        f"${policy.rate_usd:,} per {policy.per_posts:,} posts; periods={policy.periods}, "
        f"rounding={policy.rounding}, charge={policy.charge}.",
        "",
    ]
    if not report.findings:
        lines.append("No entity crossed the threshold.")
    else:
        rows = [("entity", "peak 24h posts", "periods", "damages (USD)")]
        for f in itertools.islice(report.findings, TABLE_ROWS):
            rows.append((_entity_cell(f.window.entity, f.window.entity_kind),
                         f"{f.window.peak_24h_posts:,}", str(len(f.assessment.periods)),
                         f"{f.assessment.damages_usd:,}"))
        if len(report.findings) > TABLE_ROWS:
            rows.append((f"... and {len(report.findings) - TABLE_ROWS:,} more (entities.csv, "
                         "--output json)", "", "", ""))
        rows.append(("total", "", str(report.periods), f"{report.damages_usd:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        rule = "  ".join("-" * w for w in widths)
        for n, row in enumerate(rows):
            if n in (1, len(rows) - 1):
                lines.append(rule)
            lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                                   for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
    if report.allowed:
        owed = sum((f.assessment.damages_usd for f in report.allowed), Decimal("0.00"))
        lines += _listing(f"Allow-listed, not charged: {len(report.allowed)} (would owe "
                          f"${owed:,})", len(report.allowed),
                          [f"{_entity_cell(f.window.entity, f.window.entity_kind)}  "
                           f"${f.assessment.damages_usd:,}"
                           for f in itertools.islice(report.allowed, WATCHLIST_SHOWN)])
    if report.watchlist:
        lines += _listing(f"Watchlist (peak at or above {policy.warning_share:.0%} of the "
                          f"threshold, not over it): {len(report.watchlist)}",
                          len(report.watchlist),
                          [f"{_entity_cell(w.entity, w.entity_kind)}  "
                           f"{w.peak_24h_posts:,} posts from {iso(w.peak_start)}"
                           for w in itertools.islice(report.watchlist, WATCHLIST_SHOWN)])
    return "\n".join(lines) + "\n"


def _overview(report: Report) -> list[str]:
    """The requests by status class, and the entities with the most posts."""
    overview = report.overview
    if overview is None or not any(overview.statuses.values()):
        return []
    top = "; ".join(f"{_entity_cell(entity, kind)} {posts:,}"
                    for kind, entity, posts, _ in overview.top[:TOP_SHOWN])
    statuses = ", ".join(f"{name} {count:,}" for name, count in overview.statuses.items()
                         if count)
    return [f"Requests by status: {statuses}.", *([f"Most posts: {top}."] if top else [])]


def _set_aside(report: Report) -> list[str]:
    """A line for the inputs set aside as duplicates, and one for those skipped."""
    lines = []
    if report.duplicates:
        lines.append(_names(f"Set aside {plural(len(report.duplicates), 'duplicate')}, "
                            "counted once",
                            [f"{d.path} ({d.reason} as {d.duplicate_of})"
                             for d in report.duplicates]))
    if report.skipped:
        lines.append(_names(f"Skipped {plural(len(report.skipped), 'path')}, not read",
                            [f"{s.path} ({s.reason})" for s in report.skipped]))
    if report.excluded:
        lines.append(_names(f"Excluded {plural(len(report.excluded), 'file')} by --include and "
                            "--exclude", [s.path for s in report.excluded]))
    return lines


def _names(title: str, items: list[str]) -> str:
    """`title: a, b, c.` with the first WATCHLIST_SHOWN items, escaped."""
    more = (f" and {len(items) - WATCHLIST_SHOWN} more (see report.json)"
            if len(items) > WATCHLIST_SHOWN else "")
    return f"{title}: {for_terminal(', '.join(items[:WATCHLIST_SHOWN]))}{more}."


def _listing(title: str, count: int, rows: list[str]) -> list[str]:
    """A titled list of the first rows of `count`, and how many more there are."""
    lines = ["", title, *(f"  {row}" for row in rows)]
    if count > len(rows):
        lines.append(f"  ... and {count - len(rows)} more (see report.json)")
    return lines


def _entity_cell(entity: str, kind: str) -> str:
    """An entity for the terminal: escaped, labelled with its kind, cut to fit."""
    name = for_terminal(f"{entity} ({kind})")
    return name if len(name) <= MAX_ENTITY_WIDTH else name[:MAX_ENTITY_WIDTH - 1] + "…"
