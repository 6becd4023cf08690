"""What the formats share: block cuts, and text fields made into parsed requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from scrapewatch.config import FIELD_NAMES
from scrapewatch.schema import BLANK_LINE
from scrapewatch.sql import Params

# One table of a block to load: the relation it is (`block` or `plain`), the table, and
# the (path, query) pairs its `pair` column numbers, if it has one (see Cut.pairs).
Part = tuple[str, pa.Table, pa.Table | None]
# Per block: the parts to load and the number of directive lines.
Pieces = Iterator[tuple[list[Part], int]]


@dataclass(frozen=True)
class Cut:
    """What a format read of a block at once, and the lines it left over.

    Attributes:
        tables: Each holds line_no and the format's columns, read by its `cut_sql`
            (the schema and its metadata say how).
        rest: Positions (0-based, in the block) of the lines for the per-line query.
        directives: How many lines were format metadata (W3C `#Fields:` and such):
            read, but neither requests nor rejects.
        pairs: For tables with a `pair` column (int32): the distinct (path, query)
            it numbers, as columns n (the number), path and query. Posts depend on
            those alone, so the load works them out once per pair.
    """

    tables: list[pa.Table]
    rest: np.ndarray
    directives: int = 0
    pairs: pa.Table | None = None


# Reads a file's blocks in order (it may keep state from one block to the next, such
# as a W3C header): (lines, number of the first line) -> Cut, or None for "use the
# per-line query for every line".
Cutter = Callable[[pa.StringArray, int], Cut | None]


# A numeric UTC offset in a time text (group 1): a sign and digits (and colons) right
# after the time of day (13:55:36, 13:55:36.123, 13:55:36., 13:55), maybe after one
# space, up to the end or a character that is neither digit nor colon. Java reads it as
# RE2 does.
_BEFORE_OFFSET = r"[0-9]:[0-9]{2}(?:[.,][0-9]*)? ?"
_OFFSET = r"([+-][0-9:]+)(?:[^0-9:]|$)"
OFFSET_REGEX = _BEFORE_OFFSET + _OFFSET
# ... the same offset as group 2, and group 1 all the text before it (Spark rewrites it)
SPLIT_OFFSET_REGEX = f"(?s)^(.*?{_BEFORE_OFFSET}){_OFFSET}"
# The offsets a time may carry, as RFC 3339 and ISO 8601 write them: hours 00-23 and
# minutes 00-59, as +hh:mm, +hhmm or +hh. Any other (+9999, +0060, -2500, seconds) is a
# reject: DuckDB would read it and move the time by up to four days.
VALID_OFFSET_REGEX = r"[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?"

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


def offset_sql(text: str, params: Params) -> str:
    """The numeric UTC offset in the time text `text` (OFFSET_REGEX), or ''."""
    # cheap first: an offset comes after a colon (most times end in Z or nothing)
    after = f"substr({text}, strpos({text}, ':'))"
    return (f"CASE WHEN contains({after}, '+') OR contains({after}, '-') "
            f"THEN regexp_extract({text}, {params.bind(OFFSET_REGEX)}, 1) ELSE '' END")


def bad_offset_sql(offset: str, params: Params) -> str:
    """Whether `offset`, an `offset_sql` ('' for a time with none), is no valid offset."""
    return (f"({offset} <> '' AND NOT regexp_full_match({offset}, "
            f"{params.bind(VALID_OFFSET_REGEX)}))")


_NUMBER = r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?"  # an epoch time's text


def requests_sql(source: str, f: dict[str, str], unparsed: str, params: Params, *,
                 time_format: str | None = None, typed_ts: str | None = None) -> str:
    """From `source` rows and per-field text expressions `f`, the parsed requests.

    `unparsed` is the reject reason of a row that the format could not read at all
    (or NULL). Times may be epoch numbers (unit told by size), ISO 8601 / RFC 3339,
    or CLF `dd/Mon/yyyy:HH:MM:SS +hhmm` (or `time_format`, a strptime pattern); a
    time without an offset is UTC, one with an offset outside VALID_OFFSET_REGEX a
    reject. A path may be a whole request line (`GET /x HTTP/1.1`) or an absolute URL.
    `typed_ts`, when the source holds the time as a TIMESTAMP already (`f['ts']` is
    its text, which has no offset): that, not the text parsed again.
    """
    request_line = params.bind(r"^[A-Za-z]+ (\S.*?)(?: HTTP/[0-9.]+)?$")
    custom_time = (f"try_strptime(ts_text, {params.bind(time_format)})" if time_format
                   else "NULL::TIMESTAMPTZ")
    origin = params.bind(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?]*")
    parsed_time = f"CAST({typed_ts} AS TIMESTAMPTZ)" if typed_ts else f"""
        CASE WHEN regexp_full_match(ts_text, {params.bind(_NUMBER)})
             THEN {epoch_sql('ts_text')}
             ELSE coalesce(TRY_CAST(ts_text AS TIMESTAMPTZ),
                           try_strptime(ts_text, '%d/%b/%Y:%H:%M:%S %z')) END"""
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
               coalesce({custom_time}, {parsed_time}) AS ts,
               {"''" if typed_ts else offset_sql('ts_text', params)} AS offset_text,
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
                         WHEN {bad_offset_sql('offset_text', params)}
                             THEN 'bad UTC offset ' || left(offset_text, 16)
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



def blank_sql(text: str, params: Params) -> str:
    """Whether `text` is a blank line: nothing but spaces, tabs and line ends. Its first
    character is looked at first: trim copies the whole line (1.3 µs a 700-byte line)."""
    return (f"(ascii({text}) IN (0, 9, 10, 13, 32) "
            f"AND trim({text}, {params.bind(' ' + chr(9) + chr(13) + chr(10))}) = '')")


def unread_sql(reason: str, params: Params) -> str:
    """The parse query over `block` for lines a format cannot read where they are (data
    before a header): rejects with `reason`, but for blank lines."""
    return requests_sql(
        "SELECT line_no, line FROM block",
        dict.fromkeys(FIELD_NAMES, "NULL::VARCHAR"),
        f"""CASE WHEN {blank_sql('line', params)} THEN {params.bind(BLANK_LINE)}
                 ELSE {params.bind(reason)} END""", params)


def block_data(lines: pa.StringArray) -> pa.Buffer:
    """The bytes of `lines` (a block, each line keeping its newline), without copying."""
    offsets = np.frombuffer(lines.buffers()[1], np.int32)
    first, last = (int(x) for x in offsets[[lines.offset, lines.offset + len(lines)]])
    return lines.buffers()[2][first:last]
