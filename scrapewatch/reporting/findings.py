"""The findings of a run: flagged entities priced, with evidence, in report order, kept
on disk.

A run may flag millions of entities, so nothing here holds them all in memory. The
engine's window figures, the flagged entities' activity and their evidence stream
into a local DuckDB connection (which spills to disk past its memory limit); entities
are priced there in batches of rows (damages.assess_many), the evidence is joined to
the charged periods, and the findings, the allow-listed ones and the watchlist are
written, sorted as the report lists them, to Parquet files that the report's writers
read back a batch at a time (report.model.Stored). Only the chart series of the
entities report.html draws are held in memory.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scrapewatch.allow import AllowList
from scrapewatch.config import PERIODS, ROUNDINGS, Config
from scrapewatch.damages import Activities, Activity, Period, assess_many
from scrapewatch.damages.money import usd
from scrapewatch.detect.windows import EntityWindow
from scrapewatch.errors import TempFolderError
from scrapewatch.reporting.charts import EntitySeries, entity_series
from scrapewatch.reporting.evidence import PERIOD_FILES_SQL, quote_edge_lines
from scrapewatch.reporting.model import Finding, Stored, Totals, finding_of_row, window_of_row
from scrapewatch.sql import insert_arrow, run

if TYPE_CHECKING:
    from scrapewatch.engine import Engine

BATCH_COST = 1 << 19  # activity rows x days they span, priced at a time
CHARTED = 50  # the entities with the largest damages get chart series (report.html)
ROWS_WRITTEN = 16_384
_MONEY = pa.decimal128(38, 2)

WINDOW_COLUMNS = """entity_kind VARCHAR, entity VARCHAR, total_posts BIGINT, requests BIGINT,
    observed_posts BIGINT, peak_24h_posts BIGINT, peak_start BIGINT, first_crossing BIGINT"""
_TABLES_SQL = f"""
CREATE OR REPLACE TEMP TABLE sw_windows ({WINDOW_COLUMNS}, allowed BOOLEAN);
CREATE OR REPLACE TEMP TABLE sw_activity (entity_kind VARCHAR, entity VARCHAR, sec BIGINT,
    posts BIGINT, requests BIGINT);
CREATE OR REPLACE TEMP TABLE sw_evidence (entity_kind VARCHAR, entity VARCHAR, sec BIGINT,
    file_id INTEGER, first_line BIGINT, last_line BIGINT, requests BIGINT, posts BIGINT);
CREATE OR REPLACE TEMP TABLE sw_files (file_id INTEGER, path VARCHAR, sha256 VARCHAR);
CREATE OR REPLACE TEMP TABLE sw_members (org VARCHAR, members VARCHAR[]);
CREATE OR REPLACE TEMP TABLE sw_priced (position BIGINT, damages_usd DECIMAL(38, 2),
    damages_full DECIMAL(38, 2), damages_prorata DECIMAL(38, 2),
    damages_started DECIMAL(38, 2));
CREATE OR REPLACE TEMP TABLE sw_charged (position BIGINT, period INTEGER, start BIGINT,
    "end" BIGINT, posts BIGINT, requests BIGINT, damages_usd DECIMAL(38, 2));
"""

# flagged_activity: engine tables `windows` and `activity` -> the activity of the
# entities over the threshold ({threshold}).
_FLAGGED_ACTIVITY_SQL = """
SELECT a.entity_kind, a.entity, a.sec, a.posts, a.requests
FROM activity a
JOIN windows w ON a.entity_kind = w.entity_kind AND a.entity = w.entity
WHERE w.peak_24h_posts > {threshold}
"""
# flagged_evidence: engine tables `windows` and `evidence` -> the evidence rows of the
# entities over the threshold ({threshold}).
_FLAGGED_EVIDENCE_SQL = """
SELECT e.entity_kind, e.entity, e.sec, e.file_id, e.first_line, e.last_line, e.requests,
       e.posts
FROM evidence e
JOIN windows w ON e.entity_kind = w.entity_kind AND e.entity = w.entity
WHERE w.peak_24h_posts > {threshold}
"""

# ranked: the priced entities that are (or are not) allow-listed ($allowed), ranked as
# the report lists them: largest damages first, then highest peak, then kind and entity.
_RANKED_SQL = """
CREATE OR REPLACE TEMP TABLE sw_ranked AS
SELECT w.*, p.* EXCLUDE (position),
       row_number() OVER (ORDER BY p.damages_usd DESC, w.peak_24h_posts DESC,
                          w.entity_kind, w.entity) - 1 AS rank
