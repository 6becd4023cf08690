"""nginx/Apache Common Log Format and combined, as one DuckDB regex query.

    host ident user [dd/Mon/yyyy:HH:MM:SS +hhmm] "request" status bytes ["referer" "agent"] ...

Tolerated: IPv6 and proxy lists in the host position (`a, b c`), hostnames, Apache's
`\\"` and `\\\\` escapes and nginx's `\\xHH` inside quotes, `-` for absent fields, any
offset, a request that is `-`, empty or raw bytes, and extra trailing fields (such as a
quoted X-Forwarded-For). The client address is the last host of the host field: the
peer that connected, the one address a client cannot forge.
"""

from __future__ import annotations

import re

from scrapewatch.config import InputConfig
from scrapewatch.sql import Params

COMMON_EXAMPLE = ('203.0.113.7 - - [15/Nov/2024:10:00:00 +0000] '
                  '"GET /2/tweets/search/recent?max_results=100 HTTP/1.1" 200 5123')
COMBINED_EXAMPLE = COMMON_EXAMPLE + ' "-" "python-requests/2.32"'

_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # a quoted field with backslash escapes
LINE_REGEX = (r"^(\S+(?: \S+)*?) (\S+) (\S+) \[([^\]]+)\] " + _QUOTED
              + r" ([0-9]{3}|-) ([0-9]+|-)(?: " + _QUOTED + " " + _QUOTED + ")?")
_LINE = re.compile(LINE_REGEX)
FIELDS = ["client", "ident", "user", "ts", "request", "status", "bytes", "referer",
          "user_agent"]
TIME_FORMAT = "%d/%b/%Y:%H:%M:%S %z"
# method, target and protocol of a request line; anything else (raw bytes) has none.
REQUEST_REGEX = r"^([A-Za-z]+) (.*?)(?: HTTP/[0-9.]+)?$"
# Lines of the plain shape, cut by string_split instead (see parse_sql): a one-token
# host, no quote or backslash in any field, a 3-digit status, and either the end of the
# line after the size (common) or the quoted referer and agent (combined).
_PLAIN_FIELD = r'"[^"\\]*"'
PLAIN_REGEX = (r'^[^" \\]+ [^" \\]+ [^" \\]+ \[[^\]"\\]+\] ' + _PLAIN_FIELD
               + r" [0-9]{3} (?:[0-9]+|-)(?: " + _PLAIN_FIELD + " " + _PLAIN_FIELD
               + r"|\r?\n?$)")
PLAIN_REQUEST_REGEX = r"^[A-Za-z]+ [^ ]+ HTTP/[0-9.]+$"
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

    Most lines have a plain shape (one-token host, no quote or backslash inside a
    field): a capture-free regex recognises them and `string_split` on '"' cuts them,
    several times faster than regex captures. Every other line goes through the exact
    regex with captures, which gives the same fields for the plain ones.
    """
    del config  # CLF has fixed positions: no field mapping applies
    trailer = params.bind(chr(13) + chr(10) + " ")
    return f"""
    -- parse_clf: block(line_no, line) -> parsed requests, one row per line;
    -- reject_reason is NULL for a request and says why otherwise.
    WITH s AS (
        SELECT line_no, line, regexp_matches(line, {params.bind(PLAIN_REGEX)}) AS plain,
               CASE WHEN plain THEN string_split(line, '"') END AS q
        FROM block
    ), m AS (
        SELECT line_no, line,
               CASE WHEN plain THEN struct_pack(
                        client := split_part(q[1], ' ', 1),
                        ident := split_part(q[1], ' ', 2),
                        "user" := split_part(q[1], ' ', 3),
                        ts := split_part(split_part(q[1], '[', 2), ']', 1),
                        request := q[2],
                        status := split_part(trim(q[3], {trailer}), ' ', 1),
                        bytes := split_part(trim(q[3], {trailer}), ' ', 2),
                        referer := q[4],
                        user_agent := q[6])
                    ELSE regexp_extract(line, {params.bind(LINE_REGEX)}, {params.bind(FIELDS)})
               END AS f
        FROM s
    ), p AS (
        SELECT line_no, line, f,
               try_strptime(f.ts, {params.bind(TIME_FORMAT)}) AS ts,
               CASE WHEN regexp_matches(f.request, {params.bind(PLAIN_REQUEST_REGEX)})
                    THEN struct_pack(method := split_part(f.request, ' ', 1),
                                     target := split_part(f.request, ' ', 2))
                    ELSE regexp_extract(f.request, {params.bind(REQUEST_REGEX)},
                                        ['method', 'target']) END AS r
        FROM m
    ), t AS (
        SELECT *, CASE WHEN starts_with(r.target, '/') THEN r.target
                       ELSE regexp_replace(r.target, {params.bind(ORIGIN_REGEX)}, '') END AS target
        FROM p
    )
    SELECT line_no,
           CASE WHEN f.ts = '' AND trim(line, {trailer}) = '' THEN 'blank line'
                WHEN f.ts = '' THEN 'not a common/combined log line'
                WHEN ts IS NULL THEN 'bad timestamp ' || f.ts END AS reject_reason,
           ts,
           CASE WHEN regexp_matches(f.client, {params.bind(ONE_HOST_REGEX)}) THEN f.client
                ELSE nullif(regexp_extract(f.client, {params.bind(LAST_HOST_REGEX)}, 1), '')
           END AS client_ip,
           nullif(nullif(f.user, '-'), '') AS "user",
           NULL::VARCHAR AS api_key,
           nullif(r.method, '') AS method,
           nullif(split_part(target, '?', 1), '') AS path,
           CASE WHEN contains(target, '?') THEN substr(target, strpos(target, '?') + 1) END
               AS query,
           TRY_CAST(f.status AS SMALLINT) AS status,
           TRY_CAST(f.bytes AS BIGINT) AS bytes,
           nullif(nullif(f.referer, '-'), '') AS referer,
           nullif(nullif(f.user_agent, '-'), '') AS user_agent,
           NULL::BIGINT AS posts,
           line
    FROM t
    """
