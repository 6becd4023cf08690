"""W3C extended log files (IIS and others) and CloudFront standard logs: header-driven.

Lines starting with '#' are directives. `#Fields:` names the columns of the lines that
follow, up to the next `#Fields:` (IIS starts a new header when it restarts, in the
middle of a file); `#GMT-Offset:` gives the offset of the times that follow; the rest
(`#Version`, `#Software`, `#Remark`) are read and skipped, but for `#Date:`, whose
day stands in for a missing `date` field (IIS 4 logs only the time). W3C values are
separated by spaces and may be quoted ("" for a quote inside); CloudFront's by tabs,
URL-encoded (split natively where the extension is built: native.split_tables). Times
are UTC unless a `#GMT-Offset:` says otherwise; a `#GMT-Offset:` that is no valid
offset (base.VALID_OFFSET_REGEX) makes the lines under it rejects.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scrapewatch.config import InputConfig
from scrapewatch.reading.formats import native
from scrapewatch.reading.formats.base import (
    VALID_OFFSET_REGEX,
    Cut,
    Cutter,
    blank_sql,
    requests_sql,
    unread_sql,
)
from scrapewatch.schema import BLANK_LINE
from scrapewatch.sql import Params

W3C_EXAMPLE = ("2024-11-15 10:00:00 10.0.0.5 GET /2/tweets/search/recent max_results=100 443 "
               "- 203.0.113.7 python-requests/2.32 - 200 0 0 15")
CLOUDFRONT_EXAMPLE = "\t".join((
    "2024-11-15", "10:00:00", "LAX1", "392", "203.0.113.7", "GET", "d111111abcdef8.cloudfront.net",
    "/2/tweets/search/recent", "200", "-", "python-requests/2.32", "max_results=100", "-", "Miss",
    "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", "api.example.com", "https", "23",
    "0.001", "-", "TLSv1.3", "TLS_AES_128_GCM_SHA256", "Miss", "HTTP/2.0", "-", "-", "11040",
    "0.001", "Miss", "application/json", "5123", "-", "-"))

# Request field <- the W3C fields that may hold it, by preference (names compare in
# lower case). Local times are read as UTC unless a #GMT-Offset says otherwise.
W3C_FIELDS: dict[str, tuple[str, ...]] = {
    "date": ("date", "date-local"),
    "time": ("time", "time-local"),
    "client_ip": ("c-ip",),
    "user": ("cs-username", "c-auth-id"),
    "method": ("cs-method",),
    "path": ("cs-uri-stem", "cs-uri"),
    "query": ("cs-uri-query",),
    "status": ("sc-status",),
    "bytes": ("sc-bytes", "bytes"),
    "referer": ("cs(referer)", "cs(referrer)"),
    "user_agent": ("cs(user-agent)",),
    "xff": ("x-forwarded-for", "cs(x-forwarded-for)"),
}
# A W3C value and the blanks after it: quoted only when the quotes span the whole value
# (IIS never quotes: a user agent of "a"x is one value there).
_TOKEN = r'("(?:[^"]|"")*"|[^ \t\r\n]+)(?:[ \t]+|\r?\n?$)'
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def sniff_w3c(lines: list[str]) -> float:
    """1 when a `#Fields:` directive (not CloudFront's) is among the lines."""
    fields = _fields_in(lines)
    return float(fields is not None and "x-edge-location" not in fields)


def sniff_cloudfront(lines: list[str]) -> float:
    """1 when a CloudFront `#Fields:` directive is among the lines."""
    fields = _fields_in(lines)
    return float(fields is not None and "x-edge-location" in fields)


def _fields_in(lines: list[str]) -> list[str] | None:
    for line in lines:
        if line.startswith("#Fields:"):
            return _field_list(line)
    return None


def _field_list(line: str) -> list[str]:
    """The field names of a `#Fields:` line, lower case (lnav's fixtures show `// ...`
    comments after them)."""
    return [name.lower() for name in line[len("#Fields:"):].split("//")[0].split()]


def parse_sql(config: InputConfig, params: Params) -> str:
    """The per-line query: only for lines before any `#Fields:`, which cannot be read."""
    del config
    return unread_sql("no #Fields: directive before this line", params)


def cutter(config: InputConfig) -> Cutter:
    """A file's block reader, which carries the current `#Fields:` from block to block."""
    del config
    return _Directives().cut


class _Directives:
    """The directives in force: the field list, the time offset and the log's date."""

    def __init__(self) -> None:
        self.fields: list[str] | None = None
        self.offset = ""
        self.date = ""

    def cut(self, lines: pa.StringArray, first_line: int) -> Cut:
        """Each run of data lines under one `#Fields:` as a table; directives read and
        skipped; data lines before any `#Fields:` left to the per-line query (rejected)."""
        starts = pc.starts_with(lines, pattern="#").to_numpy(zero_copy_only=False)
        directives = np.flatnonzero(starts).tolist()
        tables: list[pa.Table] = []
        rest: list[np.ndarray] = []
        runs = zip([-1, *directives], [*directives, len(lines)], strict=True)
        for at, end in runs:  # the directive at `at` (none for -1), then data up to `end`
            if at >= 0:
                self._read(lines[at].as_py().rstrip("\r\n"))
            if self.fields is None:
                rest.append(np.arange(at + 1, end))
            elif end > at + 1:
                tables.extend(self._tables(lines, first_line, at + 1, end))
        return Cut(tables, np.concatenate(rest) if rest else np.arange(0),
                   directives=len(directives))

    def _read(self, directive: str) -> None:
        if directive.startswith("#Fields:"):
            self.fields = _field_list(directive)
        elif directive.startswith("#GMT-Offset:"):
            # checked in block_sql: a bad offset makes the lines under it rejects
            self.offset = directive[len("#GMT-Offset:"):].strip()
        elif directive.startswith("#Date:"):
            day = directive[len("#Date:"):].split()[:1]
            self.date = day[0] if day and _DATE.match(day[0]) else ""

    def _tables(self, lines: pa.StringArray, first_line: int, start: int,
                end: int) -> list[pa.Table]:
        assert self.fields is not None
        table = pa.table({"line_no": pa.array(np.arange(first_line + start, first_line + end)),
                          "line": lines.slice(start, end - start)})
        table = table.replace_schema_metadata({"fields": json.dumps(self.fields),
                                               "offset": self.offset, "date": self.date})
        if "x-edge-location" not in self.fields:
            return [table]
        # CloudFront's tab-separated lines, split natively where the extension is built
        return native.split_tables(table, "\t", quoting=False, expected=-1,
                                   wanted=sorted(set(_positions(self.fields).values())))


def _positions(fields: list[str]) -> dict[str, int]:
    """Request field (and date, time) -> the position of the W3C field it is read from."""
    found = {}
    for field, names in W3C_FIELDS.items():
        present = [name for name in names if name in fields]
        if present:
            found[field] = fields.index(present[0])
    return found


def block_sql(schema: pa.Schema, config: InputConfig, params: Params) -> str:
    """The parse query over `plain`: data lines under one field list (schema metadata)."""
    del config
    fields = json.loads(schema.metadata[b"fields"])
    offset = schema.metadata[b"offset"].decode()
    day = schema.metadata[b"date"].decode() or None
    cloudfront = "x-edge-location" in fields
    split = b"split" in schema.metadata  # split natively: v<n> columns, no blank line
    positions = _positions(fields)
    if split:
        source = "SELECT * FROM plain"
    elif cloudfront:  # tab-separated, URL-encoded, never quoted
        source = (f"SELECT line_no, line, string_split(rtrim(line, "
                  f"{params.bind(chr(13) + chr(10))}), chr(9)) AS v FROM plain")
    else:  # quoted values or a run of spaces need the tokenising regex; most lines do not
        source = (f"SELECT line_no, line, CASE WHEN contains(line, '\"') OR contains(line, '  ') "
                  f"THEN regexp_extract_all(ltrim(line), {params.bind(_TOKEN)}, 1) "
                  f"ELSE string_split(rtrim(line, {params.bind(' ' + chr(13) + chr(10))}), ' ') "
                  f"END AS v FROM plain")

    def value(field: str) -> str:
        if field not in positions:
            return "NULL::VARCHAR"
        v = f"v{positions[field] + 1}" if split else f"v[{positions[field] + 1}]"
        if not cloudfront:
            v = (f"CASE WHEN starts_with({v}, '\"') AND ends_with({v}, '\"') AND strlen({v}) > 1 "
                 f"THEN replace({v}[2:-2], '\"\"', '\"') ELSE {v} END")
        elif field in ("referer", "user_agent"):
            v = f"url_decode({v})"
        return f"nullif(nullif({v}, ''), '-')"

    f = {field: value(field) for field in W3C_FIELDS if field not in ("date", "time")}
    good_offset = re.fullmatch(VALID_OFFSET_REGEX, offset) is not None
    f["ts"] = (f"(coalesce({value('date')}, {params.bind(day)}) || ' ' || {value('time')} "
               f"|| {params.bind(offset if good_offset else '')})")
    f.update(api_key="NULL::VARCHAR", posts="NULL::VARCHAR")
    # CloudFront's tab-separated values cannot shift (it has shipped rows one field short
    # and one long); space-separated W3C values can, so their count must match #Fields
    count = "" if cloudfront else (
        f"WHEN len(v) <> {len(fields)} THEN len(v) || ' values; #Fields names {len(fields)}'")
    if offset and not good_offset:  # every data line under it is a reject
        count = f"ELSE {params.bind(f'bad UTC offset {offset[:16]} in #GMT-Offset:')}"
    return requests_sql(
        source, f,
        f"CASE WHEN {blank_sql('line', params)} THEN {params.bind(BLANK_LINE)} {count} END",
        params)