FROM sw_flagged w JOIN sw_priced p USING (position)
WHERE w.allowed = $allowed
"""
# findings: the ranked entities of ranks [$low, $high), in rank order, each with its
# charged periods in time order and their evidence (files by first line). Run a range
# of ranks at a time: the lists are built in memory.
_FINDINGS_SQL = """
WITH chunk AS (
    SELECT * FROM sw_ranked WHERE rank >= $low AND rank < $high
), evidence AS (
    SELECT pf.position, pf.period,
           list(struct_pack(file := pf.path, sha256 := pf.sha256, first_line := pf.first_line,
                            last_line := pf.last_line, requests := pf.requests,
                            posts := pf.posts,
                            samples := list_filter(
                                [struct_pack(line := pf.first_line, text := s1.text,
                                             at := pf.first_at),
                                 struct_pack(line := pf.last_line, text := s2.text,
                                             at := pf.last_at)],
                                lambda s: s.text IS NOT NULL))
                ORDER BY pf.first_line, pf.path) AS evidence
    FROM sw_period_files pf
    JOIN chunk USING (position)
    LEFT JOIN sw_samples s1 ON s1.path = pf.path AND s1.line = pf.first_line
    LEFT JOIN sw_samples s2 ON s2.path = pf.path AND s2.line = pf.last_line
    GROUP BY pf.position, pf.period
), periods AS (
    SELECT c.position,
           list(struct_pack(start := c.start, "end" := c."end", posts := c.posts,
                            requests := c.requests, damages_usd := c.damages_usd,
                            evidence := coalesce(e.evidence, []))
                ORDER BY c.start) AS periods
    FROM sw_charged c JOIN chunk USING (position) LEFT JOIN evidence e USING (position, period)
    GROUP BY c.position
)
SELECT w.entity_kind, w.entity, w.total_posts, w.requests, w.observed_posts,
       w.peak_24h_posts, w.peak_start, w.first_crossing, w.damages_usd, w.damages_full,
       w.damages_prorata, w.damages_started,
       coalesce(m.members, CAST([] AS VARCHAR[])) AS members,
       coalesce(pp.periods, []) AS periods
FROM chunk w
LEFT JOIN periods pp USING (position)
LEFT JOIN sw_members m ON w.entity_kind = 'org' AND m.org = w.entity
ORDER BY w.rank
"""
RANKS_AT_ONCE = 20_000  # findings built in one query: bounds the memory of their lists


@dataclass(frozen=True)
class Found:
    """What detection found: flagged entities with their charged periods (largest
    damages first) and their totals, the allow-listed ones that would have been
    flagged, and the watchlist (largest peak first)."""

    findings: Stored[Finding]
    allowed: Stored[Finding]
    watchlist: Stored[EntityWindow]
    totals: Totals
    # the entities with the most posts, whether or not they crossed (see Overview)
    top: list[tuple[str, str, int, int]] = dataclasses.field(default_factory=list)

    @classmethod
    def none(cls) -> Found:
        """Nothing found (no request was read)."""
        return cls(Stored(None, 0, lambda row: finding_of_row(row, {})),
                   Stored(None, 0, lambda row: finding_of_row(row, {})),
                   Stored(None, 0, window_of_row),
                   Totals(0, 0, {mode: dict.fromkeys(ROUNDINGS, 0) for mode in PERIODS}))


def find(engine: Engine, db: duckdb.DuckDBPyConnection, config: Config, *,
         members: dict[str, list[str]], files: str, offsets: str, quote: bool) -> Found:
    """Price the entities over the threshold among the engine's `windows` (see
    detect.windows.entity_windows), join their evidence from the engine's `files` table
    named `files` (quoting each period's edge lines with `quote`, helped by `db`'s
    table `offsets`), and keep the findings on disk. `db` is a local DuckDB connection
    for the work; `members` lists each organisation's members."""
    threshold = int(config.policy.threshold_posts)
    run(db, _TABLES_SQL)
    _copy_windows(engine, db, AllowList.parse(config.entity.allow))
    _copy(engine, db, "sw_activity", _FLAGGED_ACTIVITY_SQL.format(threshold=threshold))
    _copy(engine, db, "sw_evidence", _FLAGGED_EVIDENCE_SQL.format(threshold=threshold))
    _copy(engine, db, "sw_files", f"SELECT file_id, path, sha256 FROM {files}")
    insert_arrow(db, "sw_members", pa.table({
        "org": pa.array(list(members), pa.string()),
        "members": pa.array(list(members.values()), pa.list_(pa.string()))}))
    run(db, "CREATE OR REPLACE TEMP TABLE sw_flagged AS SELECT *, row_number() OVER "
            "(ORDER BY entity_kind, entity) - 1 AS position FROM sw_windows "
            "WHERE peak_24h_posts > $threshold", {"threshold": threshold})
    totals = _price(db, config)
    allowed_requests, allowed_posts = run(db, """
        SELECT coalesce(sum(requests), 0), coalesce(sum(total_posts), 0) FROM sw_windows
        WHERE allowed""")[0]
    totals = dataclasses.replace(totals, allowed_requests=int(allowed_requests),
                                 allowed_posts=int(allowed_posts))
    run(db, PERIOD_FILES_SQL)
    if quote:
        quote_edge_lines(db, offsets)
    else:
        run(db, "CREATE OR REPLACE TEMP TABLE sw_samples "
                "(path VARCHAR, line BIGINT, text VARCHAR)")
    folder = _Folder()
    where = folder.path
    findings = _write_findings(db, where / "findings.parquet", allowed=False)
    allowed = _write_findings(db, where / "allowed.parquet", allowed=True)
    watchlist = _write(db, where / "watchlist.parquet", [(f"""
        SELECT * EXCLUDE (allowed) FROM sw_windows
        WHERE peak_24h_posts <= {threshold} AND NOT allowed
        ORDER BY peak_24h_posts DESC, entity_kind, entity""", {})])
    series = _series(db, config, findings[0], findings[1])
    return Found(
        Stored(findings[0], findings[1], lambda row: finding_of_row(row, series), folder),
        Stored(allowed[0], allowed[1], lambda row: finding_of_row(row, {}), folder),
        Stored(watchlist[0], watchlist[1], window_of_row, folder), totals)


