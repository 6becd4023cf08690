"""JSON lines: one request object per line, read with DuckDB's JSON functions.

Each request field is looked up under common names (`ALIASES`), the first present one
winning, unless the config maps the field to a key of its own (`[input.fields]`, dots
for nesting). Timestamps may be ISO-8601 (an offset or `Z`; none means UTC), CLF
(`15/Nov/2024:10:00:00 +0000`) or Unix epoch numbers in s, ms, µs or ns.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from scrapewatch.config import InputConfig
from scrapewatch.reading.formats import native
from scrapewatch.reading.formats.base import Cut, Cutter, block_data, requests_sql
from scrapewatch.schema import BLANK_LINE
from scrapewatch.sql import Params

EXAMPLE = ('{"ts": "2024-11-15T10:00:00Z", "client_ip": "203.0.113.7", "api_key": "k-1", '
           '"path": "/2/tweets/search/recent", "query": "max_results=100", "status": 200, '
           '"result_count": 100}')

# Field names by preference; a dot means nesting and `[0]` an array's first item. Besides
# the generic names: Elastic Common Schema (`client.ip`, `url.original`, ...), Google
# Cloud HTTP(S) load balancing (`httpRequest.*`), Cloudflare Logpush (`Client*`,
# `Edge*`), Caddy (`request.*`) and Azure Front Door (`properties.*`). A nested name
# comes before the name of its parent object, whose value is no field.
ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "timestamp", "time", "@timestamp", "datetime", "date", "time_local",
           "time_iso8601", "EdgeStartTimestamp"),
    "client_ip": ("client_ip", "client.ip", "source.ip", "ip", "remote_addr", "clientip",
                  "client", "remote_ip", "source_ip", "httpRequest.remoteIp", "ClientIP",
                  "request.client_ip", "request.remote_ip", "properties.clientIp"),
    "path": ("path", "url.original", "uri", "url", "request_uri", "request.uri", "request",
             "httpRequest.requestUrl", "ClientRequestURI", "properties.requestUri"),
    "query": ("query", "query_string", "querystring", "args"),
    "method": ("method", "http.request.method", "request_method", "http_method",
               "httpRequest.requestMethod",
               "ClientRequestMethod", "request.method", "properties.httpMethod"),
    "status": ("status", "http.response.status_code", "status_code", "statuscode",
               "response", "response_code",
               "httpRequest.status", "EdgeResponseStatus", "properties.httpStatusCode"),
    "bytes": ("bytes", "body_bytes_sent", "bytes_sent", "response_size", "size",
              "httpRequest.responseSize", "EdgeResponseBytes", "properties.responseBytes"),
    "referer": ("referer", "referrer", "http_referer", "httpRequest.referer",
                "ClientRequestReferer", "request.headers.Referer[0]"),
    "user_agent": ("user_agent.original", "user_agent", "http_user_agent", "useragent", "ua",
                   "agent",
                   "httpRequest.userAgent", "ClientRequestUserAgent",
                   "request.headers.User-Agent[0]", "properties.userAgent"),
    "api_key": ("api_key", "apikey", "api_key_id", "consumer_key"),
    "user": ("user.name", "user", "user_id", "username", "remote_user", "account"),
    "posts": ("posts", "result_count", "posts_count"),
    "xff": ("x_forwarded_for", "http_x_forwarded_for", "xff", "X-Forwarded-For",
            "forwarded_for"),
}


def json_path(key: str) -> str:
    """A DuckDB JSON path for `key`: dots mean nesting, a final `[N]` an array item;
    every name is quoted."""
    path = "$"
    for part in key.split("."):
        name, index = (part[:-3], part[-3:]) if re.fullmatch(r".+\[[0-9]\]", part) else (part, "")
        path += "." + json.dumps(name) + index
    return path


# Fields whose values are names or paths, compared as text
_TEXT_FIELDS = ("client_ip", "api_key", "user", "path", "query", "method", "referer",
                "user_agent")
# Fields whose values may start with '{'. For the others, such a value is taken for the
# text of an object, which is no value (see _lookups).
_BRACED_FIELDS = ("user_agent", "referer")


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
            value = f"v[{len(paths)}]"
            if field not in _BRACED_FIELDS:
                value = f"CASE WHEN NOT starts_with({value}, '{{') THEN {value} END"
            slots.append(f"nullif(nullif({value}, ''), '-')")
        exprs[field] = f"coalesce({', '.join(slots)})" if len(slots) > 1 else slots[0]
    return paths, exprs


def parse_sql(config: InputConfig, params: Params) -> str:
    """The parse query for JSON lines, one JSON parse per line: block(line_no, line)."""
    paths, f = _lookups(config)
    blank = params.bind(" " + chr(13) + chr(10))
    source = f"""
        -- a line that is not JSON gives v = NULL
        SELECT line_no, line, try(json_extract_string(line, {params.bind(paths)})) AS v
        FROM block"""
    unparsed = f"""CASE WHEN v IS NULL AND trim(line, {blank}) = '' THEN {params.bind(BLANK_LINE)}
                WHEN v IS NULL THEN 'invalid JSON'
                WHEN {f['ts']} IS NULL AND json_type(line) <> 'OBJECT'
                    THEN 'not a JSON object' END"""
    return requests_sql(source, f, unparsed, params)


def read_block(lines: pa.StringArray, first_line: int, config: InputConfig) -> Cut | None:
    """The whole block parsed at once: natively where every line is a flat JSON object
    of the plain shape (native.json_values), else by Arrow's JSON reader (C++, several
    threads).

    None, leaving every line to the per-line query, when the block is not all JSON
    objects of one shape: a blank or broken line, a field whose type changes, a field
    this format reads that is not a plain value, or an object holding a field that is
    read from inside it (`httpRequest.status`).
    The columns are renamed c0, c1, ... so that no name from the file reaches SQL.
    """
    keys = _keys(config)
    flat = list(dict.fromkeys(key for names in keys.values() for key in names
                              if "." not in key and "[" not in key))
    found = native.json_values(lines, flat, set(keys["ts"]))
    if found is None:
        found = _arrow_values(lines, keys)
    if found is None:
        return None
    numbers = pa.array(np.arange(first_line, first_line + len(lines), dtype=np.int64))
    renamed = [f"c{i}" for i in range(len(found))]
    values = pa.table({"line_no": numbers, "line": lines,
                       **dict(zip(renamed, found.values(), strict=True))})
    return Cut([values.replace_schema_metadata({"keys": json.dumps(list(found))})],
               np.zeros(0, dtype=np.int64))


def _arrow_values(lines: pa.StringArray, keys: dict[str, tuple[str, ...]]
                  ) -> dict[str, pa.Array] | None:
    """The columns Arrow's JSON reader reads from `lines` that a field is read from, by
    key; None when the block is not all JSON objects of one shape (see read_block)."""
    nested = {key.split(".")[0].split("[")[0] for names in keys.values() for key in names
              if "." in key or "[" in key}
    # Arrow reads '{..}{..}' as two rows, a blank line as none, and may join an object
    # split over lines: with every line one '{...}', as many rows as lines means one
    # object per line
    if not _braced(lines):
        return None
    try:
        table = pajson.read_json(pa.BufferReader(block_data(lines)))
    except pa.ArrowException:
        return None
    if any(pa.types.is_nested(table.schema.field(name).type)
           for name in nested & set(table.column_names)):
        return None  # a field read from inside an object or array: the per-line query
    wanted = {key for names in keys.values() for key in names}
    text = {key for field in _TEXT_FIELDS for key in keys[field]}
    columns = [name for name in table.column_names if name in wanted]
    if table.num_rows != len(lines) or any(
            not _plain_type(table.schema.field(name).type, text=name in text,
                            time=name in keys["ts"]) for name in columns):
        return None
    unbraced = {key for field, names in keys.items() if field not in _BRACED_FIELDS
                for key in names}
    if any(pa.types.is_string(table.schema.field(name).type)
           and pc.any(pc.starts_with(table.column(name), pattern="{")).as_py()
           for name in columns if name in unbraced):
        return None  # a string the per-line query takes for an object's text
    return {name: table.column(name).combine_chunks() for name in columns}


def _braced(lines: pa.StringArray) -> bool:
    """Whether every line, white space trimmed, starts with '{' and ends with '}'.
    Looked up first in the bytes at each line's ends, where nothing is to trim in
    the lines a JSON logger writes; only otherwise trimmed (a copy of the block)."""
    offsets = np.frombuffer(lines.buffers()[1], np.int32)[lines.offset:lines.offset
                                                          + len(lines) + 1]
    data = np.frombuffer(lines.buffers()[2], np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    if len(lines) and (ends - starts >= 4).all():  # '{}' and "\r\n" at most
        last = ends - 1
        last -= data[last] == ord("\n")  # the newline blocks keep, after a CR maybe
        last -= data[last] == ord("\r")
        if (data[starts] == ord("{")).all() and (data[last] == ord("}")).all():
            return True
    trimmed = pc.utf8_trim_whitespace(lines)
    return bool(pc.all(pc.starts_with(trimmed, pattern="{")).as_py()
                and pc.all(pc.ends_with(trimmed, pattern="}")).as_py())


def cutter(config: InputConfig) -> Cutter:
    """A file's block reader: read_block, which keeps nothing from block to block."""
    return lambda lines, first_line: read_block(lines, first_line, config)


