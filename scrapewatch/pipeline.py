"""The wiring of a scan: files -> requests -> activity -> windows -> periods -> report."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa

from scrapewatch.config import Config, config_json, load_config
from scrapewatch.detect.windows import ALL_PARTS, entity_windows
from scrapewatch.engine import Engine
from scrapewatch.engine.duckdb import DuckDBEngine
from scrapewatch.entities import create_macros
from scrapewatch.errors import (
    EmptyInputError,
    RejectLimitError,
    ScrapewatchError,
    StoreError,
    TempFolderError,
)
from scrapewatch.organisations import Organisations
from scrapewatch.posts import check_rules
from scrapewatch.reading.formats import get_format
from scrapewatch.reading.read import FileLoad, load_file
from scrapewatch.reading.sources import DuplicateInput, LogSource, SkippedInput, list_inputs
from scrapewatch.reporting.files import out_folder, write_rejects
from scrapewatch.reporting.findings import Found, find
from scrapewatch.reporting.model import FileSummary, Report
from scrapewatch.reporting.outputs import write_out_dir
from scrapewatch.reporting.privacy import pseudonymised, redacted
from scrapewatch.schema import FILE_TABLES, WORK_TABLES_SQL
from scrapewatch.sql import WORK, cursor, run


class Progress(Protocol):
    """Receives progress of long work; the CLI draws it, tests may ignore it."""

    def start_file(self, path: Path, size: int, index: int, count: int) -> None: ...

    def advance(self, bytes_read: int, lines: int, fmt: str) -> None: ...

    def finish(self) -> None: ...


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


def scan(paths: Sequence[str], *, config: Config | None = None, out: Path | None = None,
         now: datetime | None = None, progress: Progress | None = None,
         memory_limit: str | None = None, keep_requests: bool = False,
         pseudonym_key: bytes | None = None) -> Report:
    """Read every log under `paths`, detect violations and total the damages, under
    `config` (the defaults when None).

    Writes report.json, entities.csv, periods.csv and rejects into `out` when given.
    With `keep_requests`, the connection's `requests` table keeps every request (with
    its file and line number) while the scan runs; it is off by default to bound memory.
    With `pseudonym_key`, entities are pseudonyms in the report and its files, and
    rejected lines are written without their text.

    Raises:
        InputError, FormatError, ConfigError: on unreadable inputs or invalid settings.
        RejectLimitError: when more than `input.max_rejected_share` of lines is
            rejected (after writing `out/rejects`).
    """
    config = config or load_config()
    inputs = list_inputs(paths, allow_empty=config.input.allow_empty)
    if config.input.format != "auto":
        get_format(config.input.format)  # fail on a bad name before reading anything
    con = connect(memory_limit=memory_limit)
    check_rules(con, config.posts.rules)
    loads, copies = _load_all(con, inputs.files, config, progress, keep_requests)
    if progress:
        progress.finish()
    summaries = [summary for summary, _ in loads]
    check_lines(summaries, config)
    check_rejects(summaries, config, out, lambda: rejects_of(con),
                  redact=pseudonym_key is not None)
    engine = DuckDBEngine(con, consume=True)
    with cursor(con) as db:
        detected = detect(engine, db, config, quote=pseudonym_key is None)
    engine.release()
    report = build_report(config, summaries, [(load.first_request, load.last_request)
                                             for _, load in loads], detected, now,
                         duplicates=inputs.duplicates + copies, skipped=inputs.skipped)
    return finish(report, out, rejects_of(con) if report.rejected else None, pseudonym_key)


def build_report(config: Config, files: list[FileSummary],
                spans: list[tuple[int | None, int | None]], detected: Found,
                now: datetime | None, *, duplicates: Sequence[DuplicateInput] = (),
                skipped: Sequence[SkippedInput] = ()) -> Report:
    """The report of a run, the one place it is made (scan on either engine, a store's
    report): its files, the first and last request of them all (from each file's, or
    each range's, first and last, None when it has none), what detection found, and
    the inputs set aside as `duplicates` or `skipped`."""
    firsts = [first for first, _ in spans if first is not None]
    lasts = [last for _, last in spans if last is not None]
    return Report(generated_at=(now or datetime.now(UTC)).astimezone(UTC),
                  policy=config.policy, files=files,
                  first_request_at=min(firsts, default=None),
                  last_request_at=max(lasts, default=None),
                  findings=detected.findings, watchlist=detected.watchlist,
                  allowed=detected.allowed, config=config_json(config),
                  totals=detected.totals,
                  duplicates=list(duplicates), skipped=list(skipped))


def check_lines(files: Sequence[FileSummary], config: Config) -> None:
    """Raise EmptyInputError when `files` hold no line at all (a nightly job reading an
    unmounted disk must not pass as a clean run), unless `input.allow_empty`."""
    if not config.input.allow_empty and not any(f.lines for f in files):
        raise no_lines_error([f.path for f in files])


def no_lines_error(paths: Sequence[str]) -> EmptyInputError:
    """The error for inputs `paths` that hold no line."""
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return EmptyInputError(f"the inputs hold no lines: {shown or 'no file'}; pass "
                           "--allow-empty (input.allow_empty) if that is expected")


def finish(report: Report, out: Path | None, rejects: Iterator[tuple[str, int, str, str]] | None,
           pseudonym_key: bytes | None) -> Report:
    """Pseudonymise `report` when asked, and write `out` (rejects without their text when
    pseudonymised: a log line shows the entity) as one set, swapped in whole.

    Raises:
        OutputError: when `out` cannot be written (the previous set is kept).
    """
    if pseudonym_key is not None:
        report = pseudonymised(report, pseudonym_key)
        rejects = None if rejects is None else redacted(rejects)
    if out is not None:
        write_out_dir(report, out, rejects)
    return report


def detect(engine: Engine, db: duckdb.DuckDBPyConnection, config: Config,
           parts: str = ALL_PARTS, *, files: str = "files", offsets: str = "line_offsets",
           quote: bool = True) -> Found:
    """Detection over the activity parts `parts` selects (see `entity_windows`), with
    the evidence of each charged period from the engine's `files` table (its edge lines
    quoted unless the report is to be pseudonymised, helped by `db`'s `offsets`
    table); `db` is a local DuckDB connection where the flagged entities are priced
    (see report.findings)."""
    members: dict[str, list[str]] = {}
    if config.entity.organisations:
        parts, members = _merge_organisations(engine, Path(config.entity.organisations), parts)
    entity_windows(engine, config.policy, parts)
    return find(engine, db, config, members=members, files=files, offsets=offsets,
                quote=quote)


def _merge_organisations(engine: Engine, mapping: Path, parts: str
                         ) -> tuple[str, dict[str, list[str]]]:
    """`parts` with each organisation's members as one entity of kind `org`, and each
    organisation's members (`kind:entity`). Members are found among the distinct
    entities of the activity, in Python; the merge is a join."""
    orgs = Organisations.load(mapping)
    found = [(kind, entity, org) for kind, entity in engine.rows(
                 f"SELECT DISTINCT entity_kind, entity FROM ({parts}) d")
             if (org := orgs.org_of(kind, entity)) is not None]
    engine.put("org_map", pa.table({name: pa.array([row[i] for row in found], pa.string())
                                    for i, name in enumerate(("entity_kind", "entity", "org"))}))
    members: dict[str, list[str]] = {}
    for kind, entity, org in sorted(found):
        members.setdefault(org, []).append(f"{kind}:{entity}")
    merged = f"""SELECT CASE WHEN m.org IS NULL THEN p.entity_kind ELSE 'org' END AS entity_kind,
               coalesce(m.org, p.entity) AS entity, p.sec, p.posts, p.requests, p.observed_posts,
               p.file_id, p.first_line, p.last_line
        FROM ({parts}) p
        LEFT JOIN org_map m ON p.entity_kind = m.entity_kind AND p.entity = m.entity"""
    return merged, members


def _load_all(con: duckdb.DuckDBPyConnection, files: Sequence[Path], config: Config,
              progress: Progress | None, keep_requests: bool
              ) -> tuple[list[tuple[FileSummary, FileLoad]], list[DuplicateInput]]:
    """Load every file; a file whose content equals an earlier one's (a copy, compressed
    or not) has its rows dropped and is listed as a duplicate instead, so that no
    request counts twice. Its content hash comes from the read itself: no file is read
    twice to find its copies."""
    loads, copies = [], []
    first: dict[str, str] = {}  # content SHA-256 -> the path read with it
    for index, path in enumerate(files):
        summary, loaded, content = _load(con, path, index, len(files), config, progress,
                                         keep_requests)
        # empty files all share one hash and count nothing: none is a copy of another
        earlier = first.setdefault(content, summary.path) if loaded.lines else summary.path
        if earlier != summary.path:
            for table in FILE_TABLES:
                run(con, f"DELETE FROM {table} WHERE file_id = $id", {"id": index})
            copies.append(DuplicateInput(summary.path, earlier, "same content"))
            continue
        run(con, "INSERT INTO files VALUES ($id, $path, $format, $sha, $size, $lines, $rej, "
                 "$req)",
            {"id": index, "path": summary.path, "format": loaded.format, "sha": loaded.sha256,
             "size": summary.size, "lines": loaded.lines, "rej": loaded.rejected,
             "req": loaded.requests})
        loads.append((summary, loaded))
    return loads, copies


def _load(con: duckdb.DuckDBPyConnection, path: Path, index: int, count: int, config: Config,
          progress: Progress | None, keep_requests: bool
          ) -> tuple[FileSummary, FileLoad, str]:
    """Load one file: its summary, what loading found, and the SHA-256 of its content."""
    with LogSource.open(path) as source:
        if progress:
            progress.start_file(path, source.size, index, count)
        loaded = load_file(con, source, file_id=index, format_name=config.input.format,
                           config=config, progress=progress.advance if progress else None,
                           keep_requests=keep_requests)
    summary = FileSummary(path=str(path), sha256=loaded.sha256, format=loaded.format,
                          size=source.size, lines=loaded.lines, rejected=loaded.rejected,
                          requests=loaded.requests)
    # a plain file's content is its bytes (a binary format such as Parquet is read by
    # its own reader, which the content hash does not see); a compressed one's, those
    # it decompresses to, all of which the read went through
    content = loaded.sha256 if source.compression == "none" else loaded.content_sha256
    return summary, loaded, content


def check_rejects(files: list[FileSummary], config: Config, out: Path | None,
                  rejects: Callable[[], Iterator[tuple[str, int, str, str]]],
                  redact: bool = False) -> None:
    """Raise RejectLimitError (after replacing `out` by a folder holding only `rejects`,
    from the `rejects` rows, `redact`ed for a pseudonymised run) when more than
    `input.max_rejected_share` of the lines was rejected.

    Raises:
        OutputError: when `out` cannot be written (the previous folder is kept).
    """
    lines = sum(f.lines for f in files)
    rejected = sum(f.rejected for f in files)
    limit = config.input.max_rejected_share
    if lines and Decimal(rejected) / lines > limit:
        where = ""
        if out is not None:
            rows = rejects()
            # `out` becomes a set of this run holding only the rejects: no file of an
            # earlier run stays beside them
            with out_folder(out) as folder:
                path = folder.write(
                    "rejects", lambda s: write_rejects(redacted(rows) if redact else rows, s))
            where = f"; see {path}"
        worst = max(files, key=lambda f: f.rejected)
        raise RejectLimitError(
            f"{rejected:,} of {lines:,} lines rejected ({rejected / lines:.2%}), over the "
            f"limit of {limit:.2%} (most in {worst.path}: {worst.rejected:,}){where}; check "
            "--format, or raise input.max_rejected_share")


def rejects_of(con: duckdb.DuckDBPyConnection, tables: str = ""
               ) -> Iterator[tuple[str, int, str, str]]:
    """Every rejected line, by file and line number; `tables` prefixes the names of the
    rejects and files tables (`store.`)."""
    reader = con.sql(f"SELECT f.path, r.line_no, r.reason, r.text FROM {tables}rejects r "
                     f"JOIN {tables}files f USING (file_id) ORDER BY r.file_id, r.line_no"
                     ).to_arrow_reader(65536)
    for batch in reader:
        yield from zip(*(batch.column(i).to_pylist() for i in range(4)), strict=True)