class _Folder:
    """A temporary folder, removed once nothing holds this object (the report's stored
    sequences hold it while they may be read)."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="scrapewatch-findings-"))
        weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)


def _copy_windows(engine: Engine, db: duckdb.DuckDBPyConnection, allow: AllowList) -> None:
    """The engine's `windows` into sw_windows, each with whether the allow-list names it."""
    for batch in engine.batches("SELECT * FROM windows"):
        kinds, entities = batch.column(0).to_pylist(), batch.column(1).to_pylist()
        allowed = [allow.allows(k, e) for k, e in zip(kinds, entities, strict=True)]
        insert_arrow(db, "sw_windows", pa.Table.from_batches([batch]).append_column(
            "allowed", pa.array(allowed, pa.bool_())))


def _copy(engine: Engine, db: duckdb.DuckDBPyConnection, table: str, sql: str) -> None:
    """The rows of the engine's `sql` into the local `table`, a batch at a time."""
    for batch in engine.batches(sql):
        insert_arrow(db, table, pa.Table.from_batches([batch]))


def _price(db: duckdb.DuckDBPyConnection, config: Config) -> Totals:
    """Price sw_flagged's entities, a batch of them at a time, into sw_priced and
    sw_charged; the totals of those not allow-listed."""
    policy = config.policy
    # what pricing an entity holds in memory: its rows, times the days they span (the
    # points of max_periods' dynamic programme)
    costs = np.asarray(db.execute("""
        SELECT count(*) * ((max(a.sec) - min(a.sec)) // 86400 + 3) AS cost FROM sw_activity a
        JOIN sw_flagged f ON a.entity_kind = f.entity_kind AND a.entity = f.entity
        GROUP BY f.position ORDER BY f.position""").fetchnumpy()["cost"], dtype=np.int64)
    cents, periods = 0, 0
    sensitivity = {mode: dict.fromkeys(ROUNDINGS, 0) for mode in PERIODS}
    for low, high in _ranges(costs):
        rows = db.execute("""
            SELECT f.position - $low AS entity, a.sec, a.posts, a.requests
            FROM sw_activity a
            JOIN sw_flagged f ON a.entity_kind = f.entity_kind AND a.entity = f.entity
            WHERE f.position >= $low AND f.position < $high
            ORDER BY f.position, a.sec""", {"low": low, "high": high}).fetchnumpy()
        allowed = np.asarray(db.execute(
            "SELECT allowed FROM sw_flagged WHERE position >= $low AND position < $high "
            "ORDER BY position", {"low": low, "high": high}).fetchnumpy()["allowed"], bool)
        entity, sec, posts, requests = (np.asarray(rows[c], np.int64)
                                        for c in ("entity", "sec", "posts", "requests"))
        acts = Activities(entity, sec, posts, requests, high - low)
        many = assess_many(acts, policy)
        insert_arrow(db, "sw_priced", pa.table({
            "position": pa.array(np.arange(low, high)),
            "damages_usd": _money(many.cents[policy.rounding]),
            **{f"damages_{r}": _money(many.cents[r]) for r in ROUNDINGS}}))
        p = many.periods
        first = np.searchsorted(p.entity, p.entity, side="left")  # each entity's first period
        insert_arrow(db, "sw_charged", pa.table({
            "position": pa.array(p.entity + low), "period": pa.array(
                np.arange(len(p.entity)) - first, pa.int32()),
            "start": pa.array(p.start), "end": pa.array(p.end), "posts": pa.array(p.posts),
            "requests": pa.array(p.requests), "damages_usd": _money(many.period_cents)}))
        charged = ~allowed
        cents += int(many.cents[policy.rounding][charged].sum())
        periods += int(charged[p.entity].sum())
        for mode, by in many.sensitivity.items():
            for rounding, values in by.items():
                sensitivity[mode][rounding] += int(values[charged].sum())
    return Totals(cents, periods, sensitivity)


