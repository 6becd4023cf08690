"""Every format's parser on random and mutated lines, through the real load path.

For each format (and a few custom ones), Hypothesis writes a file of lines: the
format's valid examples, the same with bytes flipped, cut short, or with quotes,
backslashes, NUL, tabs, CR, newlines, invalid UTF-8 and huge fields put in, and random
bytes. Loading it must raise nothing but a ScrapewatchError, and every line must come
out as exactly one of: a request, a reject (with its own line number and text), or a
line with nothing to read (blank, or a directive such as `#Fields:` or a CSV header).
Parquet, a binary format, gets random tables instead. Bounded: a few seconds a format.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrapewatch.config import load_config
from scrapewatch.engine.duckdb import connect
from scrapewatch.errors import ScrapewatchError
from scrapewatch.reading.formats import FORMATS, sniff_format
from scrapewatch.reading.loaded import FileLoad
from scrapewatch.reading.read import load_file
from scrapewatch.reading.sources import LogSource
from scrapewatch.schema import REJECT_TEXT_CHARS
from scrapewatch.sql import run

CLF = '203.0.113.7 - alice [15/Nov/2024:10:00:00 +0100] "GET /2/tweets?ids=1,2 HTTP/1.1" 200 51'
IIS_FIELDS = ("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
              "cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken")
CLOUDFRONT_FIELDS = (
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status "
    "cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id "
    "x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher "
    "x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port "
    "time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len "
    "sc-range-start sc-range-end")
# format -> (lines before the data: directives and headers, valid data lines)
CASES: dict[str, tuple[list[str], list[str]]] = {
    **{name: ([], [fmt.example]) for name, fmt in FORMATS.items()
       if fmt.magic is None and not fmt.header},
    "combined": ([], [FORMATS["combined"].example, CLF + ' "-" "a \\"q\\" \\\\ b" "10.0.0.1"',
                      '::1 - - [15/Nov/2024:10:00:00 -0700] "\\x16\\x03" 400 0 "-" "-"']),
    "common": ([], [FORMATS["common"].example, CLF]),
    "jsonl": ([], [FORMATS["jsonl"].example,
                   '{"timestamp": 1731664800123, "client": {"ip": "203.0.113.7:443"}, '
                   '"uri": "/2/tweets?ids=1,2", "status": "200", "posts": 2}']),
    "csv": (FORMATS["csv"].example.splitlines()[:1],
            [*FORMATS["csv"].example.splitlines()[1:],
             '"2024-11-15T10:00:01+05:30","203.0.113.8","k-2","/b, ""x""",,200']),
    "tsv": (FORMATS["tsv"].example.splitlines()[:1], FORMATS["tsv"].example.splitlines()[1:]),
    "w3c": (["#Software: Microsoft Internet Information Services 10.0", "#Version: 1.0",
             "#Date: 2024-11-15 10:00:00", f"#Fields: {IIS_FIELDS}"],
            [FORMATS["w3c"].example]),
    "cloudfront": (["#Version: 1.0", f"#Fields: {CLOUDFRONT_FIELDS}"],
                   [FORMATS["cloudfront"].example]),
    'nginx:$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_api_key"': (
        [], [FORMATS["combined"].example + ' "k-1"']),
    'apache:%h %l %u %{%Y-%m-%dT%H:%M:%S%z}t "%r" %>s %b': (
        [], ['203.0.113.7 - - 2024-11-15T10:00:00+0000 "GET /x HTTP/1.1" 200 5']),
    r"regex:(?P<time>\S+) (?P<client>\S+) (?P<path>\S+) (?P<posts>\d+)": (
        [], ["2024-11-15T10:00:00Z 203.0.113.7 /2/tweets 100"]),
}
ALL_EXAMPLES = [line for _, lines in CASES.values() for line in lines]
HEADER_FORMATS = {"csv", "tsv", "w3c", "cloudfront"}  # what lines before the data are
# what mutations put in: the characters parsers split on, escape with or choke on
INSERTS = [b'"', b'""', b"\\", b"\\x", b"\x00", b"\t", b"\r", b"\n", b"\r\n", b"\xff",
           b"\xc3", b"\xe2\x80", b"\xef\xbb\xbf", b",", b" ", b"[", b"]", b"{", b"}", b"#",
           b"-", b"+9999", b"-2500", b"1e400", b"\xe2\x80\xae"]
