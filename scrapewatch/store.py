"""The persistent store: one DuckDB file that nightly `ingest` runs fill and `report`,
`sql` and `prune` read.

It holds the per-(entity, second) activity of every file ingested (and, optionally, the
parsed requests), the rejects, a manifest of the files with their content hashes, and
the run history. A writer works in an in-memory database (which spills to disk like a
scan's) with the store attached as `store`: a file is loaded there, then copied into
the store in one transaction, so a crash leaves the store as it was before that file
and memory stays bounded however large the file. DuckDB's file lock lets one process
write at a time.

What a file adds is decided by its content (the decompressed bytes): content already in
the manifest adds nothing, and content that extends what is there (a log still being
appended to, or the same log rotated and compressed) adds only its new lines.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from scrapewatch.config import Config
from scrapewatch.engine.duckdb import DuckDBEngine
from scrapewatch.errors import (
    ConfigError,
    InputError,
    SandboxError,
    ScrapewatchError,
    StoreBusyError,
    StoreError,
)
from scrapewatch.ingest.read import FileLoad, Progress, load_file
from scrapewatch.ingest.sources import LogSource, holds_content, list_inputs
from scrapewatch.pipeline import Progress as ProgressDisplay
from scrapewatch.pipeline import (
    build_report,
    check_rejects,
    connect,
    detect,
    engine_error,
    finish,
    no_lines_error,
    rejects_of,
)
from scrapewatch.posts import check_rules
from scrapewatch.report.escape import for_terminal
from scrapewatch.report.model import FileSummary, Report, batched
from scrapewatch.report.privacy import pseudonym
from scrapewatch.schema import FILE_TABLES, TABLES_SQL
from scrapewatch.sql import WORK, cursor, insert_arrow, run

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The first content bytes of a file, hashed to find the manifest entries it may extend
# (a file shorter than this when ingested is known by all of its content).
HEAD_BYTES = 4096
# A plain log's last line without a newline is held back as still being written, unless
# the file has not changed for this long: writers append whole lines, so such a line is
# then a truncated end, read as it is.
SETTLED_S = 300

STORE_SQL = TABLES_SQL + """
CREATE TABLE IF NOT EXISTS store_info (key VARCHAR PRIMARY KEY, value VARCHAR);
-- Per ingested file (or new part of a grown one): what of its content it covers.
CREATE TABLE IF NOT EXISTS manifest (
    file_id INTEGER PRIMARY KEY, run_id INTEGER, ingested_at TIMESTAMPTZ,
    head_bytes INTEGER, head_sha256 VARCHAR, content_sha256 VARCHAR, content_start BIGINT,
    content_end BIGINT, first_line BIGINT, complete BOOLEAN, first_request BIGINT,
    last_request BIGINT);
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
"""

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


def _settings(config: Config) -> dict[str, Any]:
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
    stored = json.loads(rows[0][0])
    wanted = json.loads(json.dumps(_settings(config)))
    changed = [key for key, value in wanted.items() if stored.get(key) != value]
    if changed:
        raise ConfigError(
            f"this store was filled with other {', '.join(changed)} settings than these; "
            "use the same ones (entity, posts, count_statuses, effective_from, input.fields), "
            "or ingest into a new store")


@dataclass(frozen=True)
class Part:
    """What of a file an ingest adds: content bytes [start, end), from line first_line."""

    start: int
    end: int | None
    first_line: int
    format: str | None  # the format of the part it extends (a continuation has no header)
    head: bytes  # the file's first HEAD_BYTES content bytes (all, when shorter)
    replaces: int | None = None  # the held part (file_id) it reads again, see plan
    reason: str = ""  # why it is read, when not plainly new lines


@dataclass(frozen=True)
class Held:
    """A part of some file in the store's manifest, which a file may extend."""

    file_id: int
    content_sha256: str
    content_start: int
    content_end: int
    first_line: int
    lines: int
    format: str | None
    path: str


@dataclass(frozen=True)
class FileOutcome:
    """One file of an ingest run."""

    path: str
    action: str  # "added", "grew" or "skipped"
    reason: str
    lines: int = 0
    rejected: int = 0
    requests: int = 0


