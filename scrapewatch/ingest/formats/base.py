"""What the formats share: block cuts, and text fields made into parsed requests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from scrapewatch.config import FIELD_NAMES
from scrapewatch.schema import BLANK_LINE
from scrapewatch.sql import Params


@dataclass(frozen=True)
class Cut:
    """What a format read of a block at once, and the lines it left over.

    Attributes:
        tables: Each holds line_no and the format's columns, read by its `cut_sql`
            (the schema and its metadata say how).
        rest: Positions (0-based, in the block) of the lines for the per-line query.
        directives: How many lines were format metadata (W3C `#Fields:` and such):
            read, but neither requests nor rejects.
    """

    tables: list[pa.Table]
    rest: np.ndarray
    directives: int = 0


# Reads a file's blocks in order (it may keep state from one block to the next, such
# as a W3C header): (lines, number of the first line) -> Cut, or None for "use the
# per-line query for every line".
Cutter = Callable[[pa.StringArray, int], Cut | None]


# The most posts one request can return; larger counts are rejected, so that sums of
# any log stay far inside 64-bit integers.
MAX_POSTS = 1_000_000_000


def epoch_sql(text: str) -> str:
    """An epoch number's instant, its unit told by its size (s, ms, µs, ns)."""
    number = f"TRY_CAST({text} AS DOUBLE)"
    seconds = (f"CASE WHEN abs({number}) < 1e11 THEN {number} WHEN abs({number}) < 1e14 "
               f"THEN {number} / 1e3 WHEN abs({number}) < 1e17 THEN {number} / 1e6 "
               f"WHEN abs({number}) < 1e20 THEN {number} / 1e9 END")
    return f"to_timestamp({seconds})"  # NULL past year 5138 in ns: a bad timestamp


def requests_sql(source: str, f: dict[str, str], unparsed: str, params: Params, *,
                 time_format: str | None = None) -> str:
    """From `source` rows and per-field text expressions `f`, the parsed requests.

    `unparsed` is the reject reason of a row that the format could not read at all
    (or NULL). Times may be epoch numbers (unit told by size), ISO 8601 / RFC 3339,
    or CLF `dd/Mon/yyyy:HH:MM:SS +hhmm` (or `time_format`, a strptime pattern); a
    time without an offset is UTC. A path may be a whole request line
    (`GET /x HTTP/1.1`) or an absolute URL.
    """
    number = params.bind(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
    request_line = params.bind(r"^[A-Za-z]+ (\S.*?)(?: HTTP/[0-9.]+)?$")
    custom_time = (f"try_strptime(ts_text, {params.bind(time_format)})" if time_format
                   else "NULL::TIMESTAMPTZ")
    origin = params.bind(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?]*")
    return f"""
    -- parse: source rows -> parsed requests, one row per line;
    -- reject_reason is NULL for a request and says why otherwise.
    WITH j AS ({source}
    ), e AS (
        SELECT *,
               {f['ts']} AS ts_text,
               {f['path']} AS target_text,
               {f['method']} AS method_text
        FROM j
    ), t AS (
        SELECT *,
               coalesce({custom_time},
                        CASE WHEN regexp_full_match(ts_text, {number})
                             THEN {epoch_sql('ts_text')}
                             ELSE coalesce(TRY_CAST(ts_text AS TIMESTAMPTZ),
                                           try_strptime(ts_text, '%d/%b/%Y:%H:%M:%S %z')) END)
                   AS ts,
               -- the target of a request line (GET /x HTTP/1.1), without scheme://host
               CASE WHEN starts_with(target_text, '/') AND NOT contains(target_text, ' ')
                    THEN target_text
                    ELSE regexp_replace(coalesce(nullif(regexp_extract(target_text,
                                                                      {request_line}, 1), ''),
                                                 target_text), {origin}, '') END AS target
        FROM e
    )
    SELECT line_no,
           coalesce({unparsed},
                    CASE WHEN ts_text IS NULL THEN 'no timestamp field'
                         WHEN ts IS NULL THEN 'bad timestamp ' || left(ts_text, 64)
                         WHEN {f['posts']} IS NOT NULL
                              AND NOT coalesce(TRY_CAST(TRY_CAST({f['posts']} AS DOUBLE) AS BIGINT)
                                               BETWEEN 0 AND {MAX_POSTS}, false)
                             THEN 'bad posts ' || left({f['posts']}, 32) END)
               AS reject_reason,
           ts,
           sw_without_port({f['client_ip']}) AS client_ip,  -- ip:port: load balancers
           {f['user']} AS "user",
           {f['api_key']} AS api_key,
           coalesce(method_text, nullif(regexp_extract(target_text, '^([A-Za-z]+) ', 1), ''))
               AS method,
           nullif(split_part(target, '?', 1), '') AS path,
           coalesce(regexp_replace({f['query']}, '^[?]', ''),
                    CASE WHEN contains(target, '?')
                         THEN substr(target, strpos(target, '?') + 1) END) AS query,
           TRY_CAST(TRY_CAST({f['status']} AS DOUBLE) AS SMALLINT) AS status,
           TRY_CAST(TRY_CAST({f['bytes']} AS DOUBLE) AS BIGINT) AS bytes,
           {f['referer']} AS referer,
           {f['user_agent']} AS user_agent,
           TRY_CAST(TRY_CAST({f['posts']} AS DOUBLE) AS BIGINT) AS posts,
           {f['xff']} AS xff,
           line
    FROM t
    """



def unread_sql(reason: str, params: Params) -> str:
    """The parse query over `block` for lines a format cannot read where they are (data
    before a header): rejects with `reason`, but for blank lines."""
    blank = params.bind(" \t" + chr(13) + chr(10))
    return requests_sql(
        "SELECT line_no, line FROM block",
        dict.fromkeys(FIELD_NAMES, "NULL::VARCHAR"),
        f"""CASE WHEN trim(line, {blank}) = '' THEN {params.bind(BLANK_LINE)}
                 ELSE {params.bind(reason)} END""", params)
