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
from scrapewatch.report.model import Report, batched, finding_json, window_json

ENTITY_COLUMNS = ("entity", "entity_kind", "total_posts", "requests", "peak_24h_posts",
                  "peak_start", "peak_end", "first_crossing_at", "periods", "damages_usd",
                  "damages_full", "damages_prorata", "damages_started")
PERIOD_COLUMNS = ("entity", "entity_kind", "start", "end", "posts", "requests", "damages_usd",
                  "evidence")
REJECT_COLUMNS = ("file", "line", "reason", "text")


def write_report_json(report: Report, stream: TextIO) -> None:
    """report.json, pretty-printed, keys in contract order, its long lists (entities,
    watchlist, allowed) written an item at a time."""
    # ASCII only: a control or bidi character from a log becomes a \\u escape, harmless
    # on a terminal
    document = report.to_json(lists=False)
    marks = {key: f"@@{key}@@" for key in ("entities", "watchlist", "allowed")}
    text = json.dumps({k: marks.get(k, v) for k, v in document.items()}, indent=2,
                      ensure_ascii=True)
    items: dict[str, Iterable[dict[str, Any]]] = {
        "entities": (finding_json(f) for f in report.findings),
        "watchlist": (window_json(w) for w in report.watchlist),
        "allowed": (finding_json(f) for f in report.allowed)}
    for key, mark in marks.items():
        before, text = text.split(json.dumps(mark), 1)
        stream.write(before)
        _write_list(stream, items[key])
    stream.write(text + "\n")


def _write_list(stream: TextIO, items: Iterable[dict[str, Any]]) -> None:
    """A list at the first level of report.json, as json.dump(indent=2) writes it."""
    empty = True
    for item in items:
        stream.write("[\n    " if empty else ",\n    ")
        stream.write(json.dumps(item, indent=2, ensure_ascii=True).replace("\n", "\n    "))
        empty = False
    stream.write("[]" if empty else "\n  ]")


def write_entities_csv(report: Report, stream: TextIO) -> None:
    """One row per flagged entity, largest damages first."""
    _write_csv(stream, ENTITY_COLUMNS, (
        [e["entity"], e["entity_kind"], e["total_posts"], e["requests"], e["peak_24h_posts"],
         e["peak_start"], e["peak_end"], e["first_crossing_at"], len(e["periods"]),
         e["damages_usd"], *e["damages_by_rounding"].values()]
        for e in map(finding_json, report.findings)))


def write_periods_csv(report: Report, stream: TextIO) -> None:
    """One row per charged period; evidence: each file (its SHA-256) and the period's
    first and last line in it, `;`-separated."""
    _write_csv(stream, PERIOD_COLUMNS, (
        [e["entity"], e["entity_kind"], p["start"], p["end"], p["posts"], p["requests"],
         p["damages_usd"], "; ".join(f"{f['file']} (sha256 {f['sha256']}) lines "
                                     f"{f['first_line']}-{f['last_line']}"
                                     for f in p["evidence"])]
        for e in map(finding_json, report.findings) for p in e["periods"]))


_TIME = pa.timestamp("s", tz="UTC")
_MONEY = pa.decimal128(38, 2)
_EVIDENCE = pa.list_(pa.struct([("file", pa.string()), ("sha256", pa.string()),
                                ("first_line", pa.int64()), ("last_line", pa.int64()),
                                ("requests", pa.int64()), ("posts", pa.int64())]))
_ENTITY_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("entity", "entity_kind")]
    + [(name, pa.int64()) for name in ("total_posts", "requests", "peak_24h_posts")]
    + [(name, _TIME) for name in ("peak_start", "peak_end", "first_crossing_at")]
    + [("periods", pa.int32()), ("damages_usd", _MONEY)]
    + [(f"damages_{r}", _MONEY) for r in ROUNDINGS])
_PERIOD_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("entity", "entity_kind")]
    + [(name, _TIME) for name in ("start", "end")]
    + [(name, pa.int64()) for name in ("posts", "requests")]
    + [("damages_usd", _MONEY), ("evidence", _EVIDENCE)])
PARQUET_ROWS = 16_384  # findings per row group


def write_entities_parquet(report: Report, stream: BinaryIO) -> None:
    """entities.csv as typed Parquet."""
    _write_parquet(stream, _ENTITY_SCHEMA, report, lambda e: [{
        **{name: e[name] for name in ("entity", "entity_kind", "total_posts", "requests",
                                      "peak_24h_posts")},
        **{name: _instant(e[name]) for name in ("peak_start", "peak_end",
                                                "first_crossing_at")},
        "periods": len(e["periods"]), "damages_usd": Decimal(e["damages_usd"]),
        **{f"damages_{r}": Decimal(e["damages_by_rounding"][r]) for r in ROUNDINGS}}])


def write_periods_parquet(report: Report, stream: BinaryIO) -> None:
    """periods.csv as typed Parquet, the evidence as a list of files."""
    names = _EVIDENCE.value_type.names
    _write_parquet(stream, _PERIOD_SCHEMA, report, lambda e: [{
        "entity": e["entity"], "entity_kind": e["entity_kind"], "start": _instant(p["start"]),
        "end": _instant(p["end"]), "posts": p["posts"], "requests": p["requests"],
        "damages_usd": Decimal(p["damages_usd"]),
        "evidence": [{k: f[k] for k in names} for f in p["evidence"]]}
        for p in e["periods"]])


def _write_parquet(stream: BinaryIO, schema: pa.Schema, report: Report,
                   rows_of: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> None:
    """A Parquet file of the rows `rows_of` makes of each finding's JSON, written a row
    group of findings at a time."""
    with pq.ParquetWriter(stream, schema) as writer:
        batches = batched(map(finding_json, report.findings), PARQUET_ROWS)
        wrote = False
        for batch in batches:
            writer.write_table(pa.Table.from_pylist(
                [row for e in batch for row in rows_of(e)], schema=schema))
            wrote = True
        if not wrote:
            writer.write_table(schema.empty_table())


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
