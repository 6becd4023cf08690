"""Spark: each file is loaded by a task on an executor, with the same load as DuckDB's
(reading/read.py, on a DuckDB connection of the task's own), and detection's statements
(detect/windows.py) run unchanged as Spark SQL on what the tasks send back. Only the
files' counts, the line offsets and the flagged entities' activity and evidence come
back to the driver, where damages.py prices them in batches (see reporting.findings).

Local paths are listed and sniffed on the driver, and read by the executors at the same
path (local mode, or a shared mount). A URI (s3a://, gs://, hdfs://, dbfs:/, file:) is
listed and read by Spark (its binary file reader: up to 2 GiB a file), and its bytes
are loaded from a temp file on the executor.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from scrapewatch import errors
from scrapewatch.config import Config
from scrapewatch.engine.duckdb import connect, files_table, keep_local_files, rejects_of
from scrapewatch.errors import InputError, ScrapewatchError
from scrapewatch.reading.formats import FORMATS
from scrapewatch.reading.inputs import is_uri
from scrapewatch.reading.read import FileLoad, LoadedFile, Progress, load_file, load_path
from scrapewatch.reading.sniff import choose_format
from scrapewatch.reading.sources import BLOCK_BYTES, LogSource
from scrapewatch.sql import insert_arrow, run

BATCH_ROWS = 65_536
# A plain text file past this size loads in ranges of about this size, one task each.
SPLIT_BYTES = 128 << 20

# What a load task sends back: the rows of its files' activity parts, which stay on the
# cluster; and, in `extra` (the other columns empty), an Arrow IPC stream of a batch of
# one of its other tables, which come to the driver: a file's load (or why it could not
# be read), its rejects or its line offsets, the table named in the stream's metadata.
PARTS = pa.schema([  # schema.activity_parts
    ("entity_kind", pa.string()), ("entity", pa.string()), ("sec", pa.int64()),
    ("posts", pa.int64()), ("requests", pa.int64()), ("observed_posts", pa.int64()),
    ("file_id", pa.int32()), ("first_line", pa.int64()), ("last_line", pa.int64())])
LOADED = PARTS.append(pa.field("extra", pa.binary()))
_FILE = pa.schema([
    ("file_id", pa.int32()), ("start", pa.int64()), ("path", pa.string()), ("size", pa.int64()),
    ("format", pa.string()), ("lines", pa.int64()), ("requests", pa.int64()),
    ("rejected", pa.int64()), ("sha256", pa.string()), ("first_request", pa.int64()),
    ("last_request", pa.int64()), ("read_sha256", pa.string()), ("read_bytes", pa.int64()),
    ("content_sha256", pa.string()), ("error_kind", pa.string()), ("error", pa.string())])
_EXTRA_TABLES = ("rejects", "line_offsets")  # besides the files' loads


def spark_session(master: str | None = None, remote: str | None = None, *,
                  progress: bool = False) -> SparkSession:
    """A Spark session in UTC: Spark Connect at `remote` (`sc://host:15002`), else a
    session on `master` (`local[*]`, `yarn`, `k8s://...`, `spark://...`); without one,
    spark-submit's `--master` when it launched this process, else `local[*]`.

    A local session runs its Python workers on this interpreter, has no web UI and
    shuffles into two partitions per core (Spark's 200 are for clusters). With
    `progress`, Spark draws its stage progress on stderr. The session compares names
    case-sensitively, as JSON keys are.
    """
    builder = SparkSession.builder.appName("scrapewatch")
    if remote:
        builder = builder.remote(remote)
    else:
        builder = builder.config("spark.ui.showConsoleProgress", str(progress).lower())
        if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
            master = "local[*]"  # not launched by spark-submit, which sets the master
        if master is not None:
            builder = builder.master(master)
        if master is not None and master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            cores = re.fullmatch(r"local\[([0-9]+)", master.split(",")[0])
            partitions = 2 * (int(cores[1]) if cores else os.cpu_count() or 1)
            builder = (builder.config("spark.ui.enabled", "false")
                       .config("spark.sql.shuffle.partitions", str(partitions)))
    spark = builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.caseSensitive", "true")
    if not remote:
        spark.sparkContext.setLogLevel("ERROR")
    return spark


class SparkEngine:
    """Loading on Spark's executors, and detection's statements on its SQL; a created
    table is a view of rows checkpointed on the executors. The files loaded, their
    rejects and line offsets go to the tables of the local DuckDB connection `local`
    (see engine.duckdb.connect), as the DuckDB engine's load leaves them."""

    def __init__(self, spark: SparkSession, local: duckdb.DuckDBPyConnection) -> None:
        self.spark = spark
        self.local = local
        self.kept: dict[str, DataFrame] = {}

    def load(self, paths: Sequence[str], config: Config, progress: Progress | None
             ) -> list[LoadedFile]:
        """One task per local file; a URI's files in tasks as Spark's reader groups them.
        With `progress`, Spark draws its own (see spark_session)."""
        local = [p for p in paths if not is_uri(p)]
        uris = [p for p in paths if is_uri(p)]
        frames = []
        tasks, splits = _tasks(local, config)
        if tasks:
            task = functools.partial(_load_local, tasks, config)
            frames.append(self.spark.range(0, len(tasks), 1, len(tasks))
                          .mapInArrow(task, from_arrow_schema(LOADED)))
        if uris:
            found = (self.spark.read.format("binaryFile")
                     .option("recursiveFileLookup", "true").load([hadoop_path(u) for u in uris]))
            listed = sorted(row[0] for row in found.select("path").collect())
            if not listed:
                raise InputError(f"no files under {', '.join(uris)}")
            ids = {path: len(local) + index for index, path in enumerate(listed)}
            task = functools.partial(_load_uris, ids, config)
            frames.append(found.select("path", "content")
                          .mapInArrow(task, from_arrow_schema(LOADED)))
        self.keep("sw_loaded", functools.reduce(DataFrame.unionByName, frames))
        files = []
        for (extra,) in self.spark.sql("SELECT extra FROM sw_loaded WHERE extra IS NOT NULL"
                                       ).toLocalIterator():
            table = pa.ipc.open_stream(extra).read_all()
            name = table.schema.metadata[b"table"].decode()
            if name == "files":
                files += table.to_pylist()
            else:
                insert_arrow(self.local, name, table)
        files.sort(key=lambda row: (row["file_id"], row["start"]))
        failed = next((row for row in files if row["error"] is not None), None)
        if failed is not None:
            raise getattr(errors, failed["error_kind"], ScrapewatchError)(failed["error"])
        return [_loaded_file(list(rows), splits.get(file_id)) for file_id, rows in
                itertools.groupby(files, key=lambda row: row["file_id"])]

    def keep_files(self, kept: Sequence[tuple[int, LoadedFile]]) -> None:
        keep_local_files(self.local, kept)
        self.put("files", files_table(kept))
        self.spark.sql(f"SELECT {', '.join(PARTS.names)} FROM sw_loaded WHERE extra IS NULL "
                       "AND file_id IN (SELECT file_id FROM files)"
                       ).createOrReplaceTempView("activity_parts")

    def rejects(self) -> Iterator[tuple[str, int, str, str]]:
        return rejects_of(self.local)

    def take_parts(self, con: duckdb.DuckDBPyConnection, parts: str, files: str) -> None:
        """Make `activity_parts` the rows `parts` selects on `con` (a store's), and
        `files` the rows of its table `files`: they reach Spark as Parquet in a temp
        folder, which the executors must be able to read (local mode, or a temp folder
        on a shared file system)."""
        with tempfile.TemporaryDirectory(prefix="scrapewatch-") as folder:
            target = Path(folder) / "parts.parquet"
            run(con, f"COPY ({parts}) TO '{_sql_text(str(target))}' (FORMAT parquet)")
            self.keep("activity_parts", self.spark.read.parquet(hadoop_path(str(target))))
        self.put("files", con.sql(f"SELECT file_id, path, sha256 FROM {files}").to_arrow_table())

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.spark.sql(sql).collect()]

    def create(self, name: str, sql: str) -> None:
        self.keep(name, self.spark.sql(sql))

    def keep(self, name: str, frame: DataFrame) -> None:
        """Materialise `frame` on the executors (spilling to disk past memory) as temp
        view `name`. A local checkpoint, not a cache: the view's plan then no longer
        holds how the rows were made, which every later query would otherwise carry and
        re-optimise (megabytes of plan once parsing, activity and evidence stack up)."""
        if name in self.kept:
            self.kept.pop(name).unpersist()
        frame = frame.localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)
        self.kept[name] = frame

    def put(self, name: str, table: pa.Table) -> None:
        self.spark.createDataFrame(table).createOrReplaceTempView(name)

    def parts_read(self) -> None:
        if "activity_parts" in self.kept:
            self.kept.pop("activity_parts").unpersist()

    def batches(self, sql: str) -> Iterator[pa.RecordBatch]:
        yield from _arrow_batches(self.spark.sql(sql))

    def release(self) -> None:
        """Let go of every kept table's rows."""
        for frame in self.kept.values():
            frame.unpersist()
        self.kept.clear()