def _ranges(costs: np.ndarray) -> Iterator[tuple[int, int]]:
    """Ranges [low, high) of entity positions costing about BATCH_COST together (an
    entity that costs more is a range of its own)."""
    low, total = 0, 0
    for position, count in enumerate(costs.tolist()):
        if total and total + count > BATCH_COST:
            yield low, position
            low, total = position, 0
        total += count
    if low < len(costs):
        yield low, len(costs)


def _money(cents: np.ndarray) -> pa.Array:
    return pa.array([usd(c) for c in cents.tolist()], _MONEY)


def _write_findings(db: duckdb.DuckDBPyConnection, path: Path, *, allowed: bool
                    ) -> tuple[Path, int]:
    """The findings (allow-listed or not) into a Parquet file, in report order."""
    run(db, _RANKED_SQL, {"allowed": allowed})
    count = int(run(db, "SELECT count(*) FROM sw_ranked")[0][0])
    return _write(db, path, [(_FINDINGS_SQL, {"low": low, "high": low + RANKS_AT_ONCE})
                             for low in range(0, max(count, 1), RANKS_AT_ONCE)])


def _write(db: duckdb.DuckDBPyConnection, path: Path,
           queries: list[tuple[str, dict[str, Any]]]) -> tuple[Path, int]:
    """The rows of the `queries` (SQL, parameters), one after the other, into a Parquet
    file, streamed; the file and its row count."""
    count = 0
    writer = None
    try:
        for sql, params in queries:
            reader = db.sql(sql, params=params).to_arrow_reader(ROWS_WRITTEN)
            writer = writer or pq.ParquetWriter(path, reader.schema)
            for batch in reader:
                writer.write_batch(batch)
                count += batch.num_rows
        if writer is not None:
            writer.close()
    except OSError as error:
        raise TempFolderError(
            f"cannot write the findings to the temp folder {path.parent.parent}: "
            f"{error.strerror or error}; free space in it, or set TMPDIR to a folder "
            "with more room") from error
    return path, count


def _series(db: duckdb.DuckDBPyConnection, config: Config, path: Path, count: int
            ) -> dict[tuple[str, str], EntitySeries]:
    """The chart series of the CHARTED first findings in the file at `path`."""
    if not count:
        return {}
    top = pa.Table.from_batches([next(pq.ParquetFile(path).iter_batches(
        CHARTED, columns=["entity_kind", "entity", "periods"]))])
    db.register("sw_top", top.select(["entity_kind", "entity"]))
    try:
        rows = db.execute("""
            SELECT t.entity_kind, t.entity, a.sec, a.posts, a.requests
            FROM sw_top t JOIN sw_activity a USING (entity_kind, entity)
            ORDER BY t.entity_kind, t.entity, a.sec""").fetchnumpy()
    finally:
        db.unregister("sw_top")
    kinds, entities = rows["entity_kind"], rows["entity"]
    series = {}
    for kind, entity, periods in zip(*(top.column(c).to_pylist() for c in top.column_names),
                                     strict=True):
        mine = np.flatnonzero((kinds == kind) & (entities == entity))
        activity = Activity(*(np.asarray(rows[c][mine], np.int64)
                              for c in ("sec", "posts", "requests")))
        series[kind, entity] = entity_series(activity, config.policy, [
            Period(p["start"], p["end"], p["posts"], p["requests"]) for p in periods])
    return series