def plan(con: duckdb.DuckDBPyConnection, path: Path) -> Part | str:
    """The part of `path` to add, or why it adds nothing.

    A file that extends held content adds what follows it, numbered on from its lines.
    When the held content ends in a line without newline (read as cut short, once the
    file had settled), the file's further content completes that line: the held part
    is then read again from its start and replaces the part held, so that every line
    keeps its number in the whole file and is read whole, once.
    """
    raw = _sha256_of(path)
    same = run(con, "SELECT f.path FROM store.files f JOIN store.manifest m USING (file_id) "
                    "WHERE f.sha256 = $sha AND m.complete LIMIT 1", {"sha": raw})
    if same:
        return f"already ingested (as {same[0][0]})"
    with LogSource.open(path) as source:
        compressed = source.compression != "none"
        head = source.read_content(HEAD_BYTES)
    end = None if compressed else _complete_end(path)
    if end == 0:
        return "no complete line yet"
    shorter = None  # held content longer than this file, which starts like it
    for held in _held_like(con, head):
        prefix, cut_short, more = _compare(path, held, end)
        if end is not None and held.content_end > end:
            if prefix and cut_short:  # its cut-short last line is being written again
                return "no new lines"
            return f"starts like {held.path}, ingested before, but is shorter; not added"
        if prefix is None:  # a compressed file with less content than held
            shorter = shorter or held.path
        elif prefix:
            if not more:
                return "no new lines"
            if shorter is not None:
                break  # a copy of the held content cut between two ingests
            if cut_short:
                cut_line = held.first_line + held.lines - 1
                return Part(held.content_start, end, held.first_line, held.format, head,
                            held.file_id, f"line {cut_line} was cut short when read and is "
                            f"now complete: read again from line {held.first_line}")
            return Part(held.content_end, end, held.first_line + held.lines, held.format,
                        head)
    if shorter is not None:
        return f"starts like {shorter}, ingested before, but is shorter; not added"
    return Part(0, end, 1, None, head)


def _held_like(con: duckdb.DuckDBPyConnection, head: bytes) -> list[Held]:
    """The held parts whose file starts with the same bytes as `head` (so `head`'s file
    may extend them), longest content first."""
    found = []
    for (size,) in run(con, "SELECT DISTINCT head_bytes FROM store.manifest "
                            "WHERE head_bytes <= $n AND content_end > 0", {"n": len(head)}):
        found += [Held(*row) for row in run(con, """
            SELECT m.file_id, m.content_sha256, m.content_start, m.content_end, m.first_line,
                   f.lines, f.format, f.path
            FROM store.manifest m JOIN store.files f USING (file_id)
            WHERE m.head_bytes = $size AND m.head_sha256 = $head AND m.content_end > 0""",
                                          {"size": size,
                                           "head": hashlib.sha256(head[:size]).hexdigest()})]
    return sorted(found, key=lambda held: -held.content_end)


def _compare(path: Path, held: Held, end: int | None) -> tuple[bool | None, bool, bool]:
    """Whether `path`'s content starts with `held`'s (None: it is shorter), whether that
    content ends in a line without newline, and whether `path` has more content (to
    `end`, its complete lines, for a plain file)."""
    with LogSource.open(path) as source:
        source.read_content(held.content_end - 1, keep=False)
        last = source.read_content(1)
        if source.content_bytes < held.content_end:
            return None, False, False
        prefix = source.content_sha256() == held.content_sha256
        more = end > held.content_end if end is not None else bool(source.read_content(1))
    return prefix, last != b"\n", more


