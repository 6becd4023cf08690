"""The store's DuckDB file: its tables, opening it to write (one process at a time, by
DuckDB's file lock), the settings its activity was read with, and the read-only,
sandboxed connection `sql` gets."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from scrapewatch.config import Config
from scrapewatch.engine.duckdb import connect, engine_error
from scrapewatch.errors import ConfigError, InputError, SandboxError, StoreBusyError, StoreError
from scrapewatch.reading.loaded import Counts
from scrapewatch.schema import TABLES_SQL
from scrapewatch.sql import WORK, insert_arrow, run

COUNTS = [f.name for f in fields(Counts)]  # a column of the manifest each
STORE_SQL = TABLES_SQL + """
CREATE TABLE IF NOT EXISTS store_info (key VARCHAR PRIMARY KEY, value VARCHAR);
-- Per ingested file (or new part of a grown one): what of its content it covers.
CREATE TABLE IF NOT EXISTS manifest (
    file_id INTEGER PRIMARY KEY, run_id INTEGER, ingested_at TIMESTAMPTZ,
    head_bytes INTEGER, head_sha256 VARCHAR, content_sha256 VARCHAR, content_start BIGINT,
    content_end BIGINT, first_line BIGINT, complete BOOLEAN, first_request BIGINT,
    last_request BIGINT);
-- its requests' Counts (reading.read), NULL in a store made before they were kept
{counts}
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY, command VARCHAR, started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ, files_added INTEGER, files_skipped INTEGER, lines BIGINT,
    rejected BIGINT, findings INTEGER, damages_usd DECIMAL(20, 2));
CREATE TABLE IF NOT EXISTS findings (
    run_id INTEGER, entity_kind VARCHAR, entity VARCHAR, total_posts BIGINT,
    peak_24h_posts BIGINT, peak_start TIMESTAMPTZ, first_crossing_at TIMESTAMPTZ,
    periods INTEGER, damages_usd DECIMAL(20, 2));
CREATE TABLE IF NOT EXISTS periods (
    run_id INTEGER, entity_kind VARCHAR, entity VARCHAR, period_start TIMESTAMPTZ,
    period_end TIMESTAMPTZ, posts BIGINT, requests BIGINT, damages_usd DECIMAL(20, 2));
CREATE OR REPLACE VIEW activity AS
    SELECT entity_kind, entity, to_timestamp(sec) AS second, sec,
           sum(posts)::BIGINT AS posts, sum(requests)::BIGINT AS requests,
           sum(observed_posts)::BIGINT AS observed_posts
    FROM activity_parts GROUP BY entity_kind, entity, sec;