def block_sql(schema: pa.Schema, config: InputConfig, params: Params) -> str:
    """The parse query over `plain`, a table read by read_block with this schema."""
    keys = json.loads(schema.metadata[b"keys"])
    column = {key: f"c{i}" for i, key in enumerate(keys)}
    f = {}
    for field, names in _keys(config).items():
        slots = [f"nullif(nullif(CAST({column[name]} AS VARCHAR), ''), '-')"
                 for name in names if name in column]
        f[field] = f"coalesce({', '.join(slots)})" if slots else "NULL::VARCHAR"
    # times Arrow read as timestamps (every column the time may come from): as they are,
    # rather than printed and parsed again (a third of a block's load query)
    times = [column[name] for name in _keys(config)["ts"] if name in column]
    typed = times and all(pa.types.is_timestamp(schema.field(c).type) for c in times)
    source = "SELECT * FROM plain"
    return requests_sql(source, f, "NULL", params,
                        typed_ts=f"coalesce({', '.join(times)})" if typed else None)


def _plain_type(kind: pa.DataType, *, text: bool, time: bool) -> bool:
    """Whether a column reads as the per-line query reads it: names and paths only as
    text (a number there prints differently once Arrow has parsed it), timestamps only
    as times (the text of an ISO time in another field, a reject's reason, too)."""
    if pa.types.is_string(kind) or pa.types.is_null(kind):
        return True
    if pa.types.is_timestamp(kind):
        return time
    return not text and bool(pa.types.is_integer(kind) or pa.types.is_floating(kind)
                             or pa.types.is_boolean(kind))


def sniff(lines: list[str]) -> float:
    """Share of lines that are JSON objects."""
    def is_object(line: str) -> bool:
        try:
            return isinstance(json.loads(line), dict)
        except (ValueError, RecursionError):  # RecursionError: nested too deep for Python
            return False

    return sum(1 for line in lines if is_object(line)) / len(lines)
