"""Where detection runs. Its SQL is written once (detect/windows.py, the queries of
report/findings.py) and its damages policy once (damages.py); an engine runs the SQL.

DuckDB (engine/duckdb.py) runs the statements in-process; Spark (engine/spark.py) runs
the same statements on a cluster. Either way, the flagged entities' activity and
evidence then stream to a local DuckDB connection, where they are priced in batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pyarrow as pa


class Engine(Protocol):
    """What detection needs of an SQL engine."""

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
