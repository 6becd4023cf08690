"""The wiring of a scan: files -> requests -> activity -> windows -> periods -> report."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from scrapewatch.config import Config, config_json, load_config
from scrapewatch.detect.windows import entity_windows
from scrapewatch.engine import Engine, engine_for
from scrapewatch.engine.duckdb import connect
from scrapewatch.errors import ConfigError, EmptyInputError, InputError, RejectLimitError
from scrapewatch.organisations import Organisations
from scrapewatch.posts import check_rules
from scrapewatch.reading.formats import get_format
from scrapewatch.reading.inputs import (
    DuplicateInput,
    Inputs,
    SkippedInput,
    is_uri,
    list_inputs,
)
from scrapewatch.reading.loaded import Counts, LoadedFile, Progress
from scrapewatch.reporting.counted import Funnel, Overview
from scrapewatch.reporting.files import out_folder, write_rejects
from scrapewatch.reporting.findings import Found, find
from scrapewatch.reporting.model import FileSummary, Report, Totals
from scrapewatch.reporting.outputs import write_out_dir
from scrapewatch.reporting.privacy import pseudonymised, redacted
from scrapewatch.schema import ALL_PARTS, ALL_TIME, DAY_SECONDS, Window
from scrapewatch.sql import cursor, run

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TOP_ENTITIES = 10  # listed in the overview
HOUR = 3600


def scan(paths: Sequence[str], *, config: Config | None = None, out: Path | None = None,
         now: datetime | None = None, progress: Progress | None = None,
         memory_limit: str | None = None, keep_requests: bool = False,
         pseudonym_key: bytes | None = None, spark: SparkSession | None = None,
         since: datetime | None = None, until: datetime | None = None) -> Report:
    """Read every log under `paths`, detect violations and total the damages, under
    `config` (the defaults when None), counting only the activity in [since, until)
    when given (the report records that window).

    Writes report.json, entities.csv, periods.csv and rejects into `out` when given.
    With `keep_requests`, the connection's `requests` table keeps every request (with
    its file and line number) while the scan runs; it is off by default to bound memory.
    With `pseudonym_key`, entities are pseudonyms in the report and its files, and
    rejected lines are written without their text. With `spark`, the files are loaded
    and detection runs on that Spark session (see engine/spark.py), which also reads
    URIs (s3a://, hdfs://, file:...); the report is the same.

    Raises:
        InputError, FormatError, ConfigError: on unreadable inputs or invalid settings.
        RejectLimitError: when more than `input.max_rejected_share` of lines is
            rejected (after writing `out/rejects`).
    """
    config = config or load_config()
    window = Window.of(since, until)
    if spark is not None and keep_requests:
        raise ConfigError("keep_requests is the DuckDB engine's: a Spark scan keeps no "
                          "table of requests")
    uris = [p for p in paths if is_uri(p)]
    if uris and spark is None:
        raise InputError(f"{uris[0]}: a URI is read by the Spark engine only (--engine spark)")
    local = [p for p in paths if not is_uri(p)]
    inputs = (list_inputs(local, config.input) if local or not uris
              else Inputs([], [], []))
    if config.input.format != "auto":
        get_format(config.input.format)  # fail on a bad name before reading anything
    con = connect(memory_limit=memory_limit)
    check_rules(con, config.posts.rules)
    engine = engine_for(con, spark, consume=True, keep_requests=keep_requests)
    try:
        loads = engine.load([str(p) for p in inputs.files] + uris, config, progress)
        unread = [SkippedInput(load.path, load.skipped) for load in loads if load.skipped]
        kept, copies = distinct(loads)
        engine.keep_files(kept, every_part=window != ALL_TIME)
        summaries = [summary_of(load) for _, load in kept]
        check_lines(summaries, config, unread)
        check_rejects(summaries, config, out, engine.rejects, redact=pseudonym_key is not None)
        # the counted requests and posts in the window (else: those of the files, below)
        in_window = None if window == ALL_TIME else counted_in(engine.rows, window.parts())
        hours = activity_series(lambda sql: run(con, sql), "activity_hours", window)
        with cursor(con) as db:
            detected = detect(engine, db, config, window.parts(),
                              quote=pseudonym_key is None)
        report = build_report(config, summaries, [(load.load.first_request,
                                                   load.load.last_request)
                                                  for _, load in kept], detected, now,
                              window=window, duplicates=inputs.duplicates + copies,
                              skipped=inputs.skipped + unread, excluded=inputs.excluded,
                              counts=sum((load.load.counts for _, load in kept), Counts()),
                              in_window=in_window, hours=hours)
        return finish(report, out, engine.rejects() if report.rejected else None,
                      pseudonym_key)
    finally:
        engine.release()


def distinct(loads: Sequence[LoadedFile]
             ) -> tuple[list[tuple[int, LoadedFile]], list[DuplicateInput]]:
    """The `loads` (with their file_id, their position) whose content is not an earlier
    one's, and the others (a copy, compressed or not) as duplicates, so that no request
    counts twice. Empty files all share one hash and count nothing: none is a copy.
    Files set aside unread (`skipped`) are in neither list."""
    kept, copies = [], []
    first: dict[str, str] = {}  # content SHA-256 -> the path read with it
    for file_id, load in enumerate(loads):
        if load.skipped:
            continue
        earlier = (first.setdefault(load.content_sha256, load.path) if load.load.lines
                   else load.path)
        if earlier == load.path:
            kept.append((file_id, load))
        else:
            copies.append(DuplicateInput(load.path, earlier, "same content"))
    return kept, copies


def summary_of(load: LoadedFile) -> FileSummary:
    """A file's summary in the report, from its load."""
    return FileSummary(path=load.path, sha256=load.load.sha256, format=load.load.format,
                       size=load.size, lines=load.load.lines, rejected=load.load.rejected,
                       requests=load.load.requests)


def build_report(config: Config, files: list[FileSummary],
                spans: list[tuple[int | None, int | None]], detected: Found,
                now: datetime | None, *, window: Window = ALL_TIME,
                duplicates: Sequence[DuplicateInput] = (),
                skipped: Sequence[SkippedInput] = (),
                excluded: Sequence[SkippedInput] = (), counts: Counts | None = None,
                in_window: tuple[int, int] | None = None,
                hours: tuple[str, list[tuple[int, int, int]]] = ("hour", [])) -> Report:
    """The report of a run, the one place it is made (scan on either engine, a store's
    report): its files, the first and last request of them all in the `window` (from
    each file's, or each range's, first and last, None when it has none), what
    detection found, and the inputs set aside as `duplicates`, `skipped` or
    `excluded`. Its funnel adds up the files' `counts` (None: not known for every
    file), less the counted requests and posts outside the window (`in_window`: those
    inside it, when they may differ from the files'); its overview shows the counted
    activity by `hours` (see `activity_series`), the entities detection found with the
    most posts, and the files' statuses."""
    first, last = window.span(spans)
    funnel = overview = None
    if counts is not None:
        funnel = _funnel(files, counts, in_window, detected.totals)
        overview = Overview(*hours, detected.top, counts.statuses())
    return Report(generated_at=(now or datetime.now(UTC)).astimezone(UTC),
                  policy=config.policy, files=files, window=window,
                  first_request_at=first, last_request_at=last,
                  findings=detected.findings, watchlist=detected.watchlist,
                  allowed=detected.allowed, config=config_json(config),
                  totals=detected.totals,
                  duplicates=list(duplicates), skipped=list(skipped), excluded=list(excluded),
                  funnel=funnel, overview=overview)


def _funnel(files: Sequence[FileSummary], counts: Counts, in_window: tuple[int, int] | None,
            totals: Totals) -> Funnel:
    requests = sum(f.requests for f in files)
    counted = requests - counts.early - counts.uncounted  # by date and status
    inside, posts = (counted, counts.counted_posts) if in_window is None else in_window
    return Funnel(lines=sum(f.lines for f in files), rejected=sum(f.rejected for f in files),
                  requests=requests, before_effective_from=counts.early,
                  status_not_counted=counts.uncounted, outside_window=counted - inside,
                  allow_listed=totals.allowed_requests,
                  counted_requests=inside - totals.allowed_requests,
                  posts=posts - totals.allowed_posts, unpriced=counts.unpriced)


def activity_series(rows: Callable[[str], list[tuple[Any, ...]]], hours: str, window: Window
                    ) -> tuple[str, list[tuple[int, int, int]]]:
    """The counted requests and posts of the table `hours` (activity_hours) in the hours
    the window touches: by hour, or by day (UTC) when they span more than three days."""
    low = -(2**62) if window.since is None else window.since // HOUR
    high = 2**62 if window.until is None else -(-window.until // HOUR)
    series = [(int(hour), int(requests), int(posts)) for hour, requests, posts in rows(
        f"SELECT hour, sum(requests), sum(posts) FROM {hours} WHERE hour >= {low} "
        f"AND hour < {high} GROUP BY hour ORDER BY hour")]
    if series and series[-1][0] - series[0][0] < 72:
        return "hour", [(hour * HOUR, requests, posts) for hour, requests, posts in series]
    days: dict[int, tuple[int, int]] = {}
    for hour, requests, posts in series:
        day = hour * HOUR // DAY_SECONDS * DAY_SECONDS
        before = days.get(day, (0, 0))
        days[day] = (before[0] + requests, before[1] + posts)
    return "day", [(day, requests, posts) for day, (requests, posts) in days.items()]


def counted_in(rows: Callable[[str], list[tuple[Any, ...]]], parts: str) -> tuple[int, int]:
    """The counted requests and posts of the activity parts `parts` selects, with an
    engine's (or a connection's) `rows`."""
    requests, posts = rows(f"SELECT coalesce(sum(requests), 0), coalesce(sum(posts), 0) "
                           f"FROM ({parts}) p")[0]
    return int(requests), int(posts)


def check_lines(files: Sequence[FileSummary], config: Config,
                unread: Sequence[SkippedInput] = ()) -> None:
    """Raise EmptyInputError when `files` hold no line at all (a nightly job reading an
    unmounted disk must not pass as a clean run), unless `input.allow_empty`; the files
    `unread` (no format fits them) are named."""
    if not config.input.allow_empty and not any(f.lines for f in files):
        raise no_lines_error([f.path for f in files] + [f"{u.path} (not read: {u.reason})"
                                                        for u in unread])


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
    top = engine.top_entities(parts, TOP_ENTITIES)
    entity_windows(engine, config.policy, parts)
    found = find(engine, db, config, members=members, files=files, offsets=offsets,
                 quote=quote)
    return dataclasses.replace(found, top=top)


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
