"""DuckDB in this process: the connection every scan and store uses, what its failures
mean, and detection on it."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from scrapewatch.config import Config
from scrapewatch.entities import create_macros
from scrapewatch.errors import ScrapewatchError, StoreError, TempFolderError
from scrapewatch.reading.loaded import LoadedFile, Progress
from scrapewatch.reading.read import load_path
from scrapewatch.schema import FILE_TABLES, WORK_TABLES_SQL
from scrapewatch.sql import WORK, insert_arrow, run

BATCH_ROWS = 65_536  # rows of a batch that leaves an engine


# DuckDB's share of a scan's memory; the rest (Python, blocks in flight) is about 300 MB.
# Past it, DuckDB spills to the temporary folder, so memory stays flat as inputs grow.
DEFAULT_MEMORY_LIMIT = "512MB"


def connect(*, memory_limit: str | None = None, temp_directory: str | None = None
            ) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection set up for scrapewatch: UTC, spilling to disk when needed, its
    tables in the database WORK (see `sql.cursor` for more connections to it).

    WORK is in memory and compressed: a scan's activity parts (about one per request
    in API traffic) take a quarter of the room, so that far fewer of them spill to disk
    past the memory limit (see WORK_TABLES_SQL, and read._Loaders for the compression
    methods while loading).
    """
    settings: dict[str, str | bool | int | float | list[str]] = {
        "preserve_insertion_order": False,
        "temp_directory": temp_directory or tempfile.gettempdir(),
        "memory_limit": memory_limit or DEFAULT_MEMORY_LIMIT}
    con = duckdb.connect(":memory:", config=settings)
    run(con, "SET TimeZone = 'UTC'")
    run(con, f"ATTACH ':memory:' AS {WORK} (COMPRESS)")
    run(con, f"USE {WORK}")
    run(con, WORK_TABLES_SQL)
    create_macros(con)
    return con


# A DuckDB write that the operating system refused: the file and the cause.
_WRITE_FAILED = re.compile(r'Could not write (?:to )?file "([^"]+)": ([^.;]+)')
# What DuckDB says of a database file or WAL it cannot make sense of.
_UNREADABLE = re.compile(r"Corrupt database file|Corrupt WAL file|replaying WAL|"
                         r"not a valid DuckDB database file|Could not read enough bytes")


def engine_error(error: BaseException, *, store: Path | None = None
                 ) -> ScrapewatchError | None:
    """What a DuckDB failure of a `connect`ion means, as a one-line error naming the
    folder or file: its temp folder full or not writable while spilling past the memory
    limit, or (given the `store` it has attached) the store unreadable or unwritable.
    None for any other failure: that one is a bug.
    """
    if not isinstance(error, duckdb.Error):
        return None
    text = " ".join(str(error).split())
    temp = tempfile.gettempdir()  # connect's temp_directory
    if isinstance(error, duckdb.OutOfMemoryException):
        # its temp files have reached the free space of their disk: DuckDB says so when
        # it cannot offload a block, but another allocation may fail first
        if "offload" in text or _free_bytes(temp) < TEMP_FULL_BYTES:
            return TempFolderError(
                f"DuckDB's temp folder {temp} is full: work past the memory limit spills "
                "there; free space in it, set TMPDIR to a folder with more room, or raise "
                "--memory-limit")
        return TempFolderError(
            f"DuckDB ran out of memory: raise --memory-limit (past it, DuckDB spills what it "
            f"can to its temp folder {temp}: check that it is writable and has free space)")
    written = _WRITE_FAILED.search(text)
    if written and store is not None and written[1] in (os.path.abspath(store),
                                                        os.path.abspath(store) + ".wal"):
        return StoreError(f"{store}: cannot write the store: {written[2]}; it keeps what "
                          "was added before this failure: free space and run again")
    if written and os.path.basename(written[1]).startswith("duckdb_temp"):
        return TempFolderError(
            f"cannot write DuckDB's temp folder {os.path.dirname(written[1])}: {written[2]}; "
            "free space in it, set TMPDIR to another folder, or raise --memory-limit")
    if store is not None and _UNREADABLE.search(text):
        return StoreError(f"{store}: not a readable scrapewatch store ({text[:200]}); "
                          "restore it from a copy, or ingest into a new store")
    return None


