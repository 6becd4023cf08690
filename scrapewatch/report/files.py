"""Report files under --out: report.json, entities.csv, periods.csv, their typed Parquet
twins (entities.parquet, periods.parquet: money as decimal(38,2), times as UTC
timestamps) for the next step of a pipeline, and rejects.

Each file is written to a temporary name and renamed into place, so a reader never sees
half a file and a symlink planted in the folder is replaced, never followed.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from scrapewatch.config import ROUNDINGS
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


_TIME = pa.timestamp("s", tz="UTC")
_MONEY = pa.decimal128(38, 2)
_EVIDENCE = pa.list_(pa.struct([("file", pa.string()), ("sha256", pa.string()),
                                ("first_line", pa.int64()), ("last_line", pa.int64()),
                                ("requests", pa.int64()), ("posts", pa.int64())]))


def write_entities_parquet(report: Report, stream: BinaryIO) -> None:
    """entities.csv as typed Parquet."""
    entities = report.to_json()["entities"]
    columns: dict[str, pa.Array] = {
        name: pa.array([e[name] for e in entities], pa.string())
        for name in ("entity", "entity_kind")}
    columns |= {name: pa.array([e[name] for e in entities], pa.int64())
                for name in ("total_posts", "requests", "peak_24h_posts")}
    columns |= {name: pa.array([_instant(e[name]) for e in entities], _TIME)
                for name in ("peak_start", "peak_end", "first_crossing_at")}
    columns["periods"] = pa.array([len(e["periods"]) for e in entities], pa.int32())
    columns["damages_usd"] = pa.array([Decimal(e["damages_usd"]) for e in entities], _MONEY)
    columns |= {f"damages_{r}": pa.array([Decimal(e["damages_by_rounding"][r])
                                          for e in entities], _MONEY) for r in ROUNDINGS}
    pq.write_table(pa.table(columns), stream)


def write_periods_parquet(report: Report, stream: BinaryIO) -> None:
    """periods.csv as typed Parquet, the evidence as a list of files."""
    rows = [(e, p) for e in report.to_json()["entities"] for p in e["periods"]]
    pq.write_table(pa.table({
        "entity": pa.array([e["entity"] for e, _ in rows], pa.string()),
        "entity_kind": pa.array([e["entity_kind"] for e, _ in rows], pa.string()),
        "start": pa.array([_instant(p["start"]) for _, p in rows], _TIME),
        "end": pa.array([_instant(p["end"]) for _, p in rows], _TIME),
        "posts": pa.array([p["posts"] for _, p in rows], pa.int64()),
        "requests": pa.array([p["requests"] for _, p in rows], pa.int64()),
        "damages_usd": pa.array([Decimal(p["damages_usd"]) for _, p in rows], _MONEY),
        "evidence": pa.array([[{k: f[k] for k in _EVIDENCE.value_type.names}
                               for f in p["evidence"]] for _, p in rows], _EVIDENCE)}), stream)


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


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
    tables: dict[str, Callable[[BinaryIO], None]] = {
        "entities.parquet": lambda s: write_entities_parquet(report, s),
        "periods.parquet": lambda s: write_periods_parquet(report, s),
    }
    return ([write_atomically(out, name, write) for name, write in writers.items()]
            + [write_atomically(out, name, write, binary=True) for name, write in tables.items()])


def write_atomically(folder: Path, name: str, write: Callable[[Any], None], *,
                     binary: bool = False) -> Path:
    """Write `folder/name` (folder created) through a temporary file and a rename; the
    stream `write` gets is text, or bytes when `binary`."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    try:
        with (open(handle, "wb") if binary
              else open(handle, "w", encoding="utf-8", newline="")) as stream:
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
