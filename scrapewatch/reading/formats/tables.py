"""Formats whose header names the columns: CSV, TSV and Parquet.

Columns are matched to request fields by the `[input.fields]` mapping, else by the
common names JSON lines use (`jsonl.ALIASES`), in any letter case. CSV and TSV take
their header from the first non-blank line; a record must sit on one line (values may
be quoted, "" for a quote inside); the native extension splits the plain records
(native.split_tables), the SQL the rest. Parquet is read by Arrow in row batches, only
the columns a field needs; its row numbers stand for line numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scrapewatch.config import InputConfig
from scrapewatch.reading.formats import native
from scrapewatch.reading.formats.base import (
    Cut,
    Cutter,
    Pieces,
    blank_sql,
    requests_sql,
    unread_sql,
)
from scrapewatch.reading.formats.jsonl import ALIASES, block_sql
from scrapewatch.schema import BLANK_LINE
from scrapewatch.sql import Params

PARQUET_MAGIC = b"PAR1"
PARQUET_BATCH_ROWS = 131_072
CSV_EXAMPLE = ("timestamp,client_ip,api_key,path,query,status\n"
               "2024-11-15T10:00:00Z,203.0.113.7,k-1,/2/tweets/search/recent,max_results=100,200")
TSV_EXAMPLE = CSV_EXAMPLE.replace(",", "\t")
PARQUET_EXAMPLE = "columns such as timestamp, client_ip, api_key, path, query, status, posts"


def columns_for(names: list[str], config: InputConfig) -> dict[str, str]:
    """Request field -> the column that holds it, of the given column names."""
    by_lower: dict[str, str] = {}
    for name in names:
        by_lower.setdefault(name.lower(), name)
    found = {}
    for field, aliases in ALIASES.items():
        wanted = (config.fields[field],) if field in config.fields else aliases
        for alias in wanted:
            if alias.lower() in by_lower:
                found[field] = by_lower[alias.lower()]
                break
    return found


def _token_regex(delimiter: str) -> str:
    """A value after its delimiter (one is put before the first): a quoted part, in
    which delimiters are text ("" for a quote), then the rest up to the next delimiter."""
    return f'{delimiter}((?:"(?:[^"]|"")*")?[^{delimiter}]*)'


def _unquoted(value: str) -> str:
    """A value without the quotes around it, "" read as one quote."""
    if len(value) > 1 and value.startswith('"') and value.endswith('"'):
        return value[1:-1].replace('""', '"')
    return value


def _header(line: str, delimiter: str) -> list[str]:
    """The column names of a header line, split as delimited_sql splits the records
    (any text splits: no line makes this raise)."""
    text = line.rstrip("\r\n")
    if '"' not in text:
        return text.split(delimiter)
    return [_unquoted(v) for v in re.findall(_token_regex(delimiter), delimiter + text)]


def _sniff(lines: list[str], delimiter: str) -> float:
    """1 when the first line is a header naming a time column and an entity column."""
    names = _header(lines[0], delimiter)
    found = columns_for(names, InputConfig())
    return float(len(names) > 1 and "ts" in found
                 and bool({"client_ip", "user", "api_key"} & set(found)))


def sniff_csv(lines: list[str]) -> float:
    """1 for a comma-separated header naming a time and an entity column."""
    return _sniff(lines, ",")


def sniff_tsv(lines: list[str]) -> float:
    """1 for a tab-separated header naming a time and an entity column."""
    return _sniff(lines, "\t")


def parse_sql(config: InputConfig, params: Params) -> str:
    """The per-line query: only for the blank lines before the header."""
    del config
    return unread_sql("no header line before this line", params)


def csv_cutter(config: InputConfig) -> Cutter:
    """A CSV file's block reader, which keeps the header from block to block."""
    return _Header(",", config).cut


def tsv_cutter(config: InputConfig) -> Cutter:
    """A TSV file's block reader, which keeps the header from block to block."""
    return _Header("\t", config).cut


