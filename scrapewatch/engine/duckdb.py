"""Detection on DuckDB, in this process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa

from scrapewatch.sql import run

BATCH_ROWS = 65_536


class DuckDBEngine:
    """Detection on a DuckDB connection. With `consume`, `activity_parts` is emptied once
    read, freeing its memory for the windows (a scan's parts, not a store's)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, consume: bool = False) -> None:
        self.con = con
        self.consume = consume
        self.created: set[str] = set()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return run(self.con, sql)

    def batches(self, sql: str) -> Iterator[pa.RecordBatch]:
        yield from self.con.sql(sql).to_arrow_reader(BATCH_ROWS)

    def create(self, name: str, sql: str) -> None:
        run(self.con, f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        self.created.add(name)

    def put(self, name: str, table: pa.Table) -> None:
        self.con.register(f"{name}_rows", table)
        try:
            self.create(name, f"SELECT * FROM {name}_rows")
        finally:
            self.con.unregister(f"{name}_rows")

    def parts_read(self) -> None:
        if self.consume:
            run(self.con, "DELETE FROM activity_parts")

    def release(self) -> None:
        """Drop the tables detection made, freeing their memory for the report files."""
        for name in sorted(self.created):
            run(self.con, f"DROP TABLE IF EXISTS {name}")
        self.created.clear()
