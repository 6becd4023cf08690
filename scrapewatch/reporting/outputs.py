"""Where results leave, in one place: the files of an `--out` folder (REPORT_FILES),
what `--output` prints for a report (scan, report: REPORT_OUTPUTS), and the forms of a
query's result (sql: ROWS_OUTPUTS). The CLI's choices are the names here."""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from scrapewatch.reporting.custody import MANIFEST, write_manifest
from scrapewatch.reporting.escape import for_csv, for_terminal
from scrapewatch.reporting.files import (
    out_folder,
    write_entities_csv,
    write_entities_parquet,
    write_periods_csv,
    write_periods_parquet,
    write_rejects,
    write_report_json,
)
from scrapewatch.reporting.html import write_report_html
from scrapewatch.reporting.model import Report
from scrapewatch.reporting.terminal import render_table

# (the writer of a stream, whether it writes bytes)
Writer = tuple[Callable[[Any, Any], None], bool]

# The files of an --out folder, by name (and `rejects`, when there are any).
REPORT_FILES: dict[str, Writer] = {
    "report.json": (write_report_json, False),
    "entities.csv": (write_entities_csv, False),
    "periods.csv": (write_periods_csv, False),
    "report.html": (write_report_html, False),
    "entities.parquet": (write_entities_parquet, True),
    "periods.parquet": (write_periods_parquet, True),
}


def write_out_dir(report: Report, out: Path,
                  rejects: Iterable[tuple[str, int, str, str]] | None) -> list[Path]:
    """Replace `out` by a folder holding every report file of this run (and `rejects`
    when given), and manifest.json of them all; return their paths.

    Raises:
        OutputError: when a file cannot be written or `out` cannot be replaced; `out`
            is then left as it was.
    """
    with out_folder(out) as folder:
        for name, (write, binary) in REPORT_FILES.items():
            folder.write(name, functools.partial(write, report), binary=binary)
        if rejects is not None:
            folder.write("rejects", lambda stream: write_rejects(rejects, stream))
        written = [path.name for path in folder.paths]
        folder.write(MANIFEST, lambda stream: write_manifest(report, folder.folder, written,
                                                             stream))
    return folder.paths


# What --output prints of a report on stdout (text).
REPORT_OUTPUTS: dict[str, Callable[[Report, Any], None]] = {
    "table": lambda report, stream: stream.write(render_table(report)),
    "json": write_report_json,
    "csv": write_entities_csv,
}


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


def write_rows_table(table: pa.Table, stream: Any) -> None:
    """A query's result as a table for a terminal: names and values escaped, values
    cut to 80 characters, and the number of rows."""
    head = [for_terminal(name) for name in table.column_names]
    cells = [[for_terminal("" if v is None else str(v))[:80] for v in row]
             for row in _rows(table)]
    widths = [max([len(n), *(len(c[i]) for c in cells)]) for i, n in enumerate(head)]
    for line in [head, ["-" * w for w in widths], *cells]:
        stream.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True))
                     .rstrip() + "\n")
    stream.write(f"({len(cells):,} row{'s' if len(cells) != 1 else ''})\n")


def write_rows_csv(table: pa.Table, stream: Any) -> None:
    """A query's result as CSV, its cells neutralised for spreadsheets."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([for_csv(name) for name in table.column_names])
    writer.writerows([for_csv(v) for v in row] for row in _rows(table))


def write_rows_json(table: pa.Table, stream: Any) -> None:
    """A query's result as JSON lines, one object a row (ASCII; other values as text)."""
    for row in table.to_pylist():
        stream.write(json.dumps(row, default=str, ensure_ascii=True) + "\n")


# The forms of a query's result (sql --output); Parquet is written to a file only.
ROWS_OUTPUTS: dict[str, Writer] = {
    "table": (write_rows_table, False),
    "csv": (write_rows_csv, False),
    "json": (write_rows_json, False),
    "parquet": (lambda table, stream: pq.write_table(table, stream), True),
}