class _Header:
    """The header line, once read."""

    def __init__(self, delimiter: str, config: InputConfig) -> None:
        self.delimiter, self.config = delimiter, config
        self.names: list[str] | None = None

    def cut(self, lines: pa.StringArray, first_line: int) -> Cut:
        """The block's records as one table; the header (a directive) and blank lines
        before it to the per-line query."""
        start, directives = 0, 0
        if self.names is None:
            filled = np.flatnonzero(pc.not_equal(pc.utf8_trim_whitespace(lines), "")
                                    .to_numpy(zero_copy_only=False))
            if not filled.size:
                return Cut([], np.arange(len(lines)))
            self.names = _header(lines[int(filled[0])].as_py(), self.delimiter)
            start, directives = int(filled[0]) + 1, 1
        table = pa.table({"line_no": pa.array(np.arange(first_line + start,
                                                        first_line + len(lines))),
                          "line": lines.slice(start)})
        metadata = {"names": json.dumps(self.names), "delimiter": self.delimiter}
        # the values fields are read from, split natively where the extension is built
        wanted = sorted({self.names.index(column)
                         for column in columns_for(self.names, self.config).values()})
        tables = native.split_tables(table.replace_schema_metadata(metadata), self.delimiter,
                                     quoting=True, expected=len(self.names), wanted=wanted)
        return Cut(tables, np.arange(0, max(start - directives, 0)), directives)


def delimited_sql(schema: pa.Schema, config: InputConfig, params: Params) -> str:
    """The parse query over `plain`: records under one header (schema metadata)."""
    names = json.loads(schema.metadata[b"names"])
    delimiter = schema.metadata[b"delimiter"].decode()
    split = b"split" in schema.metadata  # split natively: v<n> columns, each line plain
    f = dict.fromkeys(ALIASES, "NULL::VARCHAR")
    for field, column in columns_for(names, config).items():
        v = f"v{names.index(column) + 1}" if split else f"v[{names.index(column) + 1}]"
        v = (f"CASE WHEN starts_with({v}, '\"') AND ends_with({v}, '\"') AND strlen({v}) > 1 "
             f"THEN replace({v}[2:-2], '\"\"', '\"') ELSE {v} END")
        f[field] = f"nullif(nullif({v}, ''), '-')"
    if split:
        return requests_sql("SELECT * FROM plain", f, "NULL::VARCHAR", params)
    unparsed = f"""CASE WHEN {blank_sql('line', params)} THEN {params.bind(BLANK_LINE)}
                        WHEN len(v) <> {len(names)}
                            THEN len(v) || ' fields; the header has {len(names)}' END"""
    text = f"rtrim(line, {params.bind(chr(13) + chr(10))})"
    token = params.bind(_token_regex(delimiter))
    tokens = (f"CASE WHEN contains(line, '\"') "
              f"THEN regexp_extract_all({params.bind(delimiter)} || {text}, {token}, 1) "
              f"ELSE string_split({text}, {params.bind(delimiter)}) END")
    return requests_sql(f"SELECT line_no, line, {tokens} AS v FROM plain", f, unparsed, params)


def parquet_batches(path: Path, config: InputConfig) -> Pieces:
    """A Parquet file as `plain` tables of row batches, only the columns fields need,
    renamed c0, c1, ... as `jsonl.block_sql` reads them."""
    file = pq.ParquetFile(path)
    found = columns_for(file.schema_arrow.names, config)
    # block_sql knows a column by the name a field is read under: its alias or mapping
    keys = [config.fields.get(field) or next(a for a in ALIASES[field]
                                             if a.lower() == column.lower())
            for field, column in found.items()]
    first = 1
    for batch in file.iter_batches(batch_size=PARQUET_BATCH_ROWS,
                                   columns=list(dict.fromkeys(found.values()))):
        numbers = pa.array(np.arange(first, first + batch.num_rows))
        table = pa.table({"line_no": numbers, "line": pa.nulls(batch.num_rows, pa.string()),
                          **{f"c{i}": batch.column(column)
                             for i, column in enumerate(found.values())}})
        first += batch.num_rows
        yield [("plain", table.replace_schema_metadata({"keys": json.dumps(keys)}), None)], 0


parquet_sql = block_sql
