"""Spark: each file (or range of a large one) is loaded by a task on an executor, with
the same load as DuckDB's (engine/spark_tasks.py), and detection's statements
(detect/windows.py) run unchanged as Spark SQL on the activity parts the tasks send
back. Only the files' counts, rejects and line offsets and the flagged entities'
activity and evidence come to the driver, where damages/ prices them in batches (see
reporting.findings).

Local paths are listed and sniffed on the driver, and read by the executors at the same
path (local mode, or a shared mount). A URI (s3a://, gs://, hdfs://, dbfs:/, file:) is
listed and read by Spark (its binary file reader: up to 2 GiB a file), and its bytes
are loaded from a temp file on the executor.
"""

from __future__ import annotations

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
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from scrapewatch import errors
from scrapewatch.config import Config
from scrapewatch.engine.duckdb import files_table, keep_local_files, rejects_of, top_entities
from scrapewatch.engine.spark_tasks import (
    LOADED,
    PARTS,
    ipc_stream,
    line_shifts,
    load_local,
    load_tasks,
    load_uris,
    loaded_file,
    unpack,
)
from scrapewatch.errors import InputError, ScrapewatchError
from scrapewatch.reading.inputs import is_uri
from scrapewatch.reading.loaded import LoadedFile, Progress
from scrapewatch.schema import ALL_PARTS
from scrapewatch.sql import insert_arrow, run

# A local session's JVM lives for one scan, and its heavy work runs in the Python
# tasks: compiling only with C1 and the serial collector start it faster (a scan of
# 10 M lines 15 % sooner).
LOCAL_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"

