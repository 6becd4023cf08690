"""nginx/Apache Common Log Format and combined, parsed by one DuckDB query per block.

    host ident user [dd/Mon/yyyy:HH:MM:SS +hhmm] "request" status bytes ["referer" "agent"] ...

Tolerated: IPv6 and proxy lists in the host position (`a, b c`), hostnames, Apache's
`\\"` and `\\\\` escapes and nginx's `\\xHH` inside quotes, `-` for absent fields, any
offset of hours 00-23 and minutes 00-59 (another is a reject: `+9999` would move the
time by days), a request that is `-`, empty or raw bytes, and extra trailing fields
(such as a quoted X-Forwarded-For). The client address is the last host of the host
field: the peer that connected, the one address a client cannot forge.
"""

from __future__ import annotations

import re

from scrapewatch.config import InputConfig
from scrapewatch.reading.formats.base import bad_offset_sql, offset_sql
from scrapewatch.schema import BLANK_LINE
from scrapewatch.sql import Params

COMMON_EXAMPLE = ('203.0.113.7 - - [15/Nov/2024:10:00:00 +0000] '
                  '"GET /2/tweets/search/recent?max_results=100 HTTP/1.1" 200 5123')
COMBINED_EXAMPLE = COMMON_EXAMPLE + ' "-" "python-requests/2.32"'

_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # a quoted field with backslash escapes
# ... and, after the agent, nginx's "$http_x_forwarded_for" when it is there
LINE_REGEX = (r"^(\S+(?: \S+)*?) (\S+) (\S+) \[([^\]]+)\] " + _QUOTED
              + r" ([0-9]{3}|-) ([0-9]+|-)(?: " + _QUOTED + " " + _QUOTED
              + "(?: " + _QUOTED + ")?)?")
_LINE = re.compile(LINE_REGEX)
FIELDS = ["client", "ident", "user", "ts", "request", "status", "bytes", "referer",
          "user_agent", "xff"]
TIME_FORMAT = "%d/%b/%Y:%H:%M:%S %z"
# method, target and protocol of a request line; anything else (raw bytes) has none.
REQUEST_REGEX = r"^([A-Za-z]+) (.*?)(?: HTTP/[0-9.]+)?$"
# Lines of the plain shape, cut at fixed places instead (see parse_sql): host, ident
# and user, one token each of what LINE_REGEX reads as \S (no tab either), a
# 26-character time with a valid offset (base.VALID_OFFSET_REGEX), a
# `METHOD target HTTP/x` request, no quote or backslash in any field, a 3-digit
# status, then the end of the line after the size (common), or the quoted referer and
# agent (combined), maybe one more quoted field (nginx's X-Forwarded-For) and unquoted
# fields after them (timings), to the end of the line.
_PLAIN_FIELD = r'"[^"\\]*"'
PLAIN_REGEX = (r'^[^\s"\\]+ [^\s"\\]+ [^\s"\\]+ \[[0-9]{2}/[A-Za-z]{3}/[0-9]{4}(?::[0-9]{2}){3} '
               r'[+-](?:[01][0-9]|2[0-3])[0-5][0-9]\] '
               r'"[A-Za-z]+ [^" \\]+ HTTP/[0-9.]+" [0-9]{3} (?:[0-9]+|-)(?: '
               + _PLAIN_FIELD + " " + _PLAIN_FIELD + "(?: " + _PLAIN_FIELD + r')?(?: [^"\\]*)?)?'
               r"\r?\n?$")
ORIGIN_REGEX = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?]*"  # scheme://host of an absolute target
LAST_HOST_REGEX = r'\[?([^\s,"\[\]]+)\]?"?$'  # last host of "a, b" c or [v6]
ONE_HOST_REGEX = r'^[^\s,"\[\]]+$'  # the usual case: the host field is one address


def _fits(line: str) -> re.Match[str] | None:
    return _LINE.match(line)


def sniff_common(lines: list[str]) -> float:
    """Share of lines that are CLF lines without referer and agent."""
    return sum(1 for line in lines if (m := _fits(line)) and m[8] is None) / len(lines)


def sniff_combined(lines: list[str]) -> float:
    """Share of lines that are CLF lines, when at least one carries referer and agent."""
    matches = [m for line in lines if (m := _fits(line))]
    if not any(m[8] is not None for m in matches):
        return 0.0
    return len(matches) / len(lines)


