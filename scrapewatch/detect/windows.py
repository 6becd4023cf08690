"""The window queries: activity, rolling 24-hour sums, peaks and first crossings.

Written once, as SELECT statements in the SQL subset DuckDB and Spark share (explicit
GROUP BY, integer RANGE frames, no engine-specific functions), and run unchanged by
either engine (see engine/). Times are whole epoch seconds, so a 24-hour
frame is exactly 86,399 seconds either side of the current row: requests 86,400 s
apart never share a period. The numbers in them ({watch_level}, {threshold}) are
integers from the policy, written in as literals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapewatch.config import Policy
from scrapewatch.schema import ALL_PARTS

if TYPE_CHECKING:
    from scrapewatch.engine import Engine

# candidate_parts: activity parts ({parts}: the rows of activity_parts to read) of the
# entities whose total posts reach {watch_level}: no other can reach the watchlist or
# the threshold, and most entities are dropped here, before the costly grouping by
# second. Lossless for every window, period and total below. The only two reads of
# every part; activity and evidence read these. ({parts} is written twice, not as a
# CTE: DuckDB would copy a CTE read twice, every part of it.) The hint, a comment to
# DuckDB, has Spark send the few entities to every task of the parts: it cannot size
# the parts its load tasks made, and might send those instead.
CANDIDATE_PARTS_SQL = """
SELECT /*+ BROADCAST(c) */ p.*
FROM ({parts}) p
JOIN (SELECT entity_kind, entity
      FROM ({parts})
      GROUP BY entity_kind, entity
      HAVING sum(posts) >= {watch_level}) c
    ON p.entity_kind = c.entity_kind AND p.entity = c.entity
"""

# activity: candidate parts -> posts and requests of counted requests per (entity,
# second).
ACTIVITY_SQL = """
SELECT entity_kind, entity, sec,
       CAST(sum(posts) AS BIGINT) AS posts,
       CAST(sum(requests) AS BIGINT) AS requests,
       CAST(sum(observed_posts) AS BIGINT) AS observed_posts
FROM candidate_parts
GROUP BY entity_kind, entity, sec
"""

# evidence: candidate parts -> per (entity, second, file) the first and last line,
# requests and posts.
EVIDENCE_SQL = """
SELECT entity_kind, entity, sec, file_id, min(first_line) AS first_line,
       max(last_line) AS last_line, CAST(sum(requests) AS BIGINT) AS requests,
       CAST(sum(posts) AS BIGINT) AS posts
FROM candidate_parts
GROUP BY entity_kind, entity, sec, file_id
"""


# entity_windows: entities of `activity` whose peak reaches {watch_level} (those on the
# watchlist or over the threshold) -> total_posts, requests, observed_posts,
# peak_24h_posts = max over active seconds s of posts in [s, s + 86400),
# peak_start = the earliest such s, and first_crossing = the earliest active second t
# with more than {threshold} posts in (t - 86400, t].
#
# Both sums are running sums, not RANGE frames (which Spark recomputes over the whole
# frame at every row: hours at 10M lines). Each active second s enters with its posts
# and leaves again 86,400 s later (`behind`, in time order) or earlier (`ahead`, in
# reverse): the running sum at s holds the posts of the seconds that have entered and
# not left. At one instant, leaving comes first (kind 0): a second 86,400 s away is
# out of the frame. The seconds of an entity are distinct (activity is by second), so
# the order at every active second is total.
ENTITY_WINDOWS_SQL = """
WITH events AS (
    SELECT entity_kind, entity, sec AS instant, 1 AS kind, sec, posts, requests, observed_posts,
           posts AS into_behind, posts AS into_ahead
    FROM activity
    UNION ALL
    SELECT entity_kind, entity, sec + 86400, 0, NULL, 0, 0, 0, -posts, 0 FROM activity
    UNION ALL
    SELECT entity_kind, entity, sec - 86400, 0, NULL, 0, 0, 0, 0, -posts FROM activity
), windows AS (
    SELECT * FROM (
        SELECT entity_kind, entity, kind, sec, posts, requests, observed_posts,
               sum(into_ahead) OVER (PARTITION BY entity_kind, entity ORDER BY instant DESC, kind
                                     ROWS UNBOUNDED PRECEDING) AS ahead,
               sum(into_behind) OVER (PARTITION BY entity_kind, entity ORDER BY instant, kind
                                      ROWS UNBOUNDED PRECEDING) AS behind
        FROM events) e
    WHERE kind = 1
), peaks AS (
    SELECT *, max(ahead) OVER (PARTITION BY entity_kind, entity) AS peak
    FROM windows
)
SELECT entity_kind, entity, sum(posts) AS total_posts, sum(requests) AS requests,
       sum(observed_posts) AS observed_posts, max(peak) AS peak_24h_posts,
       min(CASE WHEN ahead = peak THEN sec END) AS peak_start,
       min(CASE WHEN behind > {threshold} THEN sec END) AS first_crossing
FROM peaks
GROUP BY entity_kind, entity
HAVING max(peak) >= {watch_level}
"""


@dataclass(frozen=True)
class EntityWindow:
    """An entity's totals and 24-hour window figures."""

    entity_kind: str
    entity: str
    total_posts: int
    requests: int
    observed_posts: int
    peak_24h_posts: int
    peak_start: int
    first_crossing: int | None


def entity_windows(engine: Engine, policy: Policy, parts: str = ALL_PARTS) -> None:
    """Build `activity` and `evidence` from the activity parts `parts` selects, then
    `windows`: the window figures of every entity whose peak reaches the watch level,
    flagged (over the threshold) or watched."""
    level = policy.watch_level
    engine.create("candidate_parts", CANDIDATE_PARTS_SQL.format(parts=parts, watch_level=level))
    engine.parts_read()
    engine.create("activity", ACTIVITY_SQL)
    engine.create("evidence", EVIDENCE_SQL)
    engine.create("windows", ENTITY_WINDOWS_SQL.format(watch_level=level,
                                                       threshold=int(policy.threshold_posts)))