def _arrow_batches(frame: DataFrame) -> Iterator[pa.RecordBatch]:
    """The rows of `frame`, streamed to the driver in record batches."""
    names = frame.columns
    rows = frame.toLocalIterator(prefetchPartitions=True)
    while chunk := list(itertools.islice(rows, BATCH_ROWS)):
        yield pa.RecordBatch.from_pylist([dict(zip(names, row, strict=True)) for row in chunk])


@dataclass(frozen=True)
class _Task:
    """A local file to load in one task: whole, or the lines of its content bytes
    [start, end), the first of them line `first_line`, in the format sniffed for all
    its ranges."""

    file_id: int
    path: str
    start: int = 0
    end: int | None = None
    first_line: int = 1
    format: str = ""


@dataclass
class _Split:
    """A file loaded in ranges: its size and SHA-256 (hashed on the driver meanwhile)."""

    size: int
    sha256: Future[str]


def _tasks(paths: list[str], config: Config) -> tuple[list[_Task], dict[int, _Split]]:
    """The tasks that load the local files `paths` (file_id: their position), and the
    files loaded in ranges (see `_ranges`)."""
    tasks, splits = [], {}
    hashing = ThreadPoolExecutor(1, thread_name_prefix="scrapewatch-hash")
    for file_id, path in enumerate(paths):
        ranges = _ranges(Path(path), config)
        if ranges is None:
            tasks.append(_Task(file_id, path))
            continue
        fmt, size = ranges.pop()
        splits[file_id] = _Split(size, hashing.submit(_sha256, Path(path), size))
        tasks += [_Task(file_id, path, start, end, line, fmt) for start, end, line in ranges]
    hashing.shutdown(wait=False)
    return tasks, splits


