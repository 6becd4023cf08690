"""What a Spark scan runs on the executors: each task loads a local file, a range of
one, or a file Spark read from a URI, with the DuckDB engine's load (reading/read.py)
on a DuckDB connection of the task's own, and sends back what it found (see LOADED).
The driver plans the tasks (`load_tasks`) and puts a file's load together again from
its tasks' rows (`loaded_file`).
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import TaskContext

from scrapewatch.config import Config
from scrapewatch.engine.duckdb import BATCH_ROWS, connect
from scrapewatch.errors import InputError, ScrapewatchError
from scrapewatch.reading.formats import FORMATS
from scrapewatch.reading.loaded import Counts, FileLoad, LoadedFile
from scrapewatch.reading.read import load_file, load_path
from scrapewatch.reading.sniff import choose_format
from scrapewatch.reading.sources import BLOCK_BYTES, LogSource
from scrapewatch.sql import run

# What a load task sends back, a kind of row each (the other columns null):
# - an entity's posts and requests in a file (entity_kind, entity, file_id, total_posts,
#   total_requests), from which Spark finds the few entities that can reach the watch
#   level (SparkEngine.keep_files), and the entities with the most posts;
# - in `parts`, a batch of the activity parts (PARTS) of a file (file_id) or of its
#   range from byte `start`, as a compressed Arrow IPC stream, which Spark carries
#   unread and keeps on the cluster until `unpack` keeps those entities' parts: a row
#   of Spark's per batch, not per entity and second;
# - in `extra`, an Arrow IPC stream of a batch of one of its other tables, which come
#   to the driver: a file's load (or why it could not be read), its rejects or its line
#   offsets, the table named in the stream's metadata (with file_id and start).
PARTS = pa.schema([  # schema.activity_parts
    ("entity_kind", pa.string()), ("entity", pa.string()), ("sec", pa.int64()),
    ("posts", pa.int64()), ("requests", pa.int64()), ("observed_posts", pa.int64()),
    ("file_id", pa.int32()), ("first_line", pa.int64()), ("last_line", pa.int64())])
LOADED = pa.schema([
    ("entity_kind", pa.string()), ("entity", pa.string()), ("file_id", pa.int32()),
    ("total_posts", pa.int64()), ("total_requests", pa.int64()), ("start", pa.int64()),
    ("parts", pa.binary()), ("extra", pa.binary())])
_COUNTS = [f.name for f in fields(Counts)]
_FILE = pa.schema([  # a file's load, or a range's, or why it could not be read
    ("file_id", pa.int32()), ("start", pa.int64()), ("path", pa.string()), ("size", pa.int64()),
    ("format", pa.string()), ("lines", pa.int64()), ("requests", pa.int64()),
    ("rejected", pa.int64()), ("sha256", pa.string()), ("first_request", pa.int64()),
    ("last_request", pa.int64()), ("read_sha256", pa.string()), ("read_bytes", pa.int64()),
    ("content_sha256", pa.string()), ("skipped", pa.string()), ("error_kind", pa.string()),
    ("error", pa.string()), *((name, pa.int64()) for name in _COUNTS)])
_EXTRA_TABLES = ("rejects", "line_offsets", "activity_hours")  # besides the files' loads
_TOTALS_SQL = """
SELECT entity_kind, entity, file_id, CAST(sum(posts) AS BIGINT) AS total_posts,
       CAST(sum(requests) AS BIGINT) AS total_requests
