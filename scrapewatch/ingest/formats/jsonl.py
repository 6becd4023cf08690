"""JSON lines: one request object per line, read with DuckDB's JSON functions.

Each request field is looked up under common names (`ALIASES`), the first present one
winning, unless the config maps the field to a key of its own (`[input.fields]`, dots
for nesting). Timestamps may be ISO-8601 (an offset or `Z`; none means UTC), CLF
(`15/Nov/2024:10:00:00 +0000`) or Unix epoch numbers in s, ms, µs or ns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from scrapewatch.config import InputConfig
from scrapewatch.sql import Params


@dataclass(frozen=True)
class Cut:
    """Lines a format read as a whole block, as columns, and the lines left over.

    Attributes:
        table: line_no and the format's columns (read by its `cut_sql`).
        rest: Positions (0-based, in the block) of the lines for the per-line query.
    """

    table: pa.Table
    rest: np.ndarray

EXAMPLE = ('{"ts": "2024-11-15T10:00:00Z", "client_ip": "203.0.113.7", "api_key": "k-1", '
           '"path": "/2/tweets/search/recent", "query": "max_results=100", "status": 200, '
           '"result_count": 100}')

ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "timestamp", "time", "@timestamp", "datetime", "date", "time_local",
           "time_iso8601"),
    "client_ip": ("client_ip", "ip", "remote_addr", "clientip", "client", "remote_ip",
                  "source_ip"),
    "path": ("path", "uri", "url", "request_uri", "request"),
    "query": ("query", "query_string", "querystring", "args"),
    "method": ("method", "request_method", "http_method"),
    "status": ("status", "status_code", "statuscode", "response", "response_code"),
    "bytes": ("bytes", "body_bytes_sent", "bytes_sent", "response_size", "size"),
    "referer": ("referer", "referrer", "http_referer"),
    "user_agent": ("user_agent", "http_user_agent", "useragent", "ua", "agent"),
    "api_key": ("api_key", "apikey", "api_key_id", "consumer_key"),
    "user": ("user", "user_id", "username", "remote_user", "account"),
    "posts": ("posts", "result_count", "posts_count"),
}


def json_path(key: str) -> str:
    """A DuckDB JSON path for `key`, dots meaning nesting, every part quoted."""
    return "$" + "".join("." + json.dumps(part) for part in key.split("."))


# Fields whose values are names or paths, compared as text
_TEXT_FIELDS = ("client_ip", "api_key", "user", "path", "query", "method", "referer",
                "user_agent")


def _keys(config: InputConfig) -> dict[str, tuple[str, ...]]:
    """The JSON keys read for each field: the mapped one, else the common names."""
    return {field: (config.fields[field],) if field in config.fields else names
            for field, names in ALIASES.items()}


def _lookups(config: InputConfig) -> tuple[list[str], dict[str, str]]:
    """All JSON paths to extract, and per field a SQL expression over the list `v`."""
    paths: list[str] = []
    exprs: dict[str, str] = {}
    for field, keys in _keys(config).items():
        slots = []
        for key in keys:
            paths.append(json_path(key))
            slots.append(f"nullif(nullif(v[{len(paths)}], ''), '-')")
        exprs[field] = f"coalesce({', '.join(slots)})" if len(slots) > 1 else slots[0]
    return paths, exprs


# The most posts one request can return; larger counts are rejected, so that sums of
# any log stay far inside 64-bit integers.
MAX_POSTS = 1_000_000_000


def _epoch_sql(text: str) -> str:
    """An epoch number's instant, its unit told by its size (s, ms, µs, ns)."""
    number = f"TRY_CAST({text} AS DOUBLE)"
    seconds = (f"CASE WHEN abs({number}) < 1e11 THEN {number} WHEN abs({number}) < 1e14 "
               f"THEN {number} / 1e3 WHEN abs({number}) < 1e17 THEN {number} / 1e6 "
               f"ELSE {number} / 1e9 END")
    return f"to_timestamp({seconds})"


def parse_sql(config: InputConfig, params: Params) -> str:
    """The parse query for JSON lines, one JSON parse per line: block(line_no, line)."""
    paths, f = _lookups(config)
    blank = params.bind(" " + chr(13) + chr(10))
    source = f"""
        -- a line that is not JSON gives v = NULL
        SELECT line_no, line, try(json_extract_string(line, {params.bind(paths)})) AS v
        FROM block"""
    unparsed = f"""CASE WHEN v IS NULL AND trim(line, {blank}) = '' THEN 'blank line'
                WHEN v IS NULL THEN 'invalid JSON'
                WHEN {f['ts']} IS NULL AND json_type(line) <> 'OBJECT'
                    THEN 'not a JSON object' END"""
    return _requests_sql(source, f, unparsed, params)


