"""JSON lines read a block at a time (Arrow's reader) parse exactly as line by line."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from helpers import load
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapewatch.config import InputConfig, load_config
from scrapewatch.engine.duckdb import connect
from scrapewatch.reading.formats import jsonl, native
from scrapewatch.reading.sources import LogSource, lines_array
from scrapewatch.sql import Params


def parse_both(text: str, config: InputConfig | None = None, *, arrow: bool = False
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(per-line rows, block rows or None when the block reader declines). The block
    is read natively where the extension is built and the block is plain, else (and
    with `arrow`) by Arrow's JSON reader."""
    per_line, blocks = parse_all(text, config)
    return per_line, blocks[arrow]


def parse_all(text: str, config: InputConfig | None = None
              ) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]] | None]]:
    """(per-line rows, [block rows as read_block reads them, as Arrow's reader alone
    reads them], each None when declined)."""
    config = config or load_config().input
    lines = lines_array(text.encode())
    con = _connection()
    con.register("block", pa.table({"line_no": pa.array(range(1, len(lines) + 1), pa.int64()),
                                    "line": lines}))
    per_line = _rows(con, jsonl.parse_sql, config, None)
    blocks = []
    for arrow in (False, True):
        with pytest.MonkeyPatch.context() as patch:
            if arrow:
                patch.setattr(native, "_linecut", None)
            cut = jsonl.read_block(lines, 1, config)
        if cut is None:
            blocks.append(None)
            continue
        [table] = cut.tables
        con.register("plain", table)
        blocks.append(_rows(con, jsonl.block_sql, config, table.schema))
    return per_line, blocks


@functools.cache
def _connection() -> Any:
    """One connection for every parse here: connecting takes longer than a parse."""
    return connect()


def _rows(con: Any, build: Any, config: InputConfig, schema: pa.Schema | None
          ) -> list[dict[str, Any]]:
    params = Params()
    sql = build(config, params) if schema is None else build(schema, config, params)
    result = con.execute(sql + " ORDER BY line_no", params.values)
    names = [d[0] for d in result.description]
    return [{k: v for k, v in zip(names, row, strict=True) if k != "line"}
            for row in result.fetchall()]


def test_a_clean_block_is_read_at_once_and_parses_the_same() -> None:
    text = "".join(json.dumps(r) + "\n" for r in [
        {"ts": "2025-03-04T10:00:00Z", "client_ip": "192.0.2.1", "path": "/2/tweets/1",
         "status": 200, "result_count": 7, "api_key": None},
        {"ts": "2025-03-04T10:00:01+02:00", "client_ip": "192.0.2.2",
         "path": "/2/tweets/search/recent?max_results=30", "status": 404,
         "result_count": None, "api_key": "k1"},
    ])
    per_line, block = parse_both(text)
    assert block == per_line
    assert [r["reject_reason"] for r in block] == [None, None]


def test_blocks_it_cannot_read_whole_go_line_by_line() -> None:
    good = '{"ts": "2025-03-04T10:00:00Z", "ip": "192.0.2.1"}\n'
    for text in (good + "\n" + good,                                  # a blank line
                 good + "{broken\n",                                  # invalid JSON
                 good + '{"ts": "2025-03-04T10:00:00Z", "ip": {"v": 4}}\n',  # not a value
                 good + "[1, 2]\n"):                                  # not an object
        assert parse_both(text)[1] is None, text
        assert parse_both(text, arrow=True)[1] is None, text
    nested = InputConfig(fields={"ts": "event.at"})
    assert parse_both('{"event": {"at": "2025-03-04T10:00:00Z"}}\n', nested)[1] is None
    # Arrow's reader needs one type a column; the native one reads values as text
    changes = good + '{"ts": 5, "ip": "192.0.2.1"}\n'
    assert parse_both(changes, arrow=True)[1] is None
    if native.built():
        per_line, block = parse_both(changes)
        assert block == per_line