FROM activity_parts
GROUP BY entity_kind, entity, file_id
"""
# zstd: parts compress to a sixth (a third with lz4), in about the time lz4 takes
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")

# A plain text file past twice this size loads in ranges, one task each: as many as
# the cluster has cores, none smaller than this.
SPLIT_BYTES = 128 << 20


@dataclass(frozen=True)
class _Task:
    """A local file to load in one task: whole, or the lines of its content bytes
    [start, end), numbered from 1 (see `line_shifts`), in the format sniffed for all
    its ranges."""

    file_id: int
    path: str
    start: int = 0
    end: int | None = None
    format: str = ""


@dataclass
class _Split:
    """A file loaded in ranges: its size and SHA-256 (hashed on the driver meanwhile)."""

    size: int
    sha256: Future[str]


def load_tasks(paths: list[str], config: Config, cores: int
               ) -> tuple[list[_Task], dict[int, _Split]]:
    """The tasks that load the local files `paths` (file_id: their position) on a
    cluster of `cores` cores, and the files loaded in ranges (see `_ranges`)."""
    tasks, splits = [], {}
    hashing = ThreadPoolExecutor(1, thread_name_prefix="scrapewatch-hash")
    for file_id, path in enumerate(paths):
        try:
            ranges = _ranges(Path(path), config, cores)
        except ScrapewatchError:
            ranges = None  # its task says what is wrong, in the order of the files
        if ranges is None:
            tasks.append(_Task(file_id, path))
            continue
        fmt, size = ranges.pop()
        splits[file_id] = _Split(size, hashing.submit(_sha256, Path(path), size))
        tasks += [_Task(file_id, path, start, end, fmt) for start, end in ranges]
    hashing.shutdown(wait=False)
    return tasks, splits


def _ranges(path: Path, config: Config, cores: int) -> list[Any] | None:
    """Ranges of a plain text file past 2 SPLIT_BYTES in a format without a header
    (whose lines each read alone), one a core but none under SPLIT_BYTES: (start, end)
    each, cut just after a newline, then (its format, the size they cover). None for a
    file loaded whole (a task then finds its format, as a DuckDB scan does). Only the
    bytes around each cut are read: the tasks count the lines."""
    with LogSource.open(path, hashing=False) as source:
        if source.compression != "none" or source.size < 2 * SPLIT_BYTES or cores < 2 or any(
                f.magic and source.magic == f.magic for f in FORMATS.values()):
            return None
        size, step = source.size, max(SPLIT_BYTES, -(-source.size // cores))
        first = next(source.blocks(), None)
        if first is None:
            return None
        fmt = choose_format(source, first, config.input.format)
    if fmt.header:
        return None
    ranges: list[Any] = []
    start = 0
    with path.open("rb") as raw:
        while start + step < size and (cut := _after_newline(raw, start + step)) < size:
            ranges.append((start, cut))
            start = cut
    ranges.append((start, size))
    name = fmt.name if config.input.format == "auto" else config.input.format
    return [*ranges, (name, size)]


def _after_newline(raw: BinaryIO, at: int) -> int:
    """The offset just after the first newline of `raw` at or past `at`; past its end
    when there is none."""
    raw.seek(at)
    while chunk := raw.read(1 << 16):
        if (newline := chunk.find(b"\n")) >= 0:
            return at + newline + 1
        at += len(chunk)
    return at + 1


def _sha256(path: Path, size: int) -> str:
    """The SHA-256 of the first `size` bytes of the file at `path`."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as raw:
            while size and (chunk := raw.read(min(BLOCK_BYTES, size))):
                digest.update(chunk)
                size -= len(chunk)
    except OSError as error:
        raise InputError(f"{path}: cannot read it again to hash it: {error.strerror}"
                         ) from None
    return digest.hexdigest()


def load_local(tasks: list[_Task], config: Config, ids: Iterator[pa.RecordBatch]
               ) -> Iterator[pa.RecordBatch]:
    """On an executor: load the local files or ranges of them that are the `id`s of
    `ids` in `tasks`."""
    with contextlib.closing(_connect()) as con:
        for batch in ids:
            for task in (tasks[i] for i in batch.column("id").to_pylist()):
                if task.end is None:
                    yield from _load_one(con, config, task.file_id, task.path, Path(task.path))
                else:
                    yield from _load_range(con, config, task)


def load_uris(ids: dict[str, int], config: Config, tasks: Iterator[pa.RecordBatch]
              ) -> Iterator[pa.RecordBatch]:
    """On an executor: load the files Spark read (`path` and `content`), each from a
    temp file; `ids` gives each path's file_id."""
    with contextlib.closing(_connect()) as con:
        for batch in tasks:
            for path, content in zip(batch.column("path").to_pylist(),
                                     batch.column("content").to_pylist(), strict=True):
                with tempfile.TemporaryDirectory(prefix="scrapewatch-") as folder:
                    local = Path(folder) / "input"
                    local.write_bytes(content)
                    del content
                    yield from _load_one(con, config, ids[path], path, local)


