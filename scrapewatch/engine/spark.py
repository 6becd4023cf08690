"""Detection on Spark: the statements of detect/windows.py run unchanged as Spark SQL;
only the flagged entities' activity and evidence come back to the driver, where
damages.py prices them in batches (see report.findings)."""

from __future__ import annotations

import itertools
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

BATCH_ROWS = 65_536


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
    """Detection's statements on a Spark session; a created table is a view of rows
    checkpointed on the executors."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.kept: dict[str, DataFrame] = {}

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
        frame = self.spark.sql(sql)
        names = frame.columns
        rows = frame.toLocalIterator(prefetchPartitions=True)
        while chunk := list(itertools.islice(rows, BATCH_ROWS)):
            yield pa.RecordBatch.from_pylist([dict(zip(names, row, strict=True))
                                              for row in chunk])

    def release(self) -> None:
        """Let go of every kept table's rows."""
        for frame in self.kept.values():
            frame.unpersist()
        self.kept.clear()

