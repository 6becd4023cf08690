"""Report files under --out: report.json, entities.csv, periods.csv and rejects.

Each file is written to a temporary name and renamed into place, so a reader never sees
half a file and a symlink planted in the folder is replaced, never followed.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from scrapewatch.report.escape import for_csv, for_terminal
from scrapewatch.report.model import Report

ENTITY_COLUMNS = ("entity", "entity_kind", "total_posts", "requests", "peak_24h_posts",
                  "peak_start", "peak_end", "first_crossing_at", "periods", "damages_usd",
                  "damages_full", "damages_prorata", "damages_started")
PERIOD_COLUMNS = ("entity", "entity_kind", "start", "end", "posts", "requests", "damages_usd",
                  "evidence")
REJECT_COLUMNS = ("file", "line", "reason", "text")


def write_report_json(report: Report, stream: TextIO) -> None:
    """report.json, pretty-printed, keys in contract order."""
    # ASCII only: a control or bidi character from a log becomes a \\u escape, harmless
    # on a terminal
    json.dump(report.to_json(), stream, indent=2, ensure_ascii=True)
    stream.write("\n")


def write_entities_csv(report: Report, stream: TextIO) -> None:
    """One row per flagged entity, largest damages first."""
    _write_csv(stream, ENTITY_COLUMNS, (
        [e["entity"], e["entity_kind"], e["total_posts"], e["requests"], e["peak_24h_posts"],
         e["peak_start"], e["peak_end"], e["first_crossing_at"], len(e["periods"]),
         e["damages_usd"], *e["damages_by_rounding"].values()]
        for e in report.to_json()["entities"]))


def write_periods_csv(report: Report, stream: TextIO) -> None:
    """One row per charged period; evidence: each file (its SHA-256) and the period's
    first and last line in it, `;`-separated."""
    _write_csv(stream, PERIOD_COLUMNS, (
        [e["entity"], e["entity_kind"], p["start"], p["end"], p["posts"], p["requests"],
         p["damages_usd"], "; ".join(f"{f['file']} (sha256 {f['sha256']}) lines "
                                     f"{f['first_line']}-{f['last_line']}"
                                     for f in p["evidence"])]
        for e in report.to_json()["entities"] for p in e["periods"]))


def write_rejects(rows: Iterable[tuple[str, int, str, str]], stream: TextIO) -> None:
    """Rejected lines: file, line number, reason and the line (cut)."""
    _write_csv(stream, REJECT_COLUMNS, rows)


def _write_csv(stream: TextIO, header: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([for_csv(for_terminal(cell) if isinstance(cell, str) else cell)
                      for cell in row] for row in rows)


def write_out_dir(report: Report, out: Path,
                  rejects: Iterable[tuple[str, int, str, str]] | None) -> list[Path]:
    """Write every report file into `out` (created if needed); return their paths."""
    from scrapewatch.report.html import write_report_html

    writers: dict[str, Callable[[TextIO], None]] = {
        "report.json": lambda s: write_report_json(report, s),
        "entities.csv": lambda s: write_entities_csv(report, s),
        "periods.csv": lambda s: write_periods_csv(report, s),
        "report.html": lambda s: write_report_html(report, s),
    }
    if rejects is not None:
        writers["rejects"] = lambda s: write_rejects(rejects, s)
    return [write_atomically(out, name, write) for name, write in writers.items()]


def write_atomically(folder: Path, name: str, write: Callable[[TextIO], None]) -> Path:
    """Write `folder/name` (folder created) through a temporary file and a rename."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    try:
        with open(handle, "w", encoding="utf-8", newline="") as stream:
            write(stream)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; honour the umask
        os.replace(temporary, folder / name)
    except BaseException:
        os.unlink(temporary)
        raise
    return folder / name


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