# The most candidates whose parts alone are unpacked (see SparkEngine.keep_files).
CANDIDATES_MAX = 1_000_000


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
                       .config("spark.sql.shuffle.partitions", str(partitions))
                       .config("spark.driver.extraJavaOptions", LOCAL_JVM_OPTIONS))
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
        self.watch_level: int | None = None  # see keep_files
        self.shifts: dict[tuple[int, int], int] = {}  # see spark_tasks.line_shifts
        self.totals: str | None = None  # see keep_files

    def load(self, paths: Sequence[str], config: Config, progress: Progress | None
             ) -> list[LoadedFile]:
        """A task per local file or range of one (see spark_tasks.load_tasks), and for
        the files under the URIs as Spark's reader groups them. With `progress`, Spark
        draws its own (see spark_session)."""
        local = [p for p in paths if not is_uri(p)]
        uris = [p for p in paths if is_uri(p)]
        tasks, splits = load_tasks(local, config, _cores(self.spark))
        frames = []
        if tasks:
            task = functools.partial(load_local, tasks, config)
            frames.append(self.spark.range(0, len(tasks), 1, len(tasks))
                          .mapInArrow(task, from_arrow_schema(LOADED)))
        if uris:
            frames.append(self._uri_tasks(uris, len(local), config))
        self.keep("sw_loaded", functools.reduce(DataFrame.unionByName, frames) if frames else
                  self.spark.createDataFrame([], from_arrow_schema(LOADED)))
        self.watch_level = None if config.entity.organisations else config.policy.watch_level
        files, ranges = self._extras()
        files.sort(key=lambda row: (row["file_id"], row["start"]))
        failed = next((row for row in files if row["error"] is not None), None)
        if failed is not None:
            for split in splits.values():
                split.sha256.cancel()  # not hashed in vain before the error is told
            raise getattr(errors, failed["error_kind"], ScrapewatchError)(failed["error"])
        self.shifts = line_shifts(files)
        for (file_id, start), held in ranges.items():
            for table in ("rejects", "line_offsets"):
                run(self.local, f"UPDATE {table} SET file_id = $file_id, "
                    "line_no = line_no + $shift WHERE file_id = $held",
                    {"file_id": file_id, "shift": self.shifts[file_id, start], "held": held})
            run(self.local, "UPDATE activity_hours SET file_id = $file_id WHERE file_id = $held",
                {"file_id": file_id, "held": held})
        return [loaded_file(list(rows), splits.get(file_id)) for file_id, rows in
                itertools.groupby(files, key=lambda row: row["file_id"])]

    def _uri_tasks(self, uris: list[str], first_id: int, config: Config) -> DataFrame:
        """The tasks that load the files under `uris`, read by Spark, numbered from
        `first_id` in the order of their names."""
        try:
            found = (self.spark.read.format("binaryFile").option("recursiveFileLookup", "true")
                     .load([hadoop_path(u) for u in uris]))
            listed = sorted(row[0] for row in found.select("path").collect())
        except AnalysisException as error:  # no such path, no file system for the scheme
            reason = str(error).splitlines()[0].split(" SQLSTATE")[0]
            raise InputError(f"{', '.join(uris)}: Spark cannot list it: {reason}") from None
        if not listed:
            raise InputError(f"no files under {', '.join(uris)}")
        ids = {path: first_id + index for index, path in enumerate(listed)}
        return found.select("path", "content").mapInArrow(
            functools.partial(load_uris, ids, config), from_arrow_schema(LOADED))

    def _extras(self) -> tuple[list[dict[str, Any]], dict[tuple[int, int], int]]:
        """The load tasks' rows of each file (or range), their rejects and line offsets
        put in the local tables. Those of a range after a file's first are numbered from
        its start until the lines before it are known: they are held under a file_id of
        their own (negative), given for each (file_id, start)."""
        files: list[dict[str, Any]] = []
        ranges: dict[tuple[int, int], int] = {}
        for file_id, start, extra in self.spark.sql(
                "SELECT file_id, start, extra FROM sw_loaded WHERE extra IS NOT NULL"
        ).toLocalIterator():
            table = pa.ipc.open_stream(extra).read_all()
            name = table.schema.metadata[b"table"].decode()
            if name == "files":
                files += table.to_pylist()
            elif start:
                held = ranges.setdefault((file_id, start), -1 - len(ranges))
                insert_arrow(self.local, name, table, f"* REPLACE ({held} AS file_id)")
            else:
                insert_arrow(self.local, name, table)
        return files, ranges

    def keep_files(self, kept: Sequence[tuple[int, LoadedFile]], *,
                   every_part: bool = False) -> None:
        """`activity_parts` unpacks the parts of the entities whose posts reach the watch
        level: detection's candidates, found from a row an entity and file. It unpacks
        them all with `every_part`, when organisations, which merge entities, are
        configured, or when more than CANDIDATES_MAX entities reach it (the unpacking
        tasks are sent them)."""
        keep_local_files(self.local, kept)
        self.put("files", files_table(kept))
        loaded = "sw_loaded WHERE file_id IN (SELECT file_id FROM files)"
        candidates = None
        if self.watch_level is not None and not every_part:
            found = self.spark.sql(f"""
                SELECT entity_kind, entity FROM {loaded} AND total_posts IS NOT NULL
                GROUP BY entity_kind, entity HAVING sum(total_posts) >= {self.watch_level}
                LIMIT {CANDIDATES_MAX + 1}""").toArrow()
            if len(found) <= CANDIDATES_MAX:
                candidates = {kind: found.filter(pc.equal(found["entity_kind"], kind))["entity"]
                              for kind in pc.unique(found["entity_kind"]).to_pylist()}
        self.keep("activity_parts", self.spark.sql(
            f"SELECT file_id, start, parts FROM {loaded} AND parts IS NOT NULL").mapInArrow(
            functools.partial(unpack, candidates, self.shifts), from_arrow_schema(PARTS)))
        # the other entities' parts stay packed: their totals are the loaded rows'
        self.totals = None if candidates is None else (
            f"SELECT entity_kind, entity, total_posts AS posts, total_requests AS requests "
            f"FROM {loaded} AND total_posts IS NOT NULL")

    def top_entities(self, parts: str, count: int) -> list[tuple[str, str, int, int]]:
        return top_entities(self.rows, parts if self.totals is None else self.totals, count)

    def rejects(self) -> Iterator[tuple[str, int, str, str]]:
        return rejects_of(self.local)

    def use_parts(self, parts: str, files: str) -> tuple[str, str]:
        """Every one of the parts reaches Spark as Parquet in a temp folder, which the
        executors must be able to read (local mode, or a temp folder on a shared file
        system)."""
        with tempfile.TemporaryDirectory(prefix="scrapewatch-") as folder:
            target = Path(folder) / "parts.parquet"
            run(self.local, f"COPY ({parts}) TO '{_sql_text(str(target))}' (FORMAT parquet)")
            self.keep("activity_parts", self.spark.read.parquet(hadoop_path(str(target))))
        self.put("files", self.local.sql(f"SELECT file_id, path, sha256 FROM {files}")
                 .to_arrow_table())
        return ALL_PARTS, "files"

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.spark.sql(sql).collect()]

    def create(self, name: str, sql: str) -> None:
        self.keep(name, self.spark.sql(sql))

    def keep(self, name: str, frame: DataFrame) -> None:
        """Materialise `frame` on the executors' disks as temp view `name`. A local
        checkpoint, not a cache: the view's plan then no longer holds how the rows were
        made, which every later query would otherwise carry and re-optimise (megabytes
        of plan once parsing, activity and evidence stack up). On disk, not in memory:
        the loaded rows' blobs held in a local session's 1 GiB heap ran it out of heap
        at 50 M lines, and are no slower read back from disk (the page cache)."""
        if name in self.kept:
            self.kept.pop(name).unpersist()
        frame = frame.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
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
        """Let go of every kept table's rows, and its name."""
        for name, frame in self.kept.items():
            frame.unpersist()
            self.spark.catalog.dropTempView(name)
        self.kept.clear()


def _cores(spark: SparkSession) -> int:
    """The cores of the cluster (Spark's default parallelism); 8 through Spark Connect,
    which does not tell."""
    try:
        return int(spark.sparkContext.defaultParallelism)
    except NotImplementedError:  # Spark Connect: no SparkContext
        return 8


def _arrow_batches(frame: DataFrame) -> Iterator[pa.RecordBatch]:
    """The rows of `frame`, streamed to the driver in record batches: each task's
    batches as Arrow IPC streams, in the frame's order, a partition at a time."""
    streams = frame.mapInArrow(_as_ipc, "ipc binary")
    for (stream,) in streams.toLocalIterator(prefetchPartitions=True):
        yield from pa.ipc.open_stream(stream)


def _as_ipc(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """On an executor: each of `batches` as a row holding it as an Arrow IPC stream."""
    for batch in batches:
        yield pa.RecordBatch.from_arrays(
            [pa.array([ipc_stream(pa.Table.from_batches([batch]))], pa.binary())],
            names=["ipc"])


def hadoop_path(name: str) -> str:
    """A file for Spark's readers, its glob characters escaped: they would match."""
    return re.sub(r"([\\\[\]{}*?])", r"\\\1", name)


def _sql_text(text: str) -> str:
    """`text` inside a SQL string literal."""
    return text.replace("'", "''")