# Each block uses one JSON type per key, as a real log does (Arrow's reader needs it).
TIMESTAMP_KINDS = [
    st.sampled_from(["2025-03-04T10:00:00Z", "2025-03-04T10:00:00.250Z",
                     "2025-03-04T12:00:00+02:00", "2025-03-04 10:00:00",
                     "04/Mar/2025:10:00:00 +0000", "yesterday", ""]),
    # ISO times alone, which Arrow reads as timestamps, at the edges of the years read
    st.sampled_from(["2025-03-04T10:00:00Z", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z",
                     "9999-12-31T23:59:59Z", "0999-03-04T10:00:00Z", "2024-02-29T23:59:59",
                     "2025-03-04T10:00:00.999999Z", "2025-03-04T00:30:00-01:00"]),
    st.integers(1_700_000_000, 1_800_000_000),                          # seconds
    st.integers(1_700_000_000_000, 1_800_000_000_000),                  # milliseconds
    st.integers(1_700_000_000_000_000_000, 1_800_000_000_000_000_000),  # nanoseconds
    st.floats(1.7e9, 1.8e9, allow_nan=False),
]


def records(ts: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "ts": ts,
        "ip": st.sampled_from(["192.0.2.1", "2001:db8::1", "-", ""]),
        "user": st.one_of(st.none(), st.sampled_from(["alice", "-", ""])),
        "uri": st.sampled_from(["/2/tweets/search/all?max_results=300", "/2/tweets?ids=1,2",
                                "https://api.x.com/2/tweets/9", "GET /2/tweets/1 HTTP/1.1",
                                "/x"]),
        "status": st.one_of(st.integers(100, 599), st.none()),
        "result_count": st.one_of(st.none(), st.integers(-2, 10**6)),
    })


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_block_and_line_by_line_agree(data: st.DataObject) -> None:
    ts = TIMESTAMP_KINDS[data.draw(st.integers(0, len(TIMESTAMP_KINDS) - 1))]
    block_records = data.draw(st.lists(records(ts), min_size=1, max_size=6))
    per_line, blocks = parse_all("".join(json.dumps(r) + "\n" for r in block_records))
    for block in blocks:
        if block is not None:
            assert block == per_line


def test_the_block_reader_takes_blocks_of_every_timestamp_kind() -> None:
    for ts in (["2025-03-04T10:00:00Z"], [1_741_082_400], [1_741_082_400.5],
               [1_741_082_400_000], ["2025-03-04T12:00:00+02:00"]):
        text = "".join(json.dumps({"ts": t, "ip": "192.0.2.1"}) + "\n" for t in ts * 3)
        for arrow in (False, True):
            per_line, block = parse_both(text, arrow=arrow)
            assert block == per_line and block is not None, ts


def test_blocks_with_other_keys_of_the_same_types_get_their_own_query(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # block 1 has ts and ip (both strings), block 2 ts and user: same column types
    first = '{"ts": "2025-03-04T10:00:00Z", "ip": "192.0.2.1"}\n' * 3
    second = '{"ts": "2025-03-04T10:00:01Z", "user": "alice"}\n' * 3
    path = tmp_path / "two-shapes.jsonl"
    path.write_text(first + second)
    small = functools.partialmethod(LogSource.blocks, block_bytes=len(first))
    monkeypatch.setattr(LogSource, "blocks", small)
    _, requests, rejects = load(path, "jsonl")
    assert rejects == []
    assert [(r[2], r[3]) for r in requests] == [("client_ip", "192.0.2.1")] * 3 + [
        ("user", "alice")] * 3


def test_a_plain_field_named_like_an_object_keeps_the_block_path() -> None:
    """`user` is also the parent of the `user.name` alias; as text it is read at once."""
    text = json.dumps({"ts": "2025-03-04T10:00:00Z", "user": "bob", "path": "/x"}) + "\n"
    per_line, block = parse_both(text)
    assert block is not None and block == per_line
    assert block[0]["user"] == "bob"


def test_an_object_where_a_field_is_expected_is_no_value() -> None:
    """Caddy's `request` is an object: the path is its `uri`, not the object's text."""
    text = json.dumps({"ts": 1731664800, "request": {"remote_ip": "192.0.2.1",
                                                      "uri": "/2/tweets?ids=1,2"}}) + "\n"
    per_line, block = parse_both(text)
    assert block is None  # read from inside an object: the per-line query
    assert (per_line[0]["client_ip"], per_line[0]["path"], per_line[0]["query"]) == (
        "192.0.2.1", "/2/tweets", "ids=1,2")


def test_an_object_split_over_lines_is_not_read_at_once() -> None:
    text = ('{"ts": "2025-03-04T10:00:00Z",\n'
            '"ip": "6.6.6.6"}{"ts": "2025-03-04T10:00:01Z", "ip": "192.0.2.1"}\n'
            '{"ts": "2025-03-04T10:00:02Z", "ip": "192.0.2.2"}\n')
    per_line, block = parse_both(text)
    assert block is None
    assert [r["reject_reason"] for r in per_line] == ["invalid JSON", "invalid JSON", None]


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.text(alphabet="{}\r\n \t\u00a0xa", max_size=8), min_size=1,
                      max_size=6), start=st.integers(0, 3))