@dataclass(frozen=True)
class IngestRun:
    """What one ingest added, file by file, and the store's findings after it."""

    store: str
    run_id: int
    files: list[FileOutcome]
    report: Report
    new_findings: list[str]  # kind:entity flagged now, not by the previous report

    @property
    def added(self) -> list[FileOutcome]:
        return [f for f in self.files if f.action in ("added", "grew")]

    @property
    def failed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.action == "failed"]

    def to_json(self) -> dict[str, Any]:
        """The machine-readable summary."""
        return {"store": self.store, "run_id": self.run_id,
                "files_added": len(self.added), "files_failed": len(self.failed),
                "files_skipped": len(self.files) - len(self.added) - len(self.failed),
                "lines": sum(f.lines for f in self.added),
                "rejected": sum(f.rejected for f in self.added),
                "requests": sum(f.requests for f in self.added),
                "files": [asdict(f) for f in self.files],
                "findings": len(self.report.findings), "new_findings": self.new_findings,
                "damages_usd": str(self.report.damages_usd)}

    def render(self) -> str:
        """The summary for a terminal (file names, reasons and entities escaped)."""
        skipped = len(self.files) - len(self.added) - len(self.failed)
        lines = [f"Ingested into {for_terminal(self.store)} (run {self.run_id}): "
                 f"{len(self.added)} file(s) added, {skipped} skipped, {len(self.failed)} "
                 f"failed; {sum(f.lines for f in self.added):,} lines, "
                 f"{sum(f.rejected for f in self.added):,} rejected."]
        for f in self.files:
            counts = (f": {f.lines:,} lines, {f.rejected:,} rejected"
                      if f.action in ("added", "grew") else "")
            lines.append(f"  {f.action:8} {for_terminal(f.path)} ({for_terminal(f.reason)})"
                         f"{counts}")
        lines.append(f"Store: {len(self.report.findings)} entities flagged, damages "
                     f"${self.report.damages_usd:,.2f}; new since the last report: "
                     f"{', '.join(for_terminal(e) for e in self.new_findings) or 'none'}.")
        return "\n".join(lines) + "\n"


def ingest(store: Path, paths: Sequence[str], *, config: Config, keep_requests: bool = False,
           wait_s: float = 0, progress: ProgressDisplay | None = None,
           memory_limit: str | None = None, now: datetime | None = None,
           pseudonym_key: bytes | None = None) -> IngestRun:
    """Add the new content of every file under `paths` to `store`, then report over the
    whole store, all under one hold of its lock. A file that cannot be read is
    reported as failed and the others still go in; another path to a file listed
    before it, and what is not a regular file, are reported as skipped.

    Raises:
        EmptyInputError: before the store is opened, when a directory holds no log
            file or the inputs hold no content at all, unless `input.allow_empty`.
    """
    inputs = list_inputs(paths, allow_empty=config.input.allow_empty)
    files = inputs.files
    # one small read of each file at most, until one holds something
    if not config.input.allow_empty and not any(map(holds_content, files)):
        raise no_lines_error([str(path) for path in files])
    with open_store(store, wait_s=wait_s, memory_limit=memory_limit, create=True) as con:
        check_settings(con, config)
        check_rules(con, config.posts.rules)
        run_id = _next_id(con, "store.runs", "run_id")
        run(con, "INSERT INTO store.runs (run_id, command, started_at) "
                 "VALUES ($id, 'ingest', $start)", {"id": run_id, "start": datetime.now(UTC)})
        outcomes = []
        for index, path in enumerate(files):
            if progress:
                progress.start_file(path, path.stat().st_size, index, len(files))
            try:
                outcomes.append(_ingest_file(con, path, run_id, config, keep_requests,
                                             progress.advance if progress else None))
            except ScrapewatchError as error:
                outcomes.append(FileOutcome(str(path), "failed", str(error)))
        if progress:
            progress.finish()
        outcomes += [FileOutcome(d.path, "skipped", f"{d.reason} as {d.duplicate_of}")
                     for d in inputs.duplicates]
        outcomes += [FileOutcome(s.path, "skipped", s.reason) for s in inputs.skipped]
        added = [o for o in outcomes if o.action in ("added", "grew")]
        run(con, "UPDATE store.runs SET finished_at = $end, files_added = $added, "
                 "files_skipped = $skipped, lines = $lines, rejected = $rejected "
                 "WHERE run_id = $id",
            {"id": run_id, "end": datetime.now(UTC), "added": len(added),
             "skipped": len(outcomes) - len(added), "lines": sum(o.lines for o in added),
             "rejected": sum(o.rejected for o in added)})
        before = {row[0] for row in run(con, """
            SELECT entity_kind || ':' || entity FROM store.findings WHERE run_id =
                (SELECT max(run_id) FROM store.runs WHERE command = 'report')""")}
        found = _report(con, config, now=now, redact=pseudonym_key is not None)
    new = [(f.window.entity_kind, f.window.entity) for f in found.findings
           if f"{f.window.entity_kind}:{f.window.entity}" not in before]
    if pseudonym_key is not None:
        found = finish(found, None, None, pseudonym_key)
        new = [(kind, pseudonym(pseudonym_key, kind, entity)) for kind, entity in new]
    return IngestRun(str(store), run_id, outcomes, found, [f"{k}:{e}" for k, e in new])


