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
import itertools
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from scrapewatch import errors
from scrapewatch.config import Config
from scrapewatch.engine.duckdb import connect, files_table
from scrapewatch.errors import InputError, ScrapewatchError
from scrapewatch.reading.read import FileLoad, LoadedFile, Progress, load_path
from scrapewatch.reading.sources import is_uri
from scrapewatch.sql import run

BATCH_ROWS = 65_536

# What a load task sends back, one field filled a row: a file's load (or why it could
# not be read), or a row of its activity parts, rejects or line offsets.
_FILE = pa.struct([
    ("file_id", pa.int32()), ("path", pa.string()), ("size", pa.int64()),
    ("format", pa.string()), ("lines", pa.int64()), ("requests", pa.int64()),
    ("rejected", pa.int64()), ("sha256", pa.string()), ("first_request", pa.int64()),
    ("last_request", pa.int64()), ("read_sha256", pa.string()), ("read_bytes", pa.int64()),
    ("content_sha256", pa.string()), ("error_kind", pa.string()), ("error", pa.string())])
LOADED = pa.schema([
    ("file", _FILE),
    ("part", pa.struct([  # schema.activity_parts
        ("entity_kind", pa.string()), ("entity", pa.string()), ("sec", pa.int64()),
        ("posts", pa.int64()), ("requests", pa.int64()), ("observed_posts", pa.int64()),
        ("file_id", pa.int32()), ("first_line", pa.int64()), ("last_line", pa.int64())])),
    ("reject", pa.struct([  # schema.rejects
        ("file_id", pa.int32()), ("line_no", pa.int64()), ("reason", pa.string()),
        ("text", pa.string())])),
    ("mark", pa.struct([  # schema.line_offsets
        ("file_id", pa.int32()), ("line_no", pa.int64()), ("offset", pa.int64())]))])
# The table of a task's connection each field's rows come from.
_TABLES = {"part": "activity_parts", "reject": "rejects", "mark": "line_offsets"}

_REJECTS_SQL = """
SELECT f.path, r.line_no, r.reason, r.text
FROM (SELECT reject.* FROM sw_loaded WHERE reject IS NOT NULL) r JOIN files f USING (file_id)
ORDER BY r.file_id, r.line_no
"""


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
    table is a view of rows checkpointed on the executors. The line offsets of the files
    loaded go to `local`'s line_offsets table, for quoting lines of the evidence."""

    def __init__(self, spark: SparkSession, local: duckdb.DuckDBPyConnection | None = None
                 ) -> None:
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
        if local:
            task = functools.partial(_load_local, local, config)
            frames.append(self.spark.range(0, len(local), 1, len(local))
                          .mapInArrow(task, from_arrow_schema(LOADED)))
        listed: list[str] = []
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
        rows = sorted(self.spark.sql("SELECT file.* FROM sw_loaded WHERE file IS NOT NULL"
                                     ).collect(), key=lambda row: row.file_id)
        failed = next((row for row in rows if row.error is not None), None)
        if failed is not None:
            kind = getattr(errors, failed.error_kind, ScrapewatchError)
            raise kind(failed.error)
        if self.local is not None:
            marks = self.spark.sql("SELECT mark.* FROM sw_loaded WHERE mark IS NOT NULL")
            run(self.local, "DELETE FROM line_offsets")
            for batch in _arrow_batches(marks):
                self.local.register("sw_marks", batch)
                run(self.local, "INSERT INTO line_offsets SELECT * FROM sw_marks")
                self.local.unregister("sw_marks")
        return [_loaded_file(row) for row in rows]

    def keep_files(self, kept: Sequence[tuple[int, LoadedFile]]) -> None:
        self.put("files", files_table(kept))
        for field, name in (("part", "activity_parts"), ("reject", "sw_rejects")):
            self.spark.sql(f"SELECT {field}.* FROM sw_loaded WHERE {field} IS NOT NULL AND "
                           f"{field}.file_id IN (SELECT file_id FROM files)"
                           ).createOrReplaceTempView(name)

    def rejects(self) -> Iterator[tuple[str, int, str, str]]:
        for row in self.spark.sql(_REJECTS_SQL).toLocalIterator():
            yield row[0], int(row[1]), row[2], row[3]

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


def _load_local(paths: list[str], config: Config, tasks: Iterator[pa.RecordBatch]
                ) -> Iterator[pa.RecordBatch]:
    """On an executor: load the local files whose positions in `paths` (their file_id)
    are the `id`s of `tasks`."""
    with _task_connection() as con:
        for batch in tasks:
            for file_id in batch.column("id").to_pylist():
                yield from _load_one(con, config, file_id, paths[file_id], Path(paths[file_id]))


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
    """Load the file at `path` (named `name`) on `con`: its load's row, then the rows it
    added to each table, which are then deleted (the next file loads on `con` too)."""
    try:
        loaded = load_path(con, path, file_id=file_id, config=config, name=name)
    except ScrapewatchError as error:
        message = str(error).replace(str(path), name)
        yield _only("file", pa.array([{"file_id": file_id, "path": name,
                                        "error_kind": type(error).__name__,
                                        "error": message}], _FILE))
        return
    load = loaded.load
    yield _only("file", pa.array([{
        "file_id": file_id, "path": name, "size": loaded.size, "format": load.format,
        "lines": load.lines, "requests": load.requests, "rejected": load.rejected,
        "sha256": load.sha256, "first_request": load.first_request,
        "last_request": load.last_request, "read_sha256": load.content_sha256,
        "read_bytes": load.content_bytes, "content_sha256": loaded.content_sha256}], _FILE))
    for field, table in _TABLES.items():
        kind = LOADED.field(field).type
        for batch in con.sql(f"SELECT * FROM {table}").to_arrow_reader(BATCH_ROWS):
            yield _only(field, pa.StructArray.from_arrays(
                [batch.column(f.name).cast(f.type) for f in kind], fields=list(kind)))
        run(con, f"DELETE FROM {table}")


def _only(field: str, rows: pa.StructArray) -> pa.RecordBatch:
    """A batch of LOADED with `rows` in `field` and nothing in the others."""
    return pa.RecordBatch.from_arrays(
        [rows if name == field else pa.nulls(len(rows), LOADED.field(name).type)
         for name in LOADED.names], schema=LOADED)


def _loaded_file(row: Any) -> LoadedFile:
    """A load task's row of a file, as the load it was."""
    load = FileLoad(row.format, row.lines, row.requests, row.rejected, row.sha256,
                    row.first_request, row.last_request, row.read_sha256, row.read_bytes)
    return LoadedFile(row.path, row.size, load, row.content_sha256)


def hadoop_path(name: str) -> str:
    """A file for Spark's readers, its glob characters escaped: they would match."""
    return re.sub(r"([\\\[\]{}*?])", r"\\\1", name)


def _sql_text(text: str) -> str:
    """`text` inside a SQL string literal."""
    return text.replace("'", "''")