def parse_sql(config: InputConfig, params: Params) -> str:
    """The parse query for common and combined lines (the two share one grammar).

    Most lines have a plain shape (see PLAIN_REGEX): a capture-free regex recognises
    them and fixed positions after one `string_split` on '"' cut them, several times
    faster than regex captures. Every other line goes through the exact regex.
    """
    del config  # CLF has fixed positions: no field mapping applies
    return f"""
    -- parse_clf: block(line_no, line) -> parsed requests, one row per line;
    -- reject_reason is NULL for a request and says why otherwise.
    WITH s AS (
        SELECT line_no, line, regexp_matches(line, {params.bind(PLAIN_REGEX)}) AS plain
        FROM block
    ), m AS (
        -- q[1] = 'host ident user [dd/Mon/yyyy:HH:MM:SS +hhmm] ', q[2] = 'GET /x HTTP/1.1',
        -- q[3] = ' status size', q[4] = referer, q[6] = user agent, q[8] = a quoted
        -- field after it (X-Forwarded-For); f: the exact regex
        SELECT line_no, line, plain,
               CASE WHEN plain THEN string_split(line, '"') END AS q,
               CASE WHEN NOT plain
                    THEN regexp_extract(line, {params.bind(LINE_REGEX)}, {params.bind(FIELDS)})
               END AS f
        FROM s
    ), fields AS (
        SELECT line_no, line, plain,
               CASE WHEN plain THEN split_part(q[1], ' ', 1) ELSE f.client END AS client,
               CASE WHEN plain THEN split_part(q[1], ' ', 3) ELSE f.user END AS "user",
               CASE WHEN plain THEN substr(q[1], length(q[1]) - 27, 26) ELSE f.ts END
                   AS ts_text,
               CASE WHEN plain THEN split_part(q[2], ' ', 1)
                    ELSE regexp_extract(f.request, {params.bind(REQUEST_REGEX)}, 1) END
                   AS method,
               CASE WHEN plain THEN split_part(q[2], ' ', 2)
                    ELSE regexp_extract(f.request, {params.bind(REQUEST_REGEX)}, 2) END
                   AS raw_target,
               CASE WHEN plain THEN substr(q[3], 2, 3) ELSE f.status END AS status,
               CASE WHEN plain
                    THEN split_part(rtrim(substr(q[3], 6), {params.bind(chr(13) + chr(10))}),
                                    ' ', 1)
                    ELSE f.bytes END AS bytes,
               CASE WHEN plain THEN q[4] ELSE f.referer END AS referer,
               CASE WHEN plain THEN q[6] ELSE f.user_agent END AS user_agent,
               CASE WHEN NOT plain THEN f.xff WHEN len(q) = 9 THEN q[8] END AS xff
        FROM m
    ), p AS (
        SELECT *, try_strptime(ts_text, {params.bind(TIME_FORMAT)}) AS ts,
               -- a plain line's offset is valid (PLAIN_REGEX)
               CASE WHEN plain THEN '' ELSE {offset_sql('ts_text', params)} END AS offset_text
        FROM fields
    ), t AS (
        SELECT *, CASE WHEN starts_with(raw_target, '/') THEN raw_target
                       ELSE regexp_replace(raw_target, {params.bind(ORIGIN_REGEX)}, '') END
                      AS target
        FROM p
    )
    SELECT line_no,
           CASE WHEN ts_text = '' AND trim(line, {params.bind(" " + chr(13) + chr(10))}) = ''
                    THEN {params.bind(BLANK_LINE)}
                WHEN ts_text = '' THEN 'not a common/combined log line'
                WHEN {bad_offset_sql('offset_text', params)}
                    THEN 'bad UTC offset ' || left(offset_text, 16)
                WHEN ts IS NULL THEN 'bad timestamp ' || ts_text END AS reject_reason,
           ts,
           CASE WHEN plain AND NOT contains(client, ',') AND NOT contains(client, '[')
                    THEN client
                WHEN regexp_matches(client, {params.bind(ONE_HOST_REGEX)}) THEN client
                ELSE nullif(regexp_extract(client, {params.bind(LAST_HOST_REGEX)}, 1), '')
           END AS client_ip,
           nullif(nullif("user", '-'), '') AS "user",
           NULL::VARCHAR AS api_key,
           nullif(method, '') AS method,
           nullif(split_part(target, '?', 1), '') AS path,
           CASE WHEN contains(target, '?') THEN substr(target, strpos(target, '?') + 1) END
               AS query,
           TRY_CAST(status AS SMALLINT) AS status,
           TRY_CAST(bytes AS BIGINT) AS bytes,
           nullif(nullif(referer, '-'), '') AS referer,
           nullif(nullif(user_agent, '-'), '') AS user_agent,
           NULL::BIGINT AS posts,
           nullif(nullif(xff, '-'), '') AS xff,
           line
    FROM t
    """