# Less free space than this in the temp folder, at an out-of-memory error, is a full
# temp folder: a few of DuckDB's blocks (256 KiB) no longer fit.
TEMP_FULL_BYTES = 1 << 20


def _free_bytes(folder: str) -> int:
    """The free space of the disk of `folder` (a lot, when it cannot be told)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62


class DuckDBEngine:
    """Loading and detection on a DuckDB connection (from `connect`). With `consume`,
    `activity_parts` is emptied once read, freeing its memory for the windows (a scan's
    parts, not a store's); with `keep_requests`, the load keeps every request in the
    `requests` table (with its file and line number)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, consume: bool = False,
                 keep_requests: bool = False) -> None:
        self.con = con
        self.consume = consume
        self.keep_requests = keep_requests
        self.created: set[str] = set()

    def load(self, paths: Sequence[str], config: Config, progress: Progress | None
             ) -> list[LoadedFile]:
        loads = []
        for file_id, name in enumerate(paths):
            loads.append(load_path(self.con, Path(name), file_id=file_id, config=config,
                                   name=name, progress=progress, count=len(paths),
                                   keep_requests=self.keep_requests))
        if progress:
            progress.finish()
        return loads

    def keep_files(self, kept: Sequence[tuple[int, LoadedFile]], *,
                   every_part: bool = False) -> None:
        keep_local_files(self.con, kept)  # every part: the load's table

    def rejects(self) -> Iterator[tuple[str, int, str, str]]:
        return rejects_of(self.con)

    def use_parts(self, parts: str, files: str) -> tuple[str, str]:
        return parts, files

    def top_entities(self, parts: str, count: int) -> list[tuple[str, str, int, int]]:
        return top_entities(self.rows, parts, count)

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


def keep_local_files(con: duckdb.DuckDBPyConnection, kept: Sequence[tuple[int, LoadedFile]]
                     ) -> None:
    """Keep only the rows of the files `kept` (file_id, load) in the tables of `con` (see
    `connect`), and add these files to its `files` table."""
    ids = [file_id for file_id, _ in kept]
    for table in FILE_TABLES:
        run(con, f"DELETE FROM {table} WHERE NOT list_contains($ids, file_id)", {"ids": ids})
    insert_arrow(con, "files", files_table(kept))


def top_entities(rows: Callable[[str], list[tuple[Any, ...]]], parts: str, count: int
                 ) -> list[tuple[str, str, int, int]]:
    """The `count` entities with the most posts in the parts (or rows of entity_kind,
    entity, posts, requests) `parts` selects, with an engine's `rows`: kind, entity,
    posts, requests; ties by requests, then name."""
    return [(kind, entity, int(posts), int(requests)) for kind, entity, posts, requests in rows(
        f"""SELECT entity_kind, entity, CAST(sum(posts) AS BIGINT) AS posts,
                   CAST(sum(requests) AS BIGINT) AS requests
            FROM ({parts}) p GROUP BY entity_kind, entity
            ORDER BY posts DESC, requests DESC, entity_kind, entity LIMIT {int(count)}""")]


def files_table(kept: Sequence[tuple[int, LoadedFile]]) -> pa.Table:
    """The `files` table (schema.TABLES_SQL) of the loads `kept` (file_id, load)."""
    loads = [load.load for _, load in kept]
    return pa.table({
        "file_id": pa.array([file_id for file_id, _ in kept], pa.int32()),
        "path": pa.array([load.path for _, load in kept], pa.string()),
        "format": pa.array([load.format for load in loads], pa.string()),
        "sha256": pa.array([load.sha256 for load in loads], pa.string()),
        "size": pa.array([load.size for _, load in kept], pa.int64()),
        "lines": pa.array([load.lines for load in loads], pa.int64()),
        "rejected": pa.array([load.rejected for load in loads], pa.int64()),
        "requests": pa.array([load.requests for load in loads], pa.int64())})


def rejects_of(con: duckdb.DuckDBPyConnection, tables: str = ""
               ) -> Iterator[tuple[str, int, str, str]]:
    """Every rejected line, by file and line number; `tables` prefixes the names of the
    rejects and files tables (`store.`)."""
    reader = con.sql(f"SELECT f.path, r.line_no, r.reason, r.text FROM {tables}rejects r "
                     f"JOIN {tables}files f USING (file_id) ORDER BY r.file_id, r.line_no"
                     ).to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        yield from zip(*(batch.column(i).to_pylist() for i in range(4)), strict=True)
