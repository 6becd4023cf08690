"""The native extension (_linecut.c), run on the reader thread: a block's bytes cut
into lines (`line_offsets`); common, combined, vhost_combined, AWS ALB and classic ELB
lines of the plain shape parsed into Arrow arrays (`cutter`); CSV, TSV and CloudFront
lines split into their values (`split_tables`); and the values of flat JSON objects
(`json_values`). The other lines of a block go to the format's SQL, which is also what
reads every line where the extension was not built (no C compiler at install)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from scrapewatch.config import InputConfig
from scrapewatch.reading.formats.base import Cut, Cutter
from scrapewatch.sql import Params

try:  # built by `pip install .` where a C compiler is
    _linecut: Any = importlib.import_module("scrapewatch.reading.formats._linecut")
except ImportError:
    _linecut = None

# What _linecut.cut reads (its mode)
CLF, VHOST, ALB, ELB = range(4)
_MAX_JSON_KEYS = 128  # MAX_KEYS of _linecut.json_cut
_TEXT = ("client_ip", "user", "method", "path", "query", "referer", "user_agent", "xff")


def built() -> bool:
    """Whether the extension was built."""
    return _linecut is not None


def line_offsets(data: bytes | pa.Buffer) -> bytes | None:
    """The int32 offsets of the lines of `data` as an Arrow string array (see
    sources.lines_array); None where the extension was not built, or when `data` is not
    valid UTF-8."""
    return None if _linecut is None else _linecut.lines(data)


def cutter(mode: int) -> Callable[[InputConfig], Cutter | None]:
    """A format's cutter (see LogFormat.cutter) that reads lines of `mode` natively:
    the plain lines of a block, parsed, as one `plain` table (read by cut_sql)."""

    def make(config: InputConfig) -> Cutter | None:
        del config  # fixed fields: no mapping applies
        return None if _linecut is None else _cut_block(mode)

    return make


def _cut_block(mode: int) -> Cutter:
    """Reads a block's plain lines of `mode` into one `plain` table, with the distinct
    (path, query) pairs it numbers (Cut.pairs)."""

    def cut(lines: pa.StringArray, first_line: int) -> Cut:
        _, offsets, data = lines.buffers()
        count = len(lines)
        found = _linecut.cut(offsets.slice(lines.offset * 4, (count + 1) * 4), data, count,
                             mode)
        plain = np.frombuffer(found["plain"], dtype=np.bool_)
        columns = {
            "line_no": pa.array(np.arange(first_line, first_line + count, dtype=np.int64)),
            "ts": pa.Array.from_buffers(pa.timestamp("us", "UTC"), count,
                                        [None, pa.py_buffer(found["ts"])]),
            "status": pa.Array.from_buffers(pa.int16(), count,
                                            [None, pa.py_buffer(found["status"])]),
            "bytes": pa.Array.from_buffers(pa.int64(), count,
                                           [pa.py_buffer(b) for b in found["bytes"]]),
            **{name: pa.Array.from_buffers(pa.string(), count,
                                           [pa.py_buffer(b) for b in found[name]])
               for name in _TEXT},
            "line": lines,  # for a request the load rejects (no entity, say)
            "pair": pa.Array.from_buffers(pa.int32(), count, [None, pa.py_buffer(found["pair"])]),
        }
        table = pa.table(columns)
        first = np.frombuffer(found["pair_first"], dtype=np.int32)
        pairs = pa.table({"n": np.arange(len(first), dtype=np.int32),
                          "path": columns["path"].take(first),
                          "query": columns["query"].take(first)})
        if not plain.all():  # the others go to the format's parse_sql
            table = table.filter(pa.array(plain))
        return Cut([table] if len(table) else [], np.flatnonzero(~plain), pairs=pairs)

    return cut


def split(lines: pa.StringArray, delimiter: str, *, quoting: bool, expected: int,
          wanted: list[int]) -> tuple[np.ndarray, list[pa.StringArray]] | None:
    """The lines of a delimited format split natively (see _linecut.split), or None
    where the extension was not built: which lines are plain, and the values at the
    `wanted` positions (0-based, quotes kept) of those lines, NULL for the others."""
    if _linecut is None:
        return None
    _, offsets, data = lines.buffers()
    count = len(lines)
    found = _linecut.split(offsets.slice(lines.offset * 4, (count + 1) * 4), data, count,
                           delimiter, quoting, expected, np.array(wanted, np.int32).tobytes())
    values = [pa.Array.from_buffers(pa.string(), count, [pa.py_buffer(b) for b in buffers])
              for buffers in found["values"]]
    return np.frombuffer(found["plain"], dtype=np.bool_), values


def json_values(lines: pa.StringArray, keys: list[str], times: set[str]
                ) -> dict[str, pa.Array] | None:
    """Where every line is a flat JSON object of the plain shape (see _linecut.json_cut),
    the values of those of `keys` present in any line, as their JSON text less a
    string's quotes, NULL where absent or null; the keys in `times` as timestamps (µs,
    UTC) when every value of all of them is an ISO time of the plain shape. None where
    the extension was not built, some line is not plain, or there are more keys than it
    looks up."""
    if _linecut is None or len(keys) > _MAX_JSON_KEYS:
        return None
    _, offsets, data = lines.buffers()
    count = len(lines)
    found = _linecut.json_cut(offsets.slice(lines.offset * 4, (count + 1) * 4), data, count,
                              [key.encode() for key in keys], [key in times for key in keys])
    if found is None:
        return None
    values = {key.decode(): buffers for key, buffers in found.items()}
    typed = all(values[key][3] is not None for key in times if key in values)
    return {key: pa.Array.from_buffers(pa.timestamp("us"), count, [
                pa.py_buffer(valid), pa.py_buffer(micros)]) if typed and key in times else
            pa.Array.from_buffers(pa.string(), count, [
                pa.py_buffer(valid), pa.py_buffer(ends), pa.py_buffer(text)])
            for key, (valid, ends, text, micros) in values.items()}


def split_tables(table: pa.Table, delimiter: str, *, quoting: bool, expected: int,
                 wanted: list[int]) -> list[pa.Table]:
    """`table` (line_no, line) as the table of its plain lines, split, with a column
    `v<n>` for each wanted position n - 1 (as a format's SQL writes v[n]), and the
    table of the other lines as they were; both keep `table`'s schema metadata. As it
    was where the extension was not built."""
    cut = split(table["line"].combine_chunks(), delimiter, quoting=quoting,
                expected=expected, wanted=wanted)
    if cut is None:
        return [table]
    plain, values = cut
    names = [*table.column_names, *(f"v{position + 1}" for position in wanted)]
    metadata = {**(table.schema.metadata or {}), b"split": b"1"}
    tables = [pa.Table.from_arrays([*table.columns, *values], names=names)
              .filter(pa.array(plain)).replace_schema_metadata(metadata)]
    if not plain.all():
        tables.append(table.filter(pa.array(~plain)))
    return [t for t in tables if t.num_rows]


def cut_sql(schema: pa.Schema, config: InputConfig, params: Params) -> str:
    """The parse query over the native cutter's `plain` table: its plain lines, parsed."""
    del schema, config, params
    return """
    -- parse_native: plain(parsed fields) -> parsed requests, one row per line
    SELECT line_no, NULL::VARCHAR AS reject_reason, ts, client_ip, "user",
           NULL::VARCHAR AS api_key, method, path, query, status, bytes, referer,
           user_agent, NULL::BIGINT AS posts, xff, line, pair
    FROM plain
    """