HUGE = [b"a", b'"', b"\\", b"9", b" ", b",", b"\t"]


class Line(bytes):
    """A generated line, shown cut short in Hypothesis's report of a failing example
    (which -W error would turn into a warning about a huge repr)."""

    def __repr__(self) -> str:
        if len(self) <= 200:
            return bytes.__repr__(self)
        return f"Line({bytes(self[:100])!r} + ... ({len(self):,} bytes))"


# whole lines of one piece repeated: nesting past Python's recursion limit, a field past
# the csv module's limit, line ends of CR alone
REPEATED = st.builds(lambda piece, n: Line(piece * n),
                     st.sampled_from([b"[", b'{"a":', b'"', b"a", b"\r", b"a\r", b",", b"\t",
                                      b" ", b"\\", b"\x00"]),
                     st.sampled_from([1, 10, 1000, 140_000]))

SETTINGS = settings(max_examples=20, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn, examples: list[str]) -> Line:
    """A valid line, then one to four byte flips, cuts, insertions or huge fields."""
    line = bytearray(draw(st.sampled_from(examples)).encode())
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "flip", "cut", "insert", "insert", "insert",
                                   "delete", "huge"]))
        at = draw(st.integers(0, len(line)))
        if op == "flip" and line:
            line[min(at, len(line) - 1)] = draw(st.integers(0, 255))
        elif op == "cut":
            del line[at:]
        elif op == "insert":
            line[at:at] = draw(st.sampled_from(INSERTS))
        elif op == "delete":
            del line[at:at + draw(st.integers(1, 30))]
        elif op == "huge":
            size = draw(st.sampled_from([300, 70_000, 140_000]))  # 140,000: past csv's limit
            line[at:at] = draw(st.sampled_from(HUGE)) * size
    return Line(line)


def lines_of(examples: list[str]) -> st.SearchStrategy[list[bytes]]:
    """Lines for a file: mostly mutated examples, some valid, some random."""
    line = st.one_of(mutated(examples), st.sampled_from(examples).map(str.encode),
                     st.binary(max_size=120), st.text(max_size=60).map(str.encode),
                     st.just(b""), REPEATED)
    return st.lists(line, min_size=1, max_size=12)


def file_bytes(head: list[str], lines: list[bytes], final_newline: bool) -> bytes:
    data = b"\n".join([h.encode() for h in head] + lines)
    return data + b"\n" if final_newline else data


def read_lines(path: Path) -> list[str]:
    """The file's lines as the loader reads them (invalid UTF-8 as \\xHH escapes)."""
    with LogSource.open(path) as source:
        return [line for block in source.blocks() for line in block.to_pylist()]


def load_into(con: duckdb.DuckDBPyConnection, path: Path, fmt: str
              ) -> tuple[FileLoad, list[tuple[Any, ...]], list[tuple[Any, ...]]] | None:
    """Load `path` as scan does: (summary, request line numbers, rejects), or None when
    it raised a ScrapewatchError (a one-line error: allowed); anything else fails."""
    for table in ("requests", "rejects", "activity_parts"):
        run(con, f"DELETE FROM {table}")
    try:
        with LogSource.open(path) as source:
            loaded = load_file(con, source, file_id=0, format_name=fmt, config=load_config(),
                               keep_requests=True)
    except ScrapewatchError:
        return None
    requests = run(con, "SELECT line_no FROM requests ORDER BY line_no")
    rejects = run(con, "SELECT line_no, reason, text FROM rejects ORDER BY line_no")
    return loaded, requests, rejects


def check_every_line(path: Path, result: tuple[FileLoad, list[tuple[Any, ...]],
                                               list[tuple[Any, ...]]]) -> None:
    """Each line is one request, one reject or one line with nothing to read."""
    loaded, requests, rejects = result
    lines = read_lines(path)
    assert loaded.lines == len(lines)
    assert (len(requests), len(rejects)) == (loaded.requests, loaded.rejected)
    taken = [n for (n,) in requests] + [n for n, _, _ in rejects]
    assert len(set(taken)) == len(taken) and set(taken) <= set(range(1, len(lines) + 1))
    for number, reason, text in rejects:  # the reject quotes its own line
        assert reason and text == lines[number - 1].rstrip("\r\n")[:REJECT_TEXT_CHARS]
    header = loaded.format in HEADER_FORMATS
    first_filled = next((i for i, line in enumerate(lines, 1) if line.strip(" \t\r\n")), 0)
    for number in set(range(1, len(lines) + 1)) - set(taken):
        line = lines[number - 1]
        directive = header and (line.startswith("#") or number == first_filled)
        assert directive or not line.strip(" \t\r\n"), (number, line[:200])


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return connect()