def _ranges(path: Path, config: Config) -> list[Any] | None:
    """Ranges of about SPLIT_BYTES of a plain text file over that size in a format
    without a header (whose lines each read alone): (start, end, first line) each, cut
    just after a newline, then (its format, the size they cover). None for a file
    loaded whole (a task then finds its format, as a DuckDB scan does)."""
    with LogSource.open(path, hashing=False) as source:
        if source.compression != "none" or source.size <= SPLIT_BYTES or any(
                f.magic and source.magic == f.magic for f in FORMATS.values()):
            return None
        first = next(source.blocks(), None)
        if first is None:
            return None
        fmt = choose_format(source, first, config.input.format)
    if fmt.header:
        return None
    ranges: list[Any] = []
    start, line, offset, newlines = 0, 1, 0, 0
    with path.open("rb") as raw:
        while chunk := raw.read(BLOCK_BYTES):
            at = start + SPLIT_BYTES - offset  # where the next cut is looked for
            while 0 <= at < len(chunk) or (at < 0 and chunk):
                cut = chunk.find(b"\n", max(at, 0))
                if cut < 0:
                    break
                ranges.append((start, offset + cut + 1, line))
                line = newlines + chunk.count(b"\n", 0, cut + 1) + 1
                start = offset + cut + 1
                at = start + SPLIT_BYTES - offset
            newlines += chunk.count(b"\n")
            offset += len(chunk)
    if start < offset:
        ranges.append((start, offset, line))
    name = fmt.name if config.input.format == "auto" else config.input.format
    return [*ranges, (name, offset)]


def _sha256(path: Path, size: int) -> str:
    """The SHA-256 of the first `size` bytes of the file at `path`."""
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        while size and (chunk := raw.read(min(BLOCK_BYTES, size))):
            digest.update(chunk)
            size -= len(chunk)
    return digest.hexdigest()


def _load_local(tasks: list[_Task], config: Config, ids: Iterator[pa.RecordBatch]
                ) -> Iterator[pa.RecordBatch]:
    """On an executor: load the local files or ranges of them that are the `id`s of
    `ids` in `tasks`."""
    with _task_connection() as con:
        for batch in ids:
            for task in (tasks[i] for i in batch.column("id").to_pylist()):
                if task.end is None:
                    yield from _load_one(con, config, task.file_id, task.path, Path(task.path))
                else:
                    yield from _load_range(con, config, task)


def _load_uris(ids: dict[str, int], config: Config, tasks: Iterator[pa.RecordBatch]
               ) -> Iterator[pa.RecordBatch]:
    """On an executor: load the files Spark read (`path` and `content`), each from a
    temp file; `ids` gives each path's file_id."""
    with _task_connection() as con:
        for batch in tasks:
            for path, content in zip(batch.column("path").to_pylist(),
                                     batch.column("content").to_pylist(), strict=True):
                with tempfile.TemporaryDirectory(prefix="scrapewatch-") as folder:
                    local = Path(folder) / "input"
                    local.write_bytes(content)
                    del content
                    yield from _load_one(con, config, ids[path], path, local)


