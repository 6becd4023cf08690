"""Where a run's work happens. The parse is written once (reading/), detection's SQL
once (detect/windows.py, the queries of reporting/findings.py) and the damages policy
once (damages/); an engine runs them.

DuckDB (engine/duckdb.py) loads the files and runs the statements in this process;
Spark (engine/spark.py) loads each file in a task on an executor (the same load, on a
DuckDB connection of the task's own) and runs the same statements on the cluster.
Either way, the flagged entities' activity and evidence then stream to a local DuckDB
connection, where they are priced in batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from scrapewatch.config import Config
from scrapewatch.reading.loaded import LoadedFile, Progress

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import SparkSession


class Engine(Protocol):
    """What a run needs of an engine: loading files, and detection's SQL."""

    def load(self, paths: Sequence[str], config: Config, progress: Progress | None
             ) -> list[LoadedFile]:
        """Load the files `paths` (file_id: their position) into the activity parts,
        rejects and line offsets; what each load found, in that order.

        Raises:
            InputError, FormatError: the first file's (in order) that cannot be read.
        """

    def keep_files(self, kept: Sequence[tuple[int, LoadedFile]], *,
                   every_part: bool = False) -> None:
        """Keep only the rows of the files `kept` (file_id, load): the others are
        copies. They make the `files` table (file_id, path, sha256). `activity_parts`
        then holds at least the parts of the entities that reach the watch level;
        with `every_part`, all of them (to count them)."""

    def top_entities(self, parts: str, count: int) -> list[tuple[str, str, int, int]]:
        """The `count` entities with the most posts among the activity parts `parts`
        selects (see engine.duckdb.top_entities), before detection reads them."""

    def rejects(self) -> Iterator[tuple[str, int, str, str]]:
        """Every rejected line of the kept files: path, line number, reason, text; by
        file and line."""

    def use_parts(self, parts: str, files: str) -> tuple[str, str]:
        """Have detection read the activity parts that `parts` selects and the files of
        the table `files` on the local connection (a store's): how it then reads them on
        this engine (the parts' query, the files' table)."""

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """All rows of a query."""

    def batches(self, sql: str) -> Iterator[pa.RecordBatch]:
        """The rows of a query, streamed in record batches."""

    def create(self, name: str, sql: str) -> None:
        """Make temp table `name` hold the rows of `sql` (replacing it)."""

    def put(self, name: str, table: pa.Table) -> None:
        """Make temp table `name` hold `table` (replacing it)."""

    def parts_read(self) -> None:
        """Called once `activity` and `evidence` are built: the parts may go."""

    def release(self) -> None:
        """Let go of every table detection made (its rows are in the findings now)."""


def engine_for(local: duckdb.DuckDBPyConnection, spark: SparkSession | None = None, *,
               consume: bool = False, keep_requests: bool = False) -> Engine:
    """The engine of a run, the one place it is chosen: Spark's on the session `spark`,
    else DuckDB's on the local connection `local` (see engine.duckdb.connect), which
    either way holds the files' counts, rejects and line offsets. `consume` and
    `keep_requests` are DuckDB's (see DuckDBEngine)."""
    if spark is None:
        from scrapewatch.engine.duckdb import DuckDBEngine

        return DuckDBEngine(local, consume=consume, keep_requests=keep_requests)
    from scrapewatch.engine.spark import SparkEngine

    return SparkEngine(spark, local)