def _connect() -> duckdb.DuckDBPyConnection:
    """On an executor: a DuckDB connection with as many threads as the task has cores
    (spark.task.cpus, 1 by default): the other cores run other tasks."""
    con = connect()
    task = TaskContext.get()
    run(con, f"SET threads = {task.cpus() if task else 1}")
    return con


def _load_one(con: duckdb.DuckDBPyConnection, config: Config, file_id: int, name: str,
              path: Path) -> Iterator[pa.RecordBatch]:
    """Load the file at `path` (named `name`) whole on `con`: its row and the rows it
    added to each table, which are then deleted (the next file loads on `con` too)."""
    try:
        loaded = load_path(con, path, file_id=file_id, config=config, name=name)
    except ScrapewatchError as error:
        yield _failed(file_id, name, error, path)
        return
    yield _file_row(file_id, name, loaded.load, size=loaded.size,
                    content_sha256=loaded.content_sha256, skipped=loaded.skipped)
    yield from _rows(con, file_id)


def _load_range(con: duckdb.DuckDBPyConnection, config: Config, task: _Task
                ) -> Iterator[pa.RecordBatch]:
    """Load the lines of `task`'s range of its file on `con` (see `_load_one`)."""
    try:
        with LogSource.open(Path(task.path), hashing=False) as source:
            source.seek_content(task.start)
            load = load_file(con, source, file_id=task.file_id, format_name=task.format,
                             config=config, skip=task.start, limit=task.end)
    except ScrapewatchError as error:
        yield _failed(task.file_id, task.path, error, Path(task.path), task.start)
        return
    yield _file_row(task.file_id, task.path, load, start=task.start)
    yield from _rows(con, task.file_id, task.start)


def _file_row(file_id: int, name: str, load: FileLoad, *, start: int = 0, size: int = 0,
              content_sha256: str = "", skipped: str | None = None) -> pa.RecordBatch:
    return _extra("files", file_id, start, pa.Table.from_pylist([{
        "file_id": file_id, "start": start, "path": name, "size": size,
        "format": load.format, "lines": load.lines, "requests": load.requests,
        "rejected": load.rejected, "sha256": load.sha256, "first_request": load.first_request,
        "last_request": load.last_request, "read_sha256": load.content_sha256,
        "read_bytes": load.content_bytes, "content_sha256": content_sha256,
        "skipped": skipped, **asdict(load.counts)}], _FILE))


def _failed(file_id: int, name: str, error: ScrapewatchError, path: Path, start: int = 0
            ) -> pa.RecordBatch:
    """The row of a file (or range) that could not be loaded, naming it as `name`."""
    return _extra("files", file_id, start, pa.Table.from_pylist([{
        "file_id": file_id, "start": start, "path": name, "error_kind": type(error).__name__,
        "error": str(error).replace(str(path), name)}], _FILE))


def _rows(con: duckdb.DuckDBPyConnection, file_id: int, start: int = 0
          ) -> Iterator[pa.RecordBatch]:
    """The rows the load of a file (or its range from byte `start`) added to `con`'s
    tables, which are then emptied."""
    for batch in con.sql(_TOTALS_SQL).to_arrow_reader(BATCH_ROWS):
        yield pa.RecordBatch.from_arrays(
            [batch.column(i).cast(LOADED.field(i).type) for i in range(5)]
            + [pa.nulls(len(batch), f.type) for f in list(LOADED)[5:]], schema=LOADED)
    for batch in con.sql(f"SELECT {', '.join(PARTS.names)} FROM activity_parts"
                         ).to_arrow_reader(BATCH_ROWS):
        if len(batch):
            yield _row(file_id=file_id, start=start,
                       parts=ipc_stream(pa.Table.from_batches([batch]).cast(PARTS)))
    for table in _EXTRA_TABLES:
        for batch in con.sql(f"SELECT * FROM {table}").to_arrow_reader(BATCH_ROWS):
            yield _extra(table, file_id, start, pa.Table.from_batches([batch]))
    for table in ("activity_parts", *_EXTRA_TABLES):
        run(con, f"DELETE FROM {table}")