@contextlib.contextmanager
def _task_connection() -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect()
    try:
        yield con
    finally:
        con.close()


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
                    content_sha256=loaded.content_sha256)
    yield from _rows(con)


def _load_range(con: duckdb.DuckDBPyConnection, config: Config, task: _Task
                ) -> Iterator[pa.RecordBatch]:
    """Load the lines of `task`'s range of its file on `con` (see `_load_one`)."""
    try:
        with LogSource.open(Path(task.path), hashing=False) as source:
            source.seek_content(task.start)
            load = load_file(con, source, file_id=task.file_id, format_name=task.format,
                             config=config, first_line=task.first_line, skip=task.start,
                             limit=task.end)
    except ScrapewatchError as error:
        yield _failed(task.file_id, task.path, error, Path(task.path), task.start)
        return
    yield _file_row(task.file_id, task.path, load, start=task.start)
    yield from _rows(con)


def _file_row(file_id: int, name: str, load: FileLoad, *, start: int = 0, size: int = 0,
              content_sha256: str = "") -> pa.RecordBatch:
    return _extra("files", pa.Table.from_pylist([{
        "file_id": file_id, "start": start, "path": name, "size": size,
        "format": load.format, "lines": load.lines, "requests": load.requests,
        "rejected": load.rejected, "sha256": load.sha256, "first_request": load.first_request,
        "last_request": load.last_request, "read_sha256": load.content_sha256,
        "read_bytes": load.content_bytes, "content_sha256": content_sha256}], _FILE))


def _failed(file_id: int, name: str, error: ScrapewatchError, path: Path, start: int = 0
            ) -> pa.RecordBatch:
    """The row of a file (or range) that could not be loaded, naming it as `name`."""
    return _extra("files", pa.Table.from_pylist([{
        "file_id": file_id, "start": start, "path": name, "error_kind": type(error).__name__,
        "error": str(error).replace(str(path), name)}], _FILE))


def _rows(con: duckdb.DuckDBPyConnection) -> Iterator[pa.RecordBatch]:
    """The rows a load added to `con`'s tables, which are then emptied."""
    for batch in con.sql("SELECT * FROM activity_parts").to_arrow_reader(BATCH_ROWS):
        yield pa.RecordBatch.from_arrays(
            [batch.column(f.name).cast(f.type) for f in PARTS]
            + [pa.nulls(len(batch), pa.binary())], schema=LOADED)
    for table in _EXTRA_TABLES:
        for batch in con.sql(f"SELECT * FROM {table}").to_arrow_reader(BATCH_ROWS):
            yield _extra(table, pa.Table.from_batches([batch]))
    for table in ("activity_parts", *_EXTRA_TABLES):
        run(con, f"DELETE FROM {table}")


def _extra(name: str, rows: pa.Table) -> pa.RecordBatch:
    """A row of LOADED holding `rows` of the table `name` in `extra`."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema.with_metadata({"table": name})) as writer:
        writer.write_table(rows)
    return pa.RecordBatch.from_arrays(
        [pa.nulls(1, f.type) for f in PARTS] + [pa.array([sink.getvalue().to_pybytes()])],
        schema=LOADED)


def _loaded_file(rows: list[dict[str, Any]], split: _Split | None) -> LoadedFile:
    """A file's load from its task's row, or (`split`) its ranges' rows."""
    row = rows[0]
    if split is None:
        load = FileLoad(row["format"], row["lines"], row["requests"], row["rejected"],
                        row["sha256"], row["first_request"], row["last_request"],
                        row["read_sha256"], row["read_bytes"])
        return LoadedFile(row["path"], row["size"], load, row["content_sha256"])
    sha256 = split.sha256.result()
    firsts = [r["first_request"] for r in rows if r["first_request"] is not None]
    lasts = [r["last_request"] for r in rows if r["last_request"] is not None]
    load = FileLoad(row["format"], sum(r["lines"] for r in rows),
                    sum(r["requests"] for r in rows), sum(r["rejected"] for r in rows),
                    sha256, min(firsts, default=None), max(lasts, default=None), sha256,
                    split.size)
    return LoadedFile(row["path"], split.size, load, sha256)


def hadoop_path(name: str) -> str:
    """A file for Spark's readers, its glob characters escaped: they would match."""
    return re.sub(r"([\\\[\]{}*?])", r"\\\1", name)


def _sql_text(text: str) -> str:
    """`text` inside a SQL string literal."""
    return text.replace("'", "''")
