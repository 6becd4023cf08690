"""Load one log file into `activity_parts` and `rejects`, block by block.

A background thread reads and cuts the next block while DuckDB works on the current
one. Each block goes through one DuckDB query: the format's parse, then the entity,
posts and counting of every request. Every line ends up as a request or a reject,
never neither.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from queue import SimpleQueue

import duckdb
import numpy as np
import pyarrow as pa

from scrapewatch.config import Config
from scrapewatch.entities import client_ip_sql, entity_sql
from scrapewatch.errors import UnknownFormatError
from scrapewatch.posts import counted_sql, posts_sql
from scrapewatch.reading.formats import FORMATS, LogFormat
from scrapewatch.reading.formats.base import Part, Pieces
from scrapewatch.reading.loaded import UNREAD, Advance, Counts, FileLoad, LoadedFile, Progress
from scrapewatch.reading.sniff import choose_format
from scrapewatch.reading.sources import LogSource, prefetch
from scrapewatch.schema import BLANK_LINE, PARTS_OF_REQUESTS_SQL, REJECT_TEXT_CHARS
from scrapewatch.sql import Params, cursor, insert_arrow, run

# Requests must fall in these years, which every report format can write (no year 0 or
# 10000); a log time outside them is a parse error, not a request.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
BATCH_ROWS = 16_384
LOADERS = 2  # blocks DuckDB loads at once, one thread each (see _Loaders)
_COSTLY_COMPRESSION = "fsst,zstd"  # not while loading (see _Loaders)

def load_path(con: duckdb.DuckDBPyConnection, path: Path, *, file_id: int, config: Config,
              name: str | None = None, progress: Progress | None = None, count: int = 1,
              keep_requests: bool = False) -> LoadedFile:
    """Open the file at `path` (named `name` in the report, `path` itself by default) and
    `load_file` it whole, telling `progress` (file `file_id` of `count`). The one parse
    of a scan, on every engine. A file no format fits is not read but `skipped`, unless
    `input.strict`."""
    with LogSource.open(path) as source:
        if progress:
            progress.start_file(path, source.size, file_id, count)
        try:
            loaded = load_file(con, source, file_id=file_id, format_name=config.input.format,
                               config=config, progress=progress.advance if progress else None,
                               keep_requests=keep_requests)
        except UnknownFormatError as error:
            if config.input.strict:
                raise
            return LoadedFile(name or str(path), source.size, UNREAD, "", error.reason)
    content = loaded.sha256 if source.compression == "none" else loaded.content_sha256
    return LoadedFile(name or str(path), source.size, loaded, content)


def load_file(con: duckdb.DuckDBPyConnection, source: LogSource, *, file_id: int,
              format_name: str, config: Config, progress: Advance | None = None,
              keep_requests: bool = False, first_line: int = 1, skip: int = 0,
              limit: int | None = None) -> FileLoad:
    """Parse `source` into `activity_parts` and `rejects` rows tagged with `file_id`.

    With `keep_requests`, every request is also kept in `requests` with its line number.
    `skip` and `limit` (content bytes, see `LogSource.blocks`) read part of a file, whose
    first line is then line `first_line`: what a store adds of a grown file.

    Raises:
        FormatError: when `format_name` is `auto` and no format fits the first lines.
        InputError: when the file is unreadable or its compression is corrupt.
    """
    pieces: Pieces
    binary = next((f for f in FORMATS.values() if f.magic and source.magic == f.magic), None)
    with contextlib.ExitStack() as stack:
        if binary is not None and binary.batches and format_name in ("auto", binary.name):
            fmt, pieces = binary, binary.batches(source.path, config.input)
        else:
            blocks = source.blocks(skip=skip, limit=limit)
            first = next(blocks, None)
            if first is None:
                return FileLoad(None, 0, 0, 0, source.sha256(), None, None,
                                source.content_sha256(), source.content_bytes)
            fmt = choose_format(source, first, format_name)
            # a format with a header reads it again from the part before `skip`
            before: Iterable[pa.StringArray] = (
                stack.enter_context(LogSource.open(source.path, hashing=False)).blocks(limit=skip)
                if skip and fmt.header else ())
            pieces = prepared_blocks(fmt, itertools.chain([first], blocks), config, first_line,
                                     before)
        queries = _Queries(fmt, config)
        totals = _Totals()

        def load_block(cursor: duckdb.DuckDBPyConnection, parts: list[Part],
                       directives: int, read_to: int) -> _Totals:
            block = _Totals(lines=directives, skipped=directives, read_to=read_to)
            for part in parts:
                _load_part(cursor, part, queries.get(part[0], part[1].schema),
                           file_id=file_id, keep_requests=keep_requests, totals=block)
            return block

        def loaded(block: _Totals) -> None:
            totals.add(block)
            if progress:
                progress(totals.read_to, totals.lines, fmt.name)

        # each block with where the read of the file was when it was cut (on the reader
        # thread): the progress of the parse, not of the read ahead of it
        ends = ((parts, directives, source.bytes_read) for parts, directives in pieces)
        with _Loaders(con, loaded) as loaders:
            for parts, directives, read_to in prefetch(ends):
                loaders.submit(functools.partial(load_block, parts=parts, directives=directives,
                                                 read_to=read_to))
        if source.marks:
            numbers = np.concatenate([lines for lines, _ in source.marks]) + first_line
            insert_arrow(con, "line_offsets", pa.table({
                "file_id": np.full(len(numbers), file_id, np.int32), "line_no": numbers,
                "offset": np.concatenate([offsets for _, offsets in source.marks])}))
    content = source.content_sha256(), source.content_bytes  # before sha256() drains the file
    return FileLoad(fmt.name, totals.lines, totals.lines - totals.rejected - totals.skipped,
                    totals.rejected, source.sha256(), totals.first_request, totals.last_request,
                    *content, totals.counts)


@dataclass
class _Totals:
    """Running counts over a file's blocks."""

    lines: int = 0
    rejected: int = 0
    skipped: int = 0  # blank lines and format directives: neither requests nor rejects
    first_request: int | None = None
    last_request: int | None = None
    read_to: int = 0  # the bytes of the file read when the last block counted was cut
    counts: Counts = field(default_factory=Counts)

    def add(self, other: _Totals) -> None:
        """Count `other`'s lines too."""
        self.read_to = max(self.read_to, other.read_to)
        self.counts += other.counts
        self.lines += other.lines
        self.rejected += other.rejected
        self.skipped += other.skipped
        if other.first_request is None or other.last_request is None:
            return
        if self.first_request is None or self.last_request is None:
            self.first_request, self.last_request = other.first_request, other.last_request
        else:
            self.first_request = min(self.first_request, other.first_request)
            self.last_request = max(self.last_request, other.last_request)