def test_braced_lines_are_found_as_trimming_finds_them(lines: list[str], start: int) -> None:
    """The block reader's quick look at each line's first and last bytes agrees with
    trimming every line, whatever the white space and line ends."""
    import pyarrow.compute as pc

    block = lines_array("".join(lines).encode()).slice(start)
    if not len(block):
        return
    trimmed = pc.utf8_trim_whitespace(block)
    expected = (pc.all(pc.starts_with(trimmed, pattern="{")).as_py()
                and pc.all(pc.ends_with(trimmed, pattern="}")).as_py())
    assert jsonl._braced(block) == expected


# Pieces of JSON lines for the block readers: keys read and not; values of every JSON
# kind, broken ones, times of every shape. A valid block holds JSON objects only, each
# key once a line, most of them values the native reader takes; its times may all be
# ISO times of the plain shape (which it reads as timestamps).
JSON_KEYS = ['"ts"', '"timestamp"', '"client_ip"', '"ip"', '"api_key"', '"user"', '"path"',
             '"query"', '"status"', '"result_count"', '"uri"', '"user_agent"', '"other"',
             '"é"', '""']
ISO_TIMES = ['"2025-03-04T10:00:00Z"', '"2025-03-04T10:00:00.123456Z"', '"1969-12-31T23:59:59Z"',
             '"9999-12-31T23:59:59Z"', '"2025-03-04T10:00:00.5Z"', '"2024-02-29T23:59:59Z"',
             '"2025-03-04T10:00:00.1234567Z"', '"2025-02-29T00:00:00Z"', '"0999-03-04T10:00:00Z"']
OTHER_TIMES = ['"2025-03-04T10:00:00+02:00"', '"2025-03-04 10:00:00"', '"2024-02-29T23:59:59"',
               '"04/Mar/2025:10:00:00 +0000"', '1741082400', '1741082400000',
               '1741082400000000000']
NATIVE_VALUES = [
    '""', '"-"', '"192.0.2.1"', '"2001:db8::1"', '"k-1"', '"/2/tweets?ids=1,2"',
    '"/2/tweets/search/recent"', '"max_results=100"', '"GET /2/tweets/1 HTTP/1.1"',
    '"https://api.x.com/2/tweets/9"', '"é"', '200', '404', '-1', '0', '123456789012345678',
    'null', *ISO_TIMES[:2]]
VALID_VALUES = ['"{x}"', '"a\\"b"', '"\\u00e9"', '"a\\/b"', '-0', '1e3', '1.5',
                '1234567890123456789', 'true', 'false', '{"a": 1}', '[1, 2]', '[]', '{}']
BROKEN_VALUES = ['"a\tb"', '"\\x"', '"open', '2.', '007', '-', 'nul']
SPACES = ["", " ", "\t", "  "]
TIME_KEYS = ('"ts"', '"timestamp"')


