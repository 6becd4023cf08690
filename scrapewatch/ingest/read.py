"""Load one log file into the `requests` and `rejects` tables, block by block.

Each block of lines goes through one DuckDB query: the format's parse, then the entity
and posts of every request. Every line ends up as a request or a reject, never neither.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from scrapewatch.config import Config
from scrapewatch.entities import entity_sql
from scrapewatch.errors import FormatError
from scrapewatch.ingest.formats import FORMATS, LogFormat, get_format, sniff_format
from scrapewatch.ingest.sources import LogSource
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


def load_file(con: duckdb.DuckDBPyConnection, source: LogSource, *, file_id: int,
              format_name: str, config: Config, progress: Progress | None = None) -> FileLoad:
    """Parse `source` into `requests` and `rejects` rows tagged with `file_id`.

    Raises:
        FormatError: when `format_name` is `auto` and no format fits the first lines.
        InputError: when the file is unreadable or its compression is corrupt.
    """
    blocks = source.blocks()
    first = next(blocks, None)
    if first is None:
        return FileLoad(None, 0, 0, 0, source.sha256())
    fmt = _choose_format(source, first, format_name)
    params = Params()
    parse = _load_sql(fmt, config, params)
    lines = requests = rejected = 0
    for block in itertools.chain([first], blocks):
        count = len(block)
        numbers = pa.array(np.arange(lines + 1, lines + count + 1, dtype=np.int64))
        table = pa.table({"line_no": numbers, "line": block})
        # several record batches, so that DuckDB parses them on every core
        con.register("block", pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS)))
        run(con, parse, params.values)
        requests += run(con, _INSERT_REQUESTS, {"file_id": file_id})[0][0]
        rejected += run(con, _INSERT_REJECTS, {"file_id": file_id})[0][0]
        con.unregister("block")
        lines += count
        if progress:
            progress(source.bytes_read, lines)
    return FileLoad(fmt.name, lines, requests, rejected, source.sha256())


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
    SELECT line_no, ts, status, {kind} AS entity_kind, {entity} AS entity,
           {posts} AS posts, posts IS NOT NULL AS observed,
           {counted} AND ts >= {effective} AS counted,
           coalesce(reject_reason, CASE WHEN {entity} IS NULL
                    THEN 'no entity: api_key, user and client address are all empty' END)
               AS reject_reason,
           line
    FROM ({fmt.parse_sql(config.input, params)})
    """


# insert_requests: parsed rows without a reject reason -> requests (whole UTC seconds).
_INSERT_REQUESTS = """
INSERT INTO requests
SELECT $file_id, line_no, epoch_us(ts) // 1000000, entity_kind, entity, status, posts,
       observed, counted
FROM parsed WHERE reject_reason IS NULL
"""

# insert_rejects: the other parsed rows -> rejects, the line cut to a readable length.
_INSERT_REJECTS = f"""
INSERT INTO rejects
SELECT $file_id, line_no, reject_reason, left(rtrim(line, chr(13) || chr(10)), {REJECT_TEXT_CHARS})
FROM parsed WHERE reject_reason IS NOT NULL
"""