def _extra(name: str, file_id: int, start: int, rows: pa.Table) -> pa.RecordBatch:
    """A row of LOADED holding `rows` of the table `name` in `extra`."""
    return _row(file_id=file_id, start=start,
                extra=ipc_stream(rows.replace_schema_metadata({"table": name})))


def ipc_stream(rows: pa.Table) -> bytes:
    """`rows` as an Arrow IPC stream, compressed."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(rows)
    stream: bytes = sink.getvalue().to_pybytes()
    return stream


def _row(**values: Any) -> pa.RecordBatch:
    """A row of LOADED with `values`, its other columns null."""
    return pa.RecordBatch.from_arrays(
        [pa.array([values.get(f.name)], f.type) for f in LOADED], schema=LOADED)


def loaded_file(rows: list[dict[str, Any]], split: _Split | None) -> LoadedFile:
    """A file's load from its task's row, or (`split`) its ranges' rows."""
    row = rows[0]
    if split is None:
        load = FileLoad(row["format"], row["lines"], row["requests"], row["rejected"],
                        row["sha256"], row["first_request"], row["last_request"],
                        row["read_sha256"], row["read_bytes"], _counts_of(row))
        return LoadedFile(row["path"], row["size"], load, row["content_sha256"],
                          row["skipped"])
    sha256 = split.sha256.result()
    firsts = [r["first_request"] for r in rows if r["first_request"] is not None]
    lasts = [r["last_request"] for r in rows if r["last_request"] is not None]
    load = FileLoad(row["format"], sum(r["lines"] for r in rows),
                    sum(r["requests"] for r in rows), sum(r["rejected"] for r in rows),
                    sha256, min(firsts, default=None), max(lasts, default=None), sha256,
                    split.size, sum(map(_counts_of, rows), Counts()))
    return LoadedFile(row["path"], split.size, load, sha256)


def _counts_of(row: dict[str, Any]) -> Counts:
    return Counts(*(row[name] for name in _COUNTS))


def line_shifts(files: list[dict[str, Any]]) -> dict[tuple[int, int], int]:
    """What to add to the line numbers of each range after a file's first, (file_id,
    start): the lines of the ranges before it. `files`: their rows, in order."""
    shifts, lines = {}, 0
    for row, before in zip(files[1:], files, strict=False):
        lines = lines + before["lines"] if row["file_id"] == before["file_id"] else 0
        if lines:
            shifts[row["file_id"], row["start"]] = lines
    return shifts


def unpack(candidates: dict[str, pa.Array] | None, shifts: dict[tuple[int, int], int],
           batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """On an executor: the activity parts (PARTS) in the `parts` of `batches`, those of
    the `candidates` (entities by kind) only, unless None; the line numbers of a range
    moved by its `shifts`."""
    for batch in batches:
        for file_id, start, stream in zip(*batch.select(["file_id", "start", "parts"])
                                          .to_pydict().values(), strict=True):
            shift = shifts.get((file_id, start), 0)
            for parts in pa.ipc.open_stream(stream):
                if candidates is not None:
                    kinds, entities = parts.column("entity_kind"), parts.column("entity")
                    keep = pa.array(np.zeros(len(parts), bool))
                    for kind, kept in candidates.items():
                        keep = pc.or_(keep, pc.and_(pc.equal(kinds, kind),
                                                    pc.is_in(entities, value_set=kept)))
                    parts = parts.filter(keep)
                if shift:
                    parts = pa.RecordBatch.from_arrays([
                        pc.add(column, shift) if name in ("first_line", "last_line") else column
                        for name, column in zip(parts.schema.names, parts.columns, strict=True)
                    ], schema=parts.schema)
                if len(parts):
                    yield parts