def _ingest_file(con: duckdb.DuckDBPyConnection, path: Path, run_id: int, config: Config,
                 keep_requests: bool, progress: Progress | None) -> FileOutcome:
    part = plan(con, path)
    if isinstance(part, str):
        return FileOutcome(str(path), "skipped", part)
    file_id = _next_id(con, "store.files", "file_id")
    try:
        with LogSource.open(path) as source:
            loaded = load_file(con, source, file_id=file_id,
                               format_name=part.format or config.input.format, config=config,
                               progress=progress, keep_requests=keep_requests,
                               first_line=part.first_line, skip=part.start, limit=part.end)
        if part.start and not loaded.lines:
            return FileOutcome(str(path), "skipped", "no new lines")
        # the file's rows, loaded in memory, go into the store in one transaction
        run(con, "BEGIN TRANSACTION")
        try:
            if part.replaces is not None:  # the part this one reads again goes
                for table in (*FILE_TABLES, "files", "manifest"):
                    run(con, f"DELETE FROM store.{table} WHERE file_id = $id",
                        {"id": part.replaces})
            for table in FILE_TABLES:
                run(con, f"INSERT INTO store.{table} SELECT * FROM {table}")
            _record(con, file_id, run_id, path, source.size, part, loaded)
            # the store's settings are those of its first file
            run(con, "INSERT INTO store.store_info VALUES ('settings', $v) "
                     "ON CONFLICT DO NOTHING", {"v": json.dumps(_settings(config))})
            run(con, "COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # keep the error that stopped the commit
                run(con, "ROLLBACK")
            raise
    finally:
        for table in FILE_TABLES:
            run(con, f"DELETE FROM {table}")
    action, reason = (
        ("grew", part.reason or f"new lines from line {part.first_line}")
        if part.start or part.replaces is not None else ("added", loaded.format or "empty"))
    return FileOutcome(str(path), action, reason, loaded.lines, loaded.rejected,
                       loaded.requests)


def _record(con: duckdb.DuckDBPyConnection, file_id: int, run_id: int, path: Path, size: int,
            part: Part, loaded: FileLoad) -> None:
    run(con, "INSERT INTO store.files VALUES ($id, $path, $format, $sha, $size, $lines, $rej, "
             "$req)",
        {"id": file_id, "path": str(path), "format": loaded.format, "sha": loaded.sha256,
         "size": size, "lines": loaded.lines, "rej": loaded.rejected, "req": loaded.requests})
    head = part.head[:loaded.content_bytes]  # of the content it covers
    # complete: it read the file to its end (a plain file may have grown meanwhile, or end
    # in a line held back), so the raw file's hash alone says it is held
    complete = part.end is None or loaded.content_bytes == size
    run(con, "INSERT INTO store.manifest VALUES ($id, $run, $at, $head_bytes, $head, $content, "
             "$start, $end, $first, $complete, $first_request, $last_request)",
        {"id": file_id, "run": run_id, "at": datetime.now(UTC), "head_bytes": len(head),
         "head": hashlib.sha256(head).hexdigest(), "content": loaded.content_sha256,
         "start": part.start, "end": loaded.content_bytes, "first": part.first_line,
         "complete": complete, "first_request": loaded.first_request,
         "last_request": loaded.last_request})


def _next_id(con: duckdb.DuckDBPyConnection, table: str, column: str) -> int:
    return int(run(con, f"SELECT coalesce(max({column}), 0) + 1 FROM {table}")[0][0])


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _complete_end(path: Path) -> int:
    """Where a plain log's complete lines end: its size, or, while its last line has no
    newline and the file changed in the last SETTLED_S seconds, the offset after its
    last newline (0 when there is none in the last 64 MiB)."""
    stat = path.stat()
    if time.time() - stat.st_mtime >= SETTLED_S:
        return stat.st_size
    with path.open("rb") as handle:
        at = stat.st_size
        while at > 0 and stat.st_size - at < (64 << 20):
            start = max(0, at - (1 << 20))
            handle.seek(start)
            newline = handle.read(at - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            at = start
    return 0


def report(store: Path, *, config: Config, since: datetime | None = None,
           until: datetime | None = None, out: Path | None = None,
           now: datetime | None = None, wait_s: float = 0,
           memory_limit: str | None = None, pseudonym_key: bytes | None = None,
           spark: SparkSession | None = None) -> Report:
    """Detect and price over the store's activity in [since, until), as `scan` would over
    the same files, and record the findings as a run; write `out` like scan. With
    `spark`, detection runs on that Spark session."""
    with open_store(store, wait_s=wait_s, memory_limit=memory_limit) as con:
        check_settings(con, config)
        result = _report(con, config, since=since, until=until, out=out, now=now,
                         redact=pseudonym_key is not None, spark=spark)
        return finish(result, out, rejects_of(con, "store.") if result.rejected else None,
                      pseudonym_key)


def _report(con: duckdb.DuckDBPyConnection, config: Config, *, since: datetime | None = None,
            until: datetime | None = None, out: Path | None = None,
            now: datetime | None = None, redact: bool = False,
            spark: SparkSession | None = None) -> Report:
    """The report over the store (its entities as they are), recorded as a run; `out`
    only receives the rejects when there are too many (see check_rejects)."""
    started = datetime.now(UTC)
    files = [FileSummary(path, sha, fmt, size, lines, rejected, requests)
             for path, fmt, sha, size, lines, rejected, requests in run(
                 con, "SELECT path, format, sha256, size, lines, rejected, requests "
                      "FROM store.files ORDER BY file_id")]
    check_rejects(files, config, out, lambda: rejects_of(con, "store."), redact=redact)
    low = int(since.timestamp()) if since else -(2**62)
    high = int(until.timestamp()) if until else 2**62
    parts = f"SELECT * FROM store.activity_parts WHERE sec >= {low} AND sec < {high}"
    if spark is None:
        engine = DuckDBEngine(con)
        with cursor(con) as db:
            detected = detect(engine, db, config, parts, files="store.files",
                              offsets="store.line_offsets", quote=not redact)
        engine.release()
    else:
        from scrapewatch.spark.scan import detect_store_parts

        detected = detect_store_parts(spark, con, config, parts, quote=not redact)
    # the files' first and last requests, counted or not (as scan gives them), in range
    first, last = run(con, "SELECT min(first_request), max(last_request) FROM store.manifest"
                      )[0]
    span = (None if first is None or first >= high else max(first, low),
            None if last is None or last < low else min(last, high - 1))
    result = build_report(config, files, [span], detected, now)
    _record_report(con, result, started)
    return result


def _record_report(con: duckdb.DuckDBPyConnection, result: Report, started: datetime) -> None:
    """The report as a run, with its findings and charged periods (inserted a batch of
    findings at a time)."""
    run_id = _next_id(con, "store.runs", "run_id")
    run(con, "BEGIN TRANSACTION")
    run(con, "INSERT INTO store.runs VALUES ($id, 'report', $start, $end, 0, 0, $lines, $rejected, "
             "$findings, $damages)",
        {"id": run_id, "start": started, "end": datetime.now(UTC), "lines": result.lines,
         "rejected": result.rejected, "findings": len(result.findings),
         "damages": result.damages_usd})
    for batch in batched(result.findings, 10_000):
        _insert_rows(con, "store.findings", [
            (run_id, f.window.entity_kind, f.window.entity, f.window.total_posts,
             f.window.peak_24h_posts, f.window.peak_start, f.window.first_crossing,
             len(f.assessment.periods), f.assessment.damages_usd) for f in batch],
            "c0, c1, c2, c3, c4, to_timestamp(c5), to_timestamp(c6), c7, c8")
        _insert_rows(con, "store.periods", [
            (run_id, f.window.entity_kind, f.window.entity, p.start, p.end, p.posts,
             p.requests, damages) for f in batch
            for p, damages in zip(f.assessment.periods, f.assessment.period_damages,
                                  strict=True)],
            "c0, c1, c2, to_timestamp(c3), to_timestamp(c4), c5, c6, c7")
    run(con, "COMMIT")


def _insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple[Any, ...]],
                 select: str) -> None:
    """Insert `rows` into `table` through `select`, which names their columns c0, c1..."""
    if not rows:
        return
    insert_arrow(con, table, pa.table({f"c{i}": column for i, column in
                                       enumerate(map(list, zip(*rows, strict=True)))}), select)


