"""The tables every stage agrees on.

A format's parse query yields PARSED_COLUMNS, one row per input line. Lines that parse
are requests (entity and posts decided), summed into `activity_parts`; the others
become rows of `rejects`.
Times are whole seconds since the Unix epoch, UTC: every window and period is computed
on these integers, so no engine's interval arithmetic is trusted at the 24-hour edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from scrapewatch.errors import ConfigError

# Columns of a parse query, in order; reject_reason is NULL for a request, and
# BLANK_LINE for a line of nothing but white space (skipped: neither request nor reject).
PARSED_COLUMNS = ("line_no", "reject_reason", "ts", "client_ip", "user", "api_key", "method",
                  "path", "query", "status", "bytes", "referer", "user_agent", "posts", "xff",
                  "line")

BLANK_LINE = "blank line"

DAY_SECONDS = 86_400

_TABLES_SQL = """
CREATE TABLE IF NOT EXISTS files (
    file_id INTEGER PRIMARY KEY, path VARCHAR, format VARCHAR, sha256 VARCHAR,
    size BIGINT, lines BIGINT, rejected BIGINT, requests BIGINT);
-- One row per parsed request, kept only when asked for (keep_requests): detection
-- needs only activity, and this table grows with the input.
CREATE TABLE IF NOT EXISTS requests (
    file_id INTEGER, line_no BIGINT, sec BIGINT, entity_kind VARCHAR {kind},
    entity VARCHAR {entity}, status SMALLINT, posts BIGINT, observed BOOLEAN, counted BOOLEAN);
-- Counted posts and requests per (entity, second), summed block by block; activity
-- sums these parts once more, as one second may straddle two blocks. The file and its
-- first and last line of the part are the evidence of a charged period.
CREATE TABLE IF NOT EXISTS activity_parts (
    entity_kind VARCHAR {kind}, entity VARCHAR {entity}, sec BIGINT, posts BIGINT, requests BIGINT,
    observed_posts BIGINT, file_id INTEGER, first_line BIGINT, last_line BIGINT);
CREATE TABLE IF NOT EXISTS rejects (
    file_id INTEGER, line_no BIGINT, reason VARCHAR, text VARCHAR);
-- Where some lines of an uncompressed file start (its content byte offset): quoting a
-- line later reads from the nearest one before it, not from the file's start.
CREATE TABLE IF NOT EXISTS line_offsets (
    file_id INTEGER, line_no BIGINT, "offset" BIGINT);
-- Counted requests and posts per file and hour (epoch seconds // 3600), summed block by
-- block: the overview of a report, whatever entities they came from.
CREATE TABLE IF NOT EXISTS activity_hours (
    file_id INTEGER, hour BIGINT, requests BIGINT, posts BIGINT);
"""
# The tables as a store keeps them on disk: DuckDB picks each column's compression.
TABLES_SQL = _TABLES_SQL.format(kind="", entity="")
# The tables of a scan's in-memory database (engine.duckdb.connect), one row of activity
# (about one per request of API traffic) in 24 bytes rather than 38: the entity kind
# (a few values) as a dictionary; the entity as it is, since choosing and building its
# compression while loading cost more than the room it saved (a 10M-line load: 1 s).
WORK_TABLES_SQL = _TABLES_SQL.format(kind="USING COMPRESSION dict_fsst",
                                     entity="USING COMPRESSION uncompressed")

# parts_of_requests: requests (one row per parsed line of a file, with its file_id)
# -> activity parts: counted posts and requests per (entity, second, file), with the
# file's first and last line of them, the evidence of a charged period. The rows of
# activity_parts, made by the load on either engine (in the SQL subset both share, as
# detect/windows.py).
PARTS_OF_REQUESTS_SQL = """
SELECT entity_kind, entity, sec, CAST(sum(posts) AS BIGINT) AS posts,
       CAST(count(*) AS BIGINT) AS requests,
       CAST(sum(CASE WHEN observed THEN posts ELSE 0 END) AS BIGINT) AS observed_posts,
       file_id, min(line_no) AS first_line, max(line_no) AS last_line
FROM {requests}
WHERE reject_reason IS NULL AND counted
GROUP BY entity_kind, entity, sec, file_id
"""

# Every activity part of a run, as detection reads them by default.
ALL_PARTS = "SELECT * FROM activity_parts"


@dataclass(frozen=True)
class Window:
    """The instants a run counts, [since, until) in epoch seconds (None: unbounded):
    `--since` and `--until`. Activity is by second, so the bounds are too."""

    since: int | None = None
    until: int | None = None

    @classmethod
    def of(cls, since: datetime | None, until: datetime | None) -> Window:
        """The window from `since` to `until`, either of which may be None.

        Raises:
            ConfigError: when `since` is not before `until`.
        """
        low = None if since is None else int(since.timestamp())
        high = None if until is None else int(until.timestamp())
        if low is not None and high is not None and low >= high:
            raise ConfigError(f"the window is empty: since ({since}) must be before "
                              f"until ({until})")
        return cls(low, high)

    def parts(self, table: str = "activity_parts") -> str:
        """The SELECT of the activity parts of `table` in the window."""
        bounds = ([] if self.since is None else [f"sec >= {self.since}"]) + (
            [] if self.until is None else [f"sec < {self.until}"])
        return f"SELECT * FROM {table}" + (f" WHERE {' AND '.join(bounds)}" if bounds else "")

    def span(self, spans: Iterable[tuple[int | None, int | None]]
             ) -> tuple[int | None, int | None]:
        """The first and last instants of `spans` (each file's first and last request,
        None when it has none) inside the window."""
        low, high = self.since, None if self.until is None else self.until - 1
        inside = [(first if low is None else max(first, low),
                   last if high is None else min(last, high))
                  for first, last in spans if first is not None and last is not None
                  and (high is None or first <= high) and (low is None or last >= low)]
        return (min((first for first, _ in inside), default=None),
                max((last for _, last in inside), default=None))

ALL_TIME = Window()  # no --since or --until

# The tables that hold rows of each file loaded, by file_id.
FILE_TABLES = ("activity_parts", "rejects", "requests", "line_offsets", "activity_hours")

REJECT_TEXT_CHARS = 500  # a rejected line is kept cut to this length
