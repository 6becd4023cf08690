"""The store's commands: ingest, report, prune and query."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from scrapewatch.config import Config, load_config
from scrapewatch.engine import engine_for
from scrapewatch.engine.duckdb import rejects_of
from scrapewatch.errors import InputError, SandboxError, ScrapewatchError, UnknownFormatError
from scrapewatch.pipeline import (
    HOUR,
    activity_series,
    build_report,
    check_rejects,
    counted_in,
    detect,
    finish,
    no_lines_error,
)
from scrapewatch.posts import check_rules
from scrapewatch.reading.inputs import SkippedInput, list_inputs
from scrapewatch.reading.loaded import Advance, Counts, Progress
from scrapewatch.reading.read import load_file
from scrapewatch.reading.sources import LogSource, holds_content
from scrapewatch.reporting.counted import plural
from scrapewatch.reporting.escape import for_terminal
from scrapewatch.reporting.model import FileSummary, Report, batched
from scrapewatch.reporting.privacy import pseudonym
from scrapewatch.schema import FILE_TABLES, Window
from scrapewatch.sql import cursor, run
from scrapewatch.store.database import (
    COUNTS,
    check_settings,
    insert_rows,
    next_id,
    open_store,
    read_store,
    refusal,
    refuse_statements,
    settings_of,
)
from scrapewatch.store.manifest import plan, record

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class FileOutcome:
    """One file of an ingest run."""

    path: str
    action: str  # "added", "grew" or "skipped"
    reason: str
    lines: int = 0
    rejected: int = 0
    requests: int = 0


@dataclass(frozen=True)
class IngestRun:
    """What one ingest added, file by file, and the store's findings after it."""

    store: str
    run_id: int
    files: list[FileOutcome]
    report: Report
    new_findings: list[str]  # kind:entity flagged now, not by the previous report
    # set aside unread (also among `files`, as skipped): not a regular file, or no
    # format fits it
    unread: list[SkippedInput] = field(default_factory=list)

    @property
    def added(self) -> list[FileOutcome]:
        return [f for f in self.files if f.action in ("added", "grew")]

    @property
    def failed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.action == "failed"]

    @property
    def excluded(self) -> list[FileOutcome]:
        return [f for f in self.files if f.action == "excluded"]

    @property
    def skipped(self) -> list[FileOutcome]:
        return [f for f in self.files if f.action == "skipped"]

    def to_json(self) -> dict[str, Any]:
        """The machine-readable summary."""
        return {"store": self.store, "run_id": self.run_id,
                "files_added": len(self.added), "files_failed": len(self.failed),
                "files_skipped": len(self.skipped), "files_excluded": len(self.excluded),
                "lines": sum(f.lines for f in self.added),
                "rejected": sum(f.rejected for f in self.added),
                "requests": sum(f.requests for f in self.added),
                "files": [asdict(f) for f in self.files],
                "findings": len(self.report.findings), "new_findings": self.new_findings,
                "damages_usd": str(self.report.damages_usd)}

    def render(self) -> str:
        """The summary for a terminal (file names, reasons and entities escaped)."""
        excluded = f", {len(self.excluded)} excluded" if self.excluded else ""
        lines = [f"Ingested into {for_terminal(self.store)} (run {self.run_id}): "
                 f"{plural(len(self.added), 'file')} added, {len(self.skipped)} skipped{excluded}, "
                 f"{len(self.failed)} failed; {sum(f.lines for f in self.added):,} lines, "
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


def ingest(store: Path, paths: Sequence[str], *, config: Config | None = None,
           keep_requests: bool = False, wait_s: float = 0,
           progress: Progress | None = None, memory_limit: str | None = None,
           now: datetime | None = None, pseudonym_key: bytes | None = None) -> IngestRun:
    """Add the new content of every file under `paths` to `store`, then report over the
    whole store, all under one hold of its lock, under `config` (the defaults when
    None). A file that cannot be read is reported as failed and the others still go
    in; another path to a file listed before it, what is not a regular file, and a
    file no format fits (unless `input.strict`: failed) are reported as skipped, and
    the files the include and exclude patterns leave out as excluded.

    Raises:
        EmptyInputError: before the store is opened, when a directory holds no log
            file or the inputs hold no content at all, unless `input.allow_empty`.
    """
    config = config or load_config()
    inputs = list_inputs(paths, config.input)
    files = inputs.files
    # one small read of each file at most, until one holds something
    if not config.input.allow_empty and not any(map(holds_content, files)):
        raise no_lines_error([str(path) for path in files])
    with open_store(store, wait_s=wait_s, memory_limit=memory_limit, create=True) as con:
        check_settings(con, config)
        check_rules(con, config.posts.rules)
        run_id = next_id(con, "store.runs", "run_id")
        run(con, "INSERT INTO store.runs (run_id, command, started_at) "
                 "VALUES ($id, 'ingest', $start)", {"id": run_id, "start": datetime.now(UTC)})
        outcomes: list[FileOutcome] = []
        unread = list(inputs.skipped)
        for index, path in enumerate(files):
            if progress:
                progress.start_file(path, path.stat().st_size, index, len(files))
            try:
                outcomes.append(_ingest_file(con, path, run_id, config, keep_requests,
                                             progress.advance if progress else None))
            except UnknownFormatError as error:  # a stray file: failed only when strict
                if config.input.strict:
                    outcomes.append(FileOutcome(str(path), "failed", str(error)))
                else:
                    unread.append(SkippedInput(str(path), error.reason))
                    outcomes.append(FileOutcome(str(path), "skipped", error.reason))
            except ScrapewatchError as error:
                outcomes.append(FileOutcome(str(path), "failed", str(error)))
        if progress:
            progress.finish()
        outcomes += [FileOutcome(d.path, "skipped", f"{d.reason} as {d.duplicate_of}")
                     for d in inputs.duplicates]
        outcomes += [FileOutcome(s.path, "skipped", s.reason) for s in inputs.skipped]
        outcomes += [FileOutcome(s.path, "excluded", s.reason) for s in inputs.excluded]
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
    return IngestRun(str(store), run_id, outcomes, found, [f"{k}:{e}" for k, e in new],
                     unread)


def _ingest_file(con: duckdb.DuckDBPyConnection, path: Path, run_id: int, config: Config,
                 keep_requests: bool, progress: Advance | None) -> FileOutcome:
    part = plan(con, path)
    if isinstance(part, str):
        return FileOutcome(str(path), "skipped", part)
    file_id = next_id(con, "store.files", "file_id")
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
            record(con, file_id, run_id, path, source.size, part, loaded)
            # the store's settings are those of its first file
            run(con, "INSERT INTO store.store_info VALUES ('settings', $v) "
                     "ON CONFLICT DO NOTHING", {"v": json.dumps(settings_of(config))})
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


def report(store: Path, *, config: Config | None = None, since: datetime | None = None,
           until: datetime | None = None, out: Path | None = None,
           now: datetime | None = None, wait_s: float = 0,
           memory_limit: str | None = None, pseudonym_key: bytes | None = None,
           spark: SparkSession | None = None) -> Report:
    """Detect and price over the store's activity in [since, until), as `scan` would over
    the same files, and record the findings as a run; write `out` like scan. Under
    `config` (the defaults when None); with `spark`, detection runs on that Spark
    session."""
    config = config or load_config()
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
    window = Window.of(since, until)
    # what counted: the files' counts (unknown for files from before they were kept),
    # and the counted activity that the window (and pruning) leaves
    *sums, unknown = run(con, "SELECT " + "".join(f"coalesce(sum({name}), 0), "
                                                  for name in COUNTS)
                         + f"count(*) FILTER (WHERE {' IS NULL OR '.join(COUNTS)} IS NULL) "
                           "FROM store.manifest")[0]
    counts = None if unknown else Counts(*map(int, sums))
    in_window = counted_in(lambda sql: run(con, sql), window.parts("store.activity_parts"))
    hours = activity_series(lambda sql: run(con, sql), "store.activity_hours", window)
    engine = engine_for(con, spark)
    try:
        parts, paths = engine.use_parts(window.parts("store.activity_parts"), "store.files")
        with cursor(con) as db:
            detected = detect(engine, db, config, parts, files=paths,
                              offsets="store.line_offsets", quote=not redact)
    finally:
        engine.release()
    # the files' first and last requests, counted or not (as scan gives them)
    spans = run(con, "SELECT first_request, last_request FROM store.manifest")
    result = build_report(config, files, spans, detected, now, window=window, counts=counts,
                          in_window=in_window, hours=hours)
    _record_report(con, result, started)
    return result


def _record_report(con: duckdb.DuckDBPyConnection, result: Report, started: datetime) -> None:
    """The report as a run, with its findings and charged periods (inserted a batch of
    findings at a time)."""
    run_id = next_id(con, "store.runs", "run_id")
    run(con, "BEGIN TRANSACTION")
    run(con, "INSERT INTO store.runs VALUES ($id, 'report', $start, $end, 0, 0, $lines, $rejected, "
             "$findings, $damages)",
        {"id": run_id, "start": started, "end": datetime.now(UTC), "lines": result.lines,
         "rejected": result.rejected, "findings": len(result.findings),
         "damages": result.damages_usd})
    for batch in batched(result.findings, 10_000):
        insert_rows(con, "store.findings", [
            (run_id, f.window.entity_kind, f.window.entity, f.window.total_posts,
             f.window.peak_24h_posts, f.window.peak_start, f.window.first_crossing,
             len(f.assessment.periods), f.assessment.damages_usd) for f in batch],
            "c0, c1, c2, c3, c4, to_timestamp(c5), to_timestamp(c6), c7, c8")
        insert_rows(con, "store.periods", [
            (run_id, f.window.entity_kind, f.window.entity, p.start, p.end, p.posts,
             p.requests, damages) for f in batch
            for p, damages in zip(f.assessment.periods, f.assessment.period_damages,
                                  strict=True)],
            "c0, c1, c2, to_timestamp(c3), to_timestamp(c4), c5, c6, c7")
    run(con, "COMMIT")


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
        run(con, "DELETE FROM store.activity_hours WHERE (hour + 1) * $hour <= $before",
            {**cutoff, "hour": HOUR})
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
            refuse_statements(con, sql)
            result = con.sql(sql)
            return pa.table({}) if result is None else result.to_arrow_table()
        except duckdb.Error as exc:
            refused = refusal(exc, allow_files)
            if refused is not None:
                raise SandboxError(refused) from None
            raise InputError(f"SQL error: {str(exc).splitlines()[0]}") from None


