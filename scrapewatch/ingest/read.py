"""Load one log file into `activity_parts` and `rejects`, block by block.

A background thread reads and cuts the next block while DuckDB works on the current
one. Each block goes through one DuckDB query: the format's parse, then the entity,
posts and counting of every request. Every line ends up as a request or a reject,
never neither.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from scrapewatch.config import Config
from scrapewatch.entities import entity_sql
from scrapewatch.errors import FormatError
from scrapewatch.ingest.formats import FORMATS, LogFormat, get_format, sniff_format
from scrapewatch.ingest.sources import LogSource, prefetch
from scrapewatch.posts import counted_sql, posts_sql
from scrapewatch.schema import REJECT_TEXT_CHARS
from scrapewatch.sql import Params, run

SNIFF_LINES = 50
BATCH_ROWS = 16_384

Progress = Callable[[int, int], None]  # (raw bytes read so far in this file, lines so far)


@dataclass(frozen=True)
class FileLoad:
    """What loading one file found."""

    format: str | None  # None for an empty file
    lines: int
    requests: int
    rejected: int
    sha256: str
    first_request: int | None  # epoch seconds
    last_request: int | None


def load_file(con: duckdb.DuckDBPyConnection, source: LogSource, *, file_id: int,
              format_name: str, config: Config, progress: Progress | None = None,
              keep_requests: bool = False) -> FileLoad:
    """Parse `source` into `activity_parts` and `rejects` rows tagged with `file_id`.

    With `keep_requests`, every request is also kept in `requests` with its line number.

    Raises:
        FormatError: when `format_name` is `auto` and no format fits the first lines.
        InputError: when the file is unreadable or its compression is corrupt.
    """
    blocks = prefetch(_numbered_blocks(source))
    first = next(blocks, None)
    if first is None:
        return FileLoad(None, 0, 0, 0, source.sha256(), None, None)
    fmt = _choose_format(source, first.column("line"), format_name)
    params = Params()
    parse = _load_sql(fmt, config, params)
    totals = _Totals()
    for table in itertools.chain([first], blocks):
        _load_block(con, table, parse, params, file_id=file_id, keep_requests=keep_requests,
                    totals=totals)
        if progress:
            progress(source.bytes_read, totals.lines)
    return FileLoad(fmt.name, totals.lines, totals.lines - totals.rejected, totals.rejected,
                    source.sha256(), totals.first_request, totals.last_request)


@dataclass
class _Totals:
    """Running counts over a file's blocks."""

    lines: int = 0
    rejected: int = 0
    first_request: int | None = None
    last_request: int | None = None


def _numbered_blocks(source: LogSource) -> Iterator[pa.Table]:
    """The file's lines as tables (line_no, line), in record batches DuckDB can share
    out to its threads."""
    lines = 0
    for block in source.blocks():
        numbers = pa.array(np.arange(lines + 1, lines + len(block) + 1, dtype=np.int64))
        lines += len(block)
        table = pa.table({"line_no": numbers, "line": block})
        yield pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS))


def _load_block(con: duckdb.DuckDBPyConnection, table: pa.Table, parse: str, params: Params, *,
                file_id: int, keep_requests: bool, totals: _Totals) -> None:
    """Parse one block and add it to activity_parts, rejects (and requests)."""
    con.register("block", table)
    try:
        run(con, parse, params.values)
    finally:
        con.unregister("block")
    run(con, _INSERT_ACTIVITY)
    if keep_requests:
        run(con, _INSERT_REQUESTS, {"file_id": file_id})
    totals.rejected += run(con, _INSERT_REJECTS, {"file_id": file_id})[0][0]
    low, high = run(con, "SELECT min(sec), max(sec) FROM parsed WHERE reject_reason IS NULL")[0]
    if low is not None:
        totals.first_request = min(low, totals.first_request or low)
        totals.last_request = max(high, totals.last_request or high)
    totals.lines += table.num_rows


def _choose_format(source: LogSource, first: pa.StringArray, name: str) -> LogFormat:
    if name != "auto":
        return get_format(name)
    fmt = sniff_format(first.slice(0, SNIFF_LINES).to_pylist())
    if fmt is None:
        raise FormatError(f"{source.path}: not a log format scrapewatch knows (tried "
                          f"{', '.join(FORMATS)}); give --format if it is one of them")
    return fmt


def _load_sql(fmt: LogFormat, config: Config, params: Params) -> str:
    """Parse a block and decide each request's entity, posts and whether it counts."""
    kind, entity = entity_sql(config.entity, params)
    posts = posts_sql(config.posts.rules, config.posts.default, params)
    counted = counted_sql(config.policy.count_statuses, params)
    effective = params.bind(config.policy.effective_from)
    return f"""
    -- load_block: block(line_no, line) -> temp table parsed, one row per line.
    CREATE OR REPLACE TEMP TABLE parsed AS
    SELECT * EXCLUDE (raw_line),
           CASE WHEN reject_reason IS NOT NULL THEN raw_line END AS line  -- rejects only
    FROM (
        SELECT line_no, epoch_us(ts) // 1000000 AS sec, status, {kind} AS entity_kind,
               {entity} AS entity,
               {posts} AS posts, posts IS NOT NULL AS observed,
               {counted} AND ts >= {effective} AS counted,
               coalesce(reject_reason, CASE WHEN {entity} IS NULL
                        THEN 'no entity: api_key, user and client address are all empty' END)
                   AS reject_reason,
               line AS raw_line
        FROM ({fmt.parse_sql(config.input, params)}))
    """


# insert_activity: counted requests of the block -> posts and requests per (entity, second).
_INSERT_ACTIVITY = """
INSERT INTO activity_parts
SELECT entity_kind, entity, sec, sum(posts), count(*),
       sum(CASE WHEN observed THEN posts ELSE 0 END)
FROM parsed WHERE reject_reason IS NULL AND counted
GROUP BY entity_kind, entity, sec
"""

# insert_requests: parsed rows without a reject reason -> requests (whole UTC seconds).
_INSERT_REQUESTS = """
INSERT INTO requests
SELECT $file_id, line_no, sec, entity_kind, entity, status, posts, observed, counted
FROM parsed WHERE reject_reason IS NULL
"""

# insert_rejects: the other parsed rows -> rejects, the line cut to a readable length.
_INSERT_REJECTS = f"""
INSERT INTO rejects
SELECT $file_id, line_no, reject_reason, left(rtrim(line, chr(13) || chr(10)), {REJECT_TEXT_CHARS})
FROM parsed WHERE reject_reason IS NOT NULL
"""