@st.composite
def json_lines(draw: st.DrawFn, times: list[str] | None) -> str:
    """A line; with `times`, a valid JSON object whose times are of `times`."""
    values = (NATIVE_VALUES * 6 + VALID_VALUES if times is not None else
              NATIVE_VALUES + VALID_VALUES + BROKEN_VALUES + ISO_TIMES + OTHER_TIMES)
    keys = draw(st.lists(st.sampled_from(JSON_KEYS), max_size=6, unique=times is not None))
    space = st.sampled_from(SPACES)
    def value(key: str) -> str:
        return draw(st.sampled_from(times if times and key in TIME_KEYS else values))

    body = ",".join(f"{draw(space)}{key}{draw(space)}:{draw(space)}{value(key)}{draw(space)}"
                    for key in keys)
    if times is not None:
        return draw(space) + "{" + body + "}" + draw(space)
    line = draw(st.sampled_from(["{", " {", "["])) + body + draw(st.sampled_from(
        ["}", "} ", "}\r", "", "}}", "},"]))
    return line if draw(st.integers(0, 9)) else draw(st.sampled_from(["", "  ", "x", "{"]))


@settings(max_examples=100, deadline=None)
@given(lines=st.sampled_from([ISO_TIMES, ISO_TIMES + OTHER_TIMES, None]).flatmap(
           lambda times: st.lists(json_lines(times), min_size=1, max_size=5)),
       end=st.sampled_from(["\n", "\r\n"]))
def test_the_block_readers_agree_with_line_by_line(lines: list[str], end: str) -> None:
    """A block the native reader (native.json_values) or Arrow's takes parses as line
    by line does: values as text, integers as written, times typed only when all are
    plain ISO times; and each declines a block with a line it cannot be sure of."""
    per_line, blocks = parse_all(end.join(lines) + end)
    for block in blocks:
        if block is not None:
            assert block == per_line


@pytest.mark.skipif(not native.built(), reason="the native cut is not built")
def test_the_native_block_reader_reads_plain_objects_and_declines_the_rest() -> None:
    plain = ('{"ts":"2025-03-04T10:00:00Z","ip":"192.0.2.1","status":200,"other":[1,{"a":2}]}',
             '{ "ts" : "2025-03-04T10:00:00.5Z" , "ip" : "192.0.2.2", "x": "a\\"b", "n": 1e3 }',
             '{"ts": "2025-03-04T10:00:01+02:00", "ip": "192.0.2.3", "status": null}')
    lines = lines_array(("\n".join(plain[1:]) + "\n").encode())
    values = native.json_values(lines, ["ts", "ip", "status"], {"ts"})
    assert values is not None and values["ts"].type == pa.string()  # an offset: text
    assert values["ip"].to_pylist() == ["192.0.2.2", "192.0.2.3"]
    assert "status" not in values  # null in every line: no column
    typed = native.json_values(lines_array((plain[1] + "\n").encode()), ["ts"], {"ts"})
    assert typed is not None and typed["ts"].type == pa.timestamp("us")
    assert typed["ts"].to_pylist()[0].isoformat() == "2025-03-04T10:00:00.500000"
    for text in ("2025-03-04T10:00:00.1234567Z", "2025-02-29T00:00:00Z", "1969-12-31T23:59:59Z"):
        line = lines_array((json.dumps({"ts": text}) + "\n").encode())
        assert native.json_values(line, ["ts"], {"ts"}) == {"ts": pa.array([text])}
    for declined in (plain[0],  # a nested value, even of a key not read
                     '{"ts": "2025-03-04T10:00:00Z", "ip": "a\\u0041"}',  # an escape read
                     '{"ts": "2025-03-04T10:00:00Z", "ts": "2025-03-04T10:00:01Z"}',
                     '{"status": 2.0}', '{"status": -0}', '{"status": 1234567890123456789}',
                     '{"status": true}', '{"ip": "{x}"}', "", "{"):
        assert native.json_values(lines_array((declined + "\n").encode()), ["ts", "ip", "status"],
                                  {"ts"}) is None, declined
    # more keys than the native reader looks up: Arrow's reader instead
    assert native.json_values(lines, [f"k{n}" for n in range(129)], set()) is None