""".replace("{counts}", "".join(
    f"ALTER TABLE manifest ADD COLUMN IF NOT EXISTS {name} BIGINT;\n" for name in COUNTS))

VIEWS = {
    "files": "every file ingested: path, format, SHA-256, size, lines, rejected, requests",
    "manifest": "per file: the content it covers (hashes, byte range, first line), when",
    "activity": "counted posts and requests per (entity_kind, entity, second)",
    "requests": "every parsed request with its file and line (ingest --keep-requests)",
    "rejects": "every rejected line: file, line number, reason, text",
    "runs": "the history of ingest and report runs",
    "findings": "the flagged entities of each report run",
    "periods": "the charged periods of each report run",
}


@contextlib.contextmanager
def open_store(path: Path, *, wait_s: float = 0, memory_limit: str | None = None,
               create: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A scan's in-memory connection with the store at `path` attached, for writing, as
    `store` (created when `create`: by ingest, not by a mistyped report path).

    DuckDB failures of the work done with it that the user can act on (the store
    corrupt or its disk full, the temp folder full) come out as one-line errors naming
    the file or folder (see `engine_error`).

    Raises:
        StoreBusyError: when another process holds the store for `wait_s` seconds.
        InputError: when there is no store at `path`.
        StoreError: when `path` is not a readable scrapewatch store, or cannot be written.
        TempFolderError: when DuckDB's temp folder fills up.
    """
    if not create and not path.exists():
        raise InputError(f"{path}: no such store; `scrapewatch ingest` creates one")
    con = connect(memory_limit=memory_limit)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                run(con, "ATTACH $path AS store", {"path": str(path)})
                break
            except duckdb.Error as exc:
                if not isinstance(exc, duckdb.IOException) or "lock" not in str(exc).lower():
                    text = " ".join(str(exc).split())
                    raise engine_error(exc, store=path) or StoreError(
                        f"{path}: cannot open the store ({text[:200]})") from exc
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"{path}: another process has this store open; try again when it "
                        f"has finished, or pass --wait SECONDS") from None
                time.sleep(0.25)
        # a DuckDB file of other tables is someone else's database: write nothing into it
        tables = sorted(name for (name,) in run(
            con, "SELECT table_name FROM duckdb_tables() WHERE database_name = 'store'"))
        if tables and "manifest" not in tables:
            raise StoreError(f"{path}: not a scrapewatch store: it holds other tables "
                             f"({', '.join(tables[:3])}); give a store that `scrapewatch "
                             "ingest` made, or a new path")
        run(con, "USE store")
        run(con, STORE_SQL)
        run(con, f"USE {WORK}")
        yield con
    except duckdb.Error as exc:
        failure = engine_error(exc, store=path)
        if failure is None:
            raise
        raise failure from exc
    finally:
        con.close()