def prune(store: Path, *, before: datetime, wait_s: float = 0) -> int:
    """Drop the activity and requests older than `before`: how many activity rows went.

    The manifest stays, so the files they came from are not ingested again.
    """
    with open_store(store, wait_s=wait_s) as con:
        cutoff: dict[str, object] = {"before": int(before.timestamp())}
        dropped = int(run(con, "SELECT count(*) FROM store.activity_parts WHERE sec < $before",
                          cutoff)[0][0])
        run(con, "BEGIN TRANSACTION")
        run(con, "DELETE FROM store.activity_parts WHERE sec < $before", cutoff)
        run(con, "DELETE FROM store.requests WHERE sec < $before", cutoff)
        run(con, "COMMIT")
        run(con, "CHECKPOINT store")
    return dropped


def query(store: Path, sql: str, *, allow_files: Path | None = None) -> pa.Table:
    """Run SQL on the store, read-only and seeing the store only (see `read_store`); the
    result of its last statement as an Arrow table.

    Raises:
        SandboxError: when a statement reaches past the store: a file outside it (and
            outside `allow_files`), ATTACH, an extension, or a setting.
        InputError: when a statement fails otherwise (its message, one line).
    """
    with read_store(store, allow_files=allow_files) as con:
        try:
            _refuse_statements(con, sql)
            result = con.sql(sql)
            return pa.table({}) if result is None else result.to_arrow_table()
        except duckdb.Error as exc:
            refusal = _refusal(exc, allow_files)
            if refusal is not None:
                raise SandboxError(refusal) from None
            raise InputError(f"SQL error: {str(exc).splitlines()[0]}") from None


# DuckDB's words when the sandbox stops a statement
_FILE_REFUSED = re.compile(r'Cannot access (?:file|directory) "(.*)" - file system '
                           r"operations are disabled")
_SETTING_LOCKED = re.compile(r'Cannot change configuration option "(.*)" - the '
                             r"configuration has been locked")
_FOLDER_FLAG = "--allow-files DIR opens one folder for files"


def _refuse_statements(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse ATTACH, INSTALL and LOAD before anything runs: the sandbox stops most of
    them, but not all (an extension built into DuckDB loads; the store attaches again)."""
    for statement in con.extract_statements(sql):
        if statement.type == duckdb.StatementType.ATTACH:
            raise SandboxError("ATTACH is not allowed: sql sees only the store "
                               f"({_FOLDER_FLAG}, not for ATTACH)")
        if statement.type == duckdb.StatementType.LOAD:
            raise SandboxError("INSTALL and LOAD of extensions are not allowed: sql sees "
                               f"only the store ({_FOLDER_FLAG}, nothing more)")


def _refusal(exc: duckdb.Error, allow_files: Path | None) -> str | None:
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