def read_block(lines: pa.StringArray, first_line: int, config: InputConfig) -> Cut | None:
    """The whole block parsed at once by Arrow's JSON reader (C++, several threads).

    None, leaving every line to the per-line query, when the block is not all JSON
    objects of one shape: a blank or broken line, a field whose type changes, a field
    this format reads that is not a plain value, or a mapped field that is nested.
    The columns are renamed c0, c1, ... so that no name from the file reaches SQL.
    """
    if any("." in key for key in config.fields.values()):
        return None
    # Arrow reads '{..}{..}' as two rows and a blank line as none: with no blank line,
    # as many rows as lines means one object per line
    if pc.any(pc.equal(pc.utf8_trim_whitespace(lines), "")).as_py():
        return None
    offsets = lines.buffers()[1]
    first, last = (int(x) for x in np.frombuffer(offsets, np.int32)[
        [lines.offset, lines.offset + len(lines)]])
    data = lines.buffers()[2][first:last]
    try:
        table = pajson.read_json(pa.BufferReader(data))
    except pa.ArrowException:
        return None
    keys = _keys(config)
    wanted = {key for names in keys.values() for key in names}
    text = {key for field in _TEXT_FIELDS for key in keys[field]}
    columns = [name for name in table.column_names if name in wanted]
    if table.num_rows != len(lines) or any(
            not _plain_type(table.schema.field(name).type, name in text) for name in columns):
        return None
    numbers = pa.array(np.arange(first_line, first_line + len(lines), dtype=np.int64))
    renamed = [f"c{i}" for i in range(len(columns))]
    values = pa.table({"line_no": numbers, **{n: table.column(c) for n, c in
                                              zip(renamed, columns, strict=True)}})
    return Cut(values.replace_schema_metadata({"keys": json.dumps(columns)}),
               np.zeros(0, dtype=np.int64))


def block_sql(schema: pa.Schema, config: InputConfig, params: Params) -> str:
    """The parse query over `plain`, a table read by read_block with this schema."""
    keys = json.loads(schema.metadata[b"keys"])
    column = {key: f"c{i}" for i, key in enumerate(keys)}
    f = {}
    for field, names in _keys(config).items():
        slots = [f"nullif(nullif(CAST({column[name]} AS VARCHAR), ''), '-')"
                 for name in names if name in column]
        f[field] = f"coalesce({', '.join(slots)})" if slots else "NULL::VARCHAR"
    source = "SELECT *, NULL::VARCHAR AS line FROM plain"
    return _requests_sql(source, f, "NULL", params)


def _plain_type(kind: pa.DataType, text: bool) -> bool:
    """Whether a column reads as the per-line query reads it: names and paths only as
    text (a number there prints differently once Arrow has parsed it)."""
    if pa.types.is_string(kind) or pa.types.is_null(kind):
        return True
    return not text and bool(pa.types.is_integer(kind) or pa.types.is_floating(kind)
                             or pa.types.is_boolean(kind) or pa.types.is_timestamp(kind))


def _requests_sql(source: str, f: dict[str, str], unparsed: str, params: Params) -> str:
    """From `source` rows and per-field text expressions `f`, the parsed requests.

    `unparsed` is the reject reason of a row that is no JSON object at all (or NULL).
    """
    number = params.bind(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
    request_line = params.bind(r"^[A-Za-z]+ (\S+)(?: HTTP/[0-9.]+)?$")
    origin = params.bind(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?]*")
    return f"""
    -- parse_jsonl: source rows -> parsed requests, one row per line;
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
               CASE WHEN regexp_full_match(ts_text, {number}) THEN {_epoch_sql('ts_text')}
                    ELSE coalesce(TRY_CAST(ts_text AS TIMESTAMPTZ),
                                  try_strptime(ts_text, '%d/%b/%Y:%H:%M:%S %z')) END AS ts,
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
           {f['client_ip']} AS client_ip,
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
           line
    FROM t
    """


def sniff(lines: list[str]) -> float:
    """Share of lines that are JSON objects."""
    def is_object(line: str) -> bool:
        try:
            return isinstance(json.loads(line), dict)
        except ValueError:
            return False

    return sum(1 for line in lines if is_object(line)) / len(lines)