@contextlib.contextmanager
def read_store(path: Path, *, allow_files: Path | None = None
               ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the store at `path` (while nothing writes it) that sees
    the store only: no other file is read or written (but those under the folder
    `allow_files`, when given), no extension is installed or loaded, and its settings are
    locked, so no statement can undo that.

    Raises:
        InputError: when there is no store at `path`.
        StoreBusyError: when another process is writing it.
    """
    if not path.exists():
        raise InputError(f"{path}: no such store; `scrapewatch ingest` creates one")
    # DuckDB may write (and so read back) its temp folder: a private one, not the
    # default `<store>.tmp` beside the store
    spill = tempfile.mkdtemp(prefix="scrapewatch-sql-")
    try:
        con = _connect_read_only(path, spill)
        try:
            _sandbox(con, allow_files)
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def _connect_read_only(path: Path, spill: str) -> duckdb.DuckDBPyConnection:
    # nothing is installed or loaded behind a query's back, from the first statement on
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False, "autoload_known_extensions": False,
        "temp_directory": spill}
    try:
        return duckdb.connect(str(path), read_only=True, config=config)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StoreBusyError(f"{path}: another process is writing this store; try "
                                 "again when it has finished") from None
        raise InputError(f"{path}: cannot open the store ({exc})") from exc
    except duckdb.Error as exc:
        raise InputError(f"{path}: not a scrapewatch store ({exc})") from exc


def _sandbox(con: duckdb.DuckDBPyConnection, allow_files: Path | None) -> None:
    """Close the open store's connection to everything else, in the order DuckDB needs:
    allowed_directories can only be set while external access is on, and nothing can be
    set once the configuration is locked."""
    run(con, "SET TimeZone = 'UTC'")
    if allow_files is not None:
        # DuckDB ends the folder with a separator (so `DIR-other` is not in it) and
        # resolves symlinks and `..` of the paths it is given before comparing
        run(con, "SET allowed_directories = [$dir]", {"dir": str(allow_files.resolve())})
    run(con, "SET enable_external_access = false")
    run(con, "SET lock_configuration = true")


def settings_of(config: Config) -> dict[str, Any]:
    """The settings that decide what a request's activity is: ingests into one store must
    share them, and a report must use them (its policy may differ otherwise)."""
    entity = asdict(config.entity)
    del entity["allow"], entity["organisations"]  # these only change what is reported
    return {"entity": entity,
            "posts": {"default": config.posts.default,
                      "rules": [asdict(r) for r in config.posts.rules]},
            "count_statuses": config.policy.count_statuses,
            "effective_from": config.policy.effective_from.isoformat(),
            "fields": config.input.fields}


def check_settings(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Raise ConfigError when `config` reads requests otherwise than the store's ingests
    did (an empty store takes the settings of the first file added to it)."""
    rows = run(con, "SELECT value FROM store.store_info WHERE key = 'settings'")
    if not rows:
        return
    stored = _by_key(json.loads(rows[0][0]))
    wanted = _by_key(json.loads(json.dumps(settings_of(config))))
    changed = [f"{key} is {_shown(stored.get(key))} in the store, {_shown(value)} here"
               for key, value in wanted.items() if stored.get(key) != value]
    if changed:
        raise ConfigError(
            f"this store was filled with other settings: {'; '.join(changed)}; use the "
            "store's (the entity and posts settings, count_statuses, effective_from and "
            "input.fields decide what a request counts), or ingest into a new store")


def _by_key(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings_of`'s settings (as a store holds them) by their config keys."""
    sections = {"count_statuses": "policy", "effective_from": "policy", "fields": "input"}
    flat = {}
    for name, value in settings.items():
        if name in ("entity", "posts") and isinstance(value, dict):
            flat.update({f"{name}.{key}": inner for key, inner in value.items()})
        else:
            flat[f"{sections.get(name, 'store')}.{name}"] = value
    return flat


def _shown(value: Any) -> str:
    """A setting's value in an error: JSON, cut short past 60 characters."""
    text = json.dumps(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def next_id(con: duckdb.DuckDBPyConnection, table: str, column: str) -> int:
    """The id after the largest `column` of `table` (1 for an empty table)."""
    return int(run(con, f"SELECT coalesce(max({column}), 0) + 1 FROM {table}")[0][0])


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple[Any, ...]],
                select: str) -> None:
    """Insert `rows` into `table` through `select`, which names their columns c0, c1..."""
    if not rows:
        return
    insert_arrow(con, table, pa.table({f"c{i}": column for i, column in
                                       enumerate(map(list, zip(*rows, strict=True)))}), select)


# DuckDB's words when the sandbox stops a statement
_FILE_REFUSED = re.compile(r'Cannot access (?:file|directory) "(.*)" - file system '
                           r"operations are disabled")
_SETTING_LOCKED = re.compile(r'Cannot change configuration option "(.*)" - the '
                             r"configuration has been locked")
_FOLDER_FLAG = "--allow-files DIR opens one folder for files"


def refuse_statements(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse ATTACH, INSTALL and LOAD before anything runs: the sandbox stops most of
    them, but not all (an extension built into DuckDB loads; the store attaches again)."""
    for statement in con.extract_statements(sql):
        if statement.type == duckdb.StatementType.ATTACH:
            raise SandboxError("ATTACH is not allowed: sql sees only the store "
                               f"({_FOLDER_FLAG}, not for ATTACH)")
        if statement.type == duckdb.StatementType.LOAD:
            raise SandboxError("INSTALL and LOAD of extensions are not allowed: sql sees "
                               f"only the store ({_FOLDER_FLAG}, nothing more)")


def refusal(exc: duckdb.Error, allow_files: Path | None) -> str | None:
    """The one-line refusal for an error the sandbox caused, or None for another error."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, duckdb.PermissionException):
        where = (f"sql sees only the store and {allow_files.resolve()} (--allow-files)"
                 if allow_files is not None else f"sql sees only the store; {_FOLDER_FLAG}")
        found = _FILE_REFUSED.search(text)
        return (f'reading or writing "{found[1]}" is not allowed: {where}' if found
                else f"{text}: {where}")
    if locked := _SETTING_LOCKED.search(text):
        return (f'changing the setting "{locked[1]}" is not allowed: the settings of sql '
                f"are locked so that it sees only the store ({_FOLDER_FLAG})")
    return None