class _Loaders:
    """LOADERS DuckDB cursors that load blocks side by side, one DuckDB thread each.

    A block is too small for DuckDB's threads to share well (it is slower on two than
    on one, here), so the cores load different blocks instead. Each cursor has its own
    temp tables (`parsed`) and registered tables; their rows all go to the same
    tables. `done` gets each block's counts, in the order the blocks were given.

    While loading, the compressed tables (see engine.duckdb.connect) use only the methods
    that cost little to choose and apply (bit packing, RLE, the dictionary the work
    tables ask for...): FSST and ZSTD, tried on every string column, made a 10M-line
    load 40 % slower. Both settings are the database's: they are put back on leaving.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection,
                 done: Callable[[_Totals], None]) -> None:
        self.con, self.done = con, done
        self.pool = ThreadPoolExecutor(LOADERS, thread_name_prefix="scrapewatch-loader")
        self.cursors: SimpleQueue[duckdb.DuckDBPyConnection] = SimpleQueue()
        self.pending: deque[Future[_Totals]] = deque()

    def __enter__(self) -> _Loaders:
        self.settings = run(self.con, "SELECT current_setting('threads'), "
                                      "current_setting('disabled_compression_methods')")[0]
        run(self.con, "SET threads = 1")
        run(self.con, f"SET disabled_compression_methods = '{_COSTLY_COMPRESSION}'")
        for _ in range(LOADERS):
            self.cursors.put(cursor(self.con))
        return self

    def submit(self, work: Callable[[duckdb.DuckDBPyConnection], _Totals]) -> None:
        """Run `work` on a free cursor, once fewer than LOADERS blocks are in hand."""
        while len(self.pending) >= LOADERS:
            self.done(self.pending.popleft().result())

        def on_a_cursor() -> _Totals:
            free = self.cursors.get()
            try:
                return work(free)
            finally:
                self.cursors.put(free)

        self.pending.append(self.pool.submit(on_a_cursor))

    def __exit__(self, kind: object, *exc: object) -> None:
        try:
            while kind is None and self.pending:
                self.done(self.pending.popleft().result())
        finally:
            # after an error, the blocks being loaded end and the others never start
            self.pool.shutdown(cancel_futures=True)
            while not self.cursors.empty():
                self.cursors.get().close()
            threads, methods = self.settings
            run(self.con, f"SET threads = {int(threads)}")
            run(self.con, "SET disabled_compression_methods = $m", {"m": methods})


class _Queries:
    """A format's load queries (parse, then entity, posts, counting), built once each:
    one over `block` lines, and one per schema of the `plain` tables its cutter makes."""

    def __init__(self, fmt: LogFormat, config: Config) -> None:
        self.fmt, self.config = fmt, config
        self.built: dict[object, tuple[str, dict[str, object]]] = {}

    def get(self, relation: str, schema: pa.Schema) -> tuple[str, dict[str, object]]:
        """The query text and its parameters for `relation` with this `schema`."""
        # the schema's metadata says which key each column holds: part of the key
        key = "block" if relation == "block" else (schema, tuple(sorted(
            (schema.metadata or {}).items())))
        if key not in self.built:
            params = Params()
            if relation == "block":
                parse = self.fmt.parse_sql(self.config.input, params)
            else:
                assert self.fmt.cut_sql is not None
                parse = self.fmt.cut_sql(schema, self.config.input, params)
            self.built[key] = (_load_sql(parse, self.config, params,
                                         by_pair="pair" in schema.names), params.values)
        return self.built[key]


def prepared_blocks(fmt: LogFormat, blocks: Iterator[pa.StringArray], config: Config,
                    first_line: int = 1, before: Iterable[pa.StringArray] = ()
                    ) -> Pieces:
    """Per block, the tables to load and the number of directive lines: what the
    format's cutter read as `plain` tables, and the other lines as `block`; in record
    batches DuckDB shares out to its threads. Runs on the reader thread. The cutter
    first reads `before` (the part of a file loaded earlier) for its header only."""
    cut_block = fmt.cutter(config.input) if fmt.cutter else None
    for lines in before:
        if cut_block is not None:
            cut_block(lines, 0)
    for lines in blocks:
        parts: list[Part] = []
        rest, directives = None, 0
        if cut_block is not None and (cut := cut_block(lines, first_line)):
            parts.extend(("plain", table, cut.pairs) for table in cut.tables if table.num_rows)
            rest, directives = cut.rest, cut.directives
        numbers = np.arange(first_line, first_line + len(lines), dtype=np.int64)
        if rest is None:
            parts.append(("block", pa.table({"line_no": numbers, "line": lines}), None))
        elif len(rest):
            parts.append(("block", pa.table({"line_no": numbers[rest],
                                             "line": lines.take(rest)}), None))
        first_line += len(lines)
        yield ([(name, pa.Table.from_batches(t.to_batches(max_chunksize=BATCH_ROWS), t.schema),
                 pairs) for name, t, pairs in parts], directives)


def _load_part(con: duckdb.DuckDBPyConnection, part: Part,
               query: tuple[str, dict[str, object]], *, file_id: int, keep_requests: bool,
               totals: _Totals) -> None:
    """Parse one table of a block and add it to activity_parts, rejects (and requests)."""
    relation, table, pairs = part
    totals.lines += table.num_rows
    con.register(relation, table)
    if pairs is not None:
        con.register("pairs", pairs)
    try:
        run(con, *query)
    finally:
        con.unregister(relation)
        if pairs is not None:
            con.unregister("pairs")
    run(con, _INSERT_ACTIVITY, {"file_id": file_id})
    run(con, _INSERT_HOURS, {"file_id": file_id})
    if keep_requests:
        run(con, _INSERT_REQUESTS, {"file_id": file_id})
    rejected, blank, low, high, *counts = run(con, _BLOCK_SUMMARY)[0]
    totals.skipped += blank
    if rejected:
        run(con, _INSERT_REJECTS, {"file_id": file_id})
    totals.add(_Totals(rejected=rejected, first_request=low, last_request=high,
                       counts=Counts(*map(int, counts))))


def _load_sql(parse: str, config: Config, params: Params, *, by_pair: bool = False) -> str:
    """Run `parse` and decide each request's entity, posts and whether it counts.

    `by_pair`: `parse` gives each request's `pair`, which numbers its (path, query) in
    the table `pairs` (see Cut.pairs). The posts a rule gives are then worked out once
    per pair, not once per request (the regexes were most of a block's load: 38 to 21
    ms a block of 82,000 API requests with 3,000 pairs), and looked up by number.
    """
    kind, entity = entity_sql(config.entity, params)
    client = client_ip_sql(config.entity, params)
    if client is not None:  # the client behind trusted proxies replaces the peer
        parse = f"SELECT * REPLACE ({client} AS client_ip) FROM ({parse})"
    rule, posts = posts_sql(config.posts.rules, config.posts.default, params)
    if by_pair:
        estimates = f"""
            SELECT list(estimate ORDER BY n) AS sw_estimates,
                   list(rule IS NOT NULL ORDER BY n) AS sw_ruled
            FROM (SELECT n, {posts} AS estimate, rule
                  FROM (SELECT n, path, query, NULL::BIGINT AS posts, {rule} AS rule
                        FROM pairs))"""
        parse = f"SELECT * FROM ({parse}) CROSS JOIN ({estimates})"
        rule, posts = "NULL", "coalesce(posts, sw_estimates[pair + 1])"
        ruled = "posts IS NOT NULL OR sw_ruled[pair + 1]"
    else:
        ruled = "posts IS NOT NULL OR rule IS NOT NULL"
    counted = counted_sql(config.policy.count_statuses, params)
    effective = params.bind(config.policy.effective_from)
    first, last = params.bind(EARLIEST), params.bind(LATEST)
    return f"""
    -- load_block: block(line_no, line) -> temp table parsed, one row per line.
    CREATE OR REPLACE TEMP TABLE parsed AS
    SELECT * EXCLUDE (raw_line),
           CASE WHEN reject_reason IS NOT NULL THEN raw_line END AS line  -- rejects only
    FROM (
        SELECT line_no, sec, status, entity_kind, entity, {posts} AS posts,
               posts IS NOT NULL AS observed, {counted} AND ts >= {effective} AS counted,
               coalesce(ts < {effective}, false) AS early, {ruled} AS ruled,
               coalesce(reject_reason,
                        CASE WHEN NOT ts BETWEEN {first} AND {last}
                                 THEN 'time out of range ' || strftime(ts, '%Y-%m-%dT%H:%M:%SZ')
                             WHEN entity IS NULL
                                 THEN 'no entity: api_key, user and client address are all empty'
                        END) AS reject_reason,
               line AS raw_line
        FROM (SELECT *, epoch_us(ts) // 1000000 AS sec, {kind} AS entity_kind,
                     {entity} AS entity,
                     -- a logged posts field wins: no rule's regexes for that request
                     CASE WHEN posts IS NULL THEN {rule} END AS rule
              FROM ({parse})))
    """


# insert_activity: counted requests of the block -> posts and requests per (entity, second).
_INSERT_ACTIVITY = "INSERT INTO activity_parts " + PARTS_OF_REQUESTS_SQL.format(
    requests="(SELECT *, $file_id AS file_id FROM parsed)")

# insert_hours: counted requests of the block -> requests and posts per hour.
_INSERT_HOURS = """
INSERT INTO activity_hours
SELECT $file_id, sec // 3600, count(*), sum(posts)
FROM parsed WHERE reject_reason IS NULL AND counted
GROUP BY sec // 3600
"""

# insert_requests: parsed rows without a reject reason -> requests (whole UTC seconds).
_INSERT_REQUESTS = """
INSERT INTO requests
SELECT $file_id, line_no, sec, entity_kind, entity, status, posts, observed, counted
FROM parsed WHERE reject_reason IS NULL
"""

# block_summary: parsed -> rejected and blank lines, the first and last request, and
# the Counts of the requests.
_BLOCK_SUMMARY = f"""
SELECT count(*) FILTER (WHERE reject_reason <> '{BLANK_LINE}'),
       count(*) FILTER (WHERE reject_reason = '{BLANK_LINE}'),
       min(sec) FILTER (WHERE reject_reason IS NULL),
       max(sec) FILTER (WHERE reject_reason IS NULL),
       count(*) FILTER (WHERE reject_reason IS NULL AND early),
       count(*) FILTER (WHERE reject_reason IS NULL AND NOT early AND NOT counted),
       coalesce(sum(posts) FILTER (WHERE reject_reason IS NULL AND counted), 0),
       count(*) FILTER (WHERE reject_reason IS NULL AND counted AND NOT ruled),
       count(*) FILTER (WHERE reject_reason IS NULL AND status BETWEEN 200 AND 299),
       count(*) FILTER (WHERE reject_reason IS NULL AND status BETWEEN 300 AND 399),
       count(*) FILTER (WHERE reject_reason IS NULL AND status BETWEEN 400 AND 499),
       count(*) FILTER (WHERE reject_reason IS NULL AND status BETWEEN 500 AND 599),
       count(*) FILTER (WHERE reject_reason IS NULL AND coalesce(status NOT BETWEEN 200 AND 599,
                                                           true))
FROM parsed
"""

# insert_rejects: the other parsed rows -> rejects, the line cut to a readable length.
_INSERT_REJECTS = f"""
INSERT INTO rejects
SELECT $file_id, line_no, reject_reason, left(rtrim(line, chr(13) || chr(10)), {REJECT_TEXT_CHARS})
FROM parsed WHERE reject_reason <> '{BLANK_LINE}'
"""