@pytest.mark.parametrize("fmt", CASES, ids=lambda name: name.split(" ")[0])
def test_random_and_mutated_lines_are_requests_or_rejects(
        tmp_path_factory: pytest.TempPathFactory, con: duckdb.DuckDBPyConnection,
        fmt: str) -> None:
    head, examples = CASES[fmt]
    folder = tmp_path_factory.mktemp("fuzz")

    @SETTINGS
    @given(lines=lines_of(examples), final_newline=st.booleans())
    def check(lines: list[bytes], final_newline: bool) -> None:
        path = folder / "x.log"
        path.write_bytes(file_bytes(head, lines, final_newline))
        result = load_into(con, path, fmt)
        if result is not None:
            check_every_line(path, result)

    check()


@settings(max_examples=100, deadline=None, database=None)
@given(lines=st.lists(st.one_of(mutated(ALL_EXAMPLES), REPEATED, st.binary(max_size=100)),
                      min_size=1, max_size=4))
def test_sniffing_random_and_mutated_lines_never_raises(lines: list[bytes]) -> None:
    text = [line.decode("utf-8", "backslashreplace") for line in lines]  # as the reader does
    assert sniff_format(text) in (None, *FORMATS.values())


def test_sniffed_files_of_mixed_lines_are_read_or_a_clear_error(
        tmp_path_factory: pytest.TempPathFactory, con: duckdb.DuckDBPyConnection) -> None:
    folder = tmp_path_factory.mktemp("fuzz")

    @SETTINGS
    @given(lines=lines_of(ALL_EXAMPLES), final_newline=st.booleans())
    def check(lines: list[bytes], final_newline: bool) -> None:
        path = folder / "x.log"
        path.write_bytes(file_bytes([], lines, final_newline))
        result = load_into(con, path, "auto")
        if result is not None:
            check_every_line(path, result)

    check()


# Parquet: columns named as request fields (any case), of any type, with odd values
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "text": st.one_of(st.text(max_size=30), st.sampled_from([
        "2024-11-15T10:00:00Z", "2024-11-15T10:00:00+99:99", "15/Nov/2024:10:00:00 +0000",
        "1731664800", "1e400", "-", "", "203.0.113.7", "/2/tweets?ids=1,2", "NaN"])),
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(allow_nan=True, allow_infinity=True),
    "bool": st.booleans(),
    "time": st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                         timezones=st.just(UTC)),
    "bytes": st.binary(max_size=20),
}
TYPES = {"text": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
         "time": pa.timestamp("us", tz="UTC"), "bytes": pa.binary()}
NAMES = ["timestamp", "TS", "time", "client_ip", "ip", "api_key", "user", "path", "uri",
         "query", "status", "bytes", "posts", "result_count", "user_agent", "other"]


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(0, 8))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    columns = {}
    for name in names:
        kind = draw(st.sampled_from(sorted(VALUES)))
        values = draw(st.lists(st.one_of(st.none(), VALUES[kind]), min_size=rows,
                               max_size=rows))
        columns[name] = pa.array(values, TYPES[kind])
    return pa.table(columns)


def test_random_parquet_tables_are_requests_or_rejects(
        tmp_path_factory: pytest.TempPathFactory, con: duckdb.DuckDBPyConnection) -> None:
    folder = tmp_path_factory.mktemp("fuzz")

    @SETTINGS
    @given(table=tables())
    def check(table: pa.Table) -> None:
        path = folder / "x.parquet"
        pq.write_table(table, path)
        result = load_into(con, path, "parquet")
        if result is None:
            return
        loaded, requests, rejects = result
        assert (loaded.lines, len(requests), len(rejects)) == (
            table.num_rows, loaded.requests, loaded.rejected)
        taken = [n for (n,) in requests] + [n for n, _, _ in rejects]
        assert sorted(taken) == list(range(1, table.num_rows + 1))  # no blank rows here

    check()
