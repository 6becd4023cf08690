"""The native cut of the line formats and split of the delimited ones (_linecut.c)
against the pure path, DuckDB's regexes and splits: the same parsed fields, requests
and rejects, line by line, on generated lines, hostile ones included."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from helpers import load, parse_file, parse_rows
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scrapewatch.reading.formats import clf, native

needs_native = pytest.mark.skipif(not native.built(), reason="the native cut is not built")

# Per part of a line: values that read, then values that do not (or read otherwise).
PARTS: dict[str, tuple[list[str], list[str]]] = {
    "vhost": (["api.example.com:443", "www.example.com", "é.example:8080"],  # vhost_combined
              ["a,b", "[v]", "a\tb", ""]),
    "host": (["203.0.113.7", "2001:db8::1", "host.example", "é.example", "198.51.100.2:8080",
              "2001:1::2", "::1"],
             ["[2001:db8::1]", "10.0.0.1, 203.0.113.9 198.51.100.2", "a\tb", "-", ""]),
    "user": (["-", "alice", "ü"], ["", "a b"]),
    "day": (["01", "15", "28", "29", "31"], ["00", "32", "30", "1"]),
    "month": (["Jan", "Feb", "Nov", "Dec"], ["nov", "Foo", "Fe"]),
    "year": (["2024", "2023", "2000", "1970", "9999"], ["1900", "0999", "1000", "1969", "24"]),
    "hour": (["00", "10", "23"], ["24", "1"]),
    "minute": (["00", "59"], ["60"]),
    "second": (["00", "07", "59"], ["60", "99"]),
    "sign": (["+", "-"], ["x", ""]),
    "offset": (["0000", "0530", "2359", "0100"], ["2400", "0060", "9999", "05", "05:30"]),
    "method": (["GET", "POST", "get"], ["G3T", ""]),
    "target": (["/2/tweets?ids=1,2,,3", "/2/tweets/search/recent?max_results=100",
                "/2/tweets/search/all?max_results=1000", "/2/tweets/123", "/x?", "/",
                "/%22q%22"],
               ["http://api.example/2/tweets/123?a=1", "*", "/a b", '/\\"q', ""]),
    "protocol": (["HTTP/1.1", "HTTP/2.0"], ["HTTP/", "HTTPS/1"]),
    "request": (['"{method} {target} {protocol}"'],
                ['"-"', '""', '"\\x16\\x03\\x01"', '"{method} {target}"',
                 '"GET /a \\"b\\" HTTP/1.1"']),
    "status": (["200", "404", "503"], ["2000", "20", "-"]),
    "size": (["0", "123", "-", "123456789012345678"], ["1234567890123456789", "-5", "1-"]),
    "tail": (["", ' "-" "python-requests/2.32"', ' "-" "-" "10.0.0.1"', ' "" ""',
              ' "-" "-" "1.2.3.4, 5.6.7.8" 0.123 0.456', ' "-" "x" 0.1', ' "-" "x" "-"'],
             [' "https://r.example/?q=1" "a \\"q\\" \\\\ b"', ' "-"', ' "unterminated',
              ' "a" "b" "c" "d"', ' "-" "tab\there"', " 0.1", ' "-" "x" 0.1 "y"']),
}
MUTATIONS = [b'"', b"\\", b"\t", b"\0", b"\r", b" ", b"[", b"]", b",", b"\xff", b"\xc3",
             "é".encode(), b"\n", b"-", b"9"]


def bent_line(draw: st.DrawFn, line: bytes) -> bytes:
    """`line`, sometimes with a byte put in or cut short, and its line end."""
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(line)))
        if draw(st.booleans()):
            line = line[:at] + draw(st.sampled_from(MUTATIONS)) + line[at:]
        else:
            line = line[:at]
    return line + draw(st.sampled_from([b"\n", b"\r\n"]))


@st.composite
def clf_lines(draw: st.DrawFn, vhost: bool = False) -> bytes:
    """One common/combined line (with `vhost`, vhost_combined): valid but for at most
    one part, and sometimes with a byte put in or cut short; with its line end."""
    bent = draw(st.sampled_from([None, *PARTS]))
    part = {name: draw(st.sampled_from(good + bad if name == bent else good))
            for name, (good, bad) in PARTS.items()}
    request = part["request"].format(**part)
    text = (f"{part['host']} - {part['user']} [{part['day']}/{part['month']}/{part['year']}:"
            f"{part['hour']}:{part['minute']}:{part['second']} {part['sign']}{part['offset']}] "
            f"{request} {part['status']} {part['size']}{part['tail']}")
    line = (f"{part['vhost']} {text}" if vhost else text).encode()
    return bent_line(draw, line)


# The same for AWS ALB and classic ELB lines (regex.ALB, regex.ELB).
AWS_PARTS: dict[str, tuple[list[str], list[str]]] = {
    "type": (["https", "http", "h2", "grpcs", "wss"], ["ftp", "HTTP", ""]),
    "time": (["2024-11-15T10:00:00.186641Z", "2024-02-29T23:59:59Z", "1970-01-01T00:00:00.5Z",
              "9999-12-31T23:59:59.999999Z", "2024-11-15T10:00:00.1234567Z"],
             ["2024-02-30T10:00:00Z", "2024-11-15T24:00:00Z", "2024-11-15T10:00:00",
              "2024-11-15T10:00:00+01:00", "1969-12-31T23:59:59Z", "2024-11-15T10:00:60Z",
              "2024-11-15T10:00:00.Z", "0999-01-01T00:00:00Z", "2024-11-15 10:00:00Z"]),
    "elb": (["app/my-lb/50dc6c495c0c9188", "my-lb"], ["", "a\tb"]),
    "client": (["203.0.113.7:2817", "2001:db8::1:443", "198.51.100.2", "host.example:80",
                "é.example:1", "2001:db8::1"],
               ["-", "-:80", "[2001:db8::1]:443", "::1", "1.2.3.4:5:6", ":80", "10.0.0.1,x:1",
                "2001:1::2:80", "1.2.3.4:"]),
    "target": (["10.0.0.1:80", "-"], ['"', ""]),
    "timing": (["0.000", "0.001048", "-1"], ["", "a b"]),
    "status": (["200", "404", "503"], ["-", "20", "2000", "2x0"]),
    "size": (["0", "34", "-", "123456789012345"],
             ["1234567890123456", "12345678901234567", "1-", "-5", "", "x"]),
    "method": (["GET", "POST", "get"], ["-", "G3T", ""]),
    "url": (["https://api.example.com:443/2/tweets/search/recent?max_results=100",
             "http://api.example.com:80/2/tweets/1460323737035677698", "/2/tweets?ids=1,2,,3",
             "https://h/", "h2c+x.y-z://h/x?", "https://h:443//a?b?c", "/x?"],
            ["-", "https://host:443", "https://host?x=1", "*", "/a b", '/a"b', "1ab://h/x",
             "https:/h/x", "", "/a\\b"]),
    "protocol": (["HTTP/1.1", "HTTP/2.0", "-"], ["", 'HT"TP', "a b"]),
    "agent": (["curl/8.5.0", "-", "", "Mozilla/5.0 (X11; Linux x86_64)"],
              ['a\\"b', "tab\there", "q\\q"]),
    "alb_tail": ([' ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 - "Root=1-5" "-" "-" 0 '
                  '2024-11-15T10:00:00.000000Z "forward"', ""], [' "x', "garbage", "\t"]),
    "elb_tail": (["", ' "curl/8.5.0" - -', ' "-" ECDHE-RSA TLSv1.2', " - -"],
                 [' "unterminated', ' "a\\"b" - -', '"x"']),
}


@st.composite
def aws_lines(draw: st.DrawFn, alb: bool) -> bytes:
    """One ALB (or classic ELB) line, valid but for at most one part, maybe with a byte
    put in or cut short; with its line end."""
    bent = draw(st.sampled_from([None, *AWS_PARTS]))
    part = {name: draw(st.sampled_from(good + bad if name == bent else good))
            for name, (good, bad) in AWS_PARTS.items()}
    timings = " ".join([part["timing"]] * 3)
    text = (f"{part['time']} {part['elb']} {part['client']} {part['target']} {timings} "
            f"{part['status']} {part['status']} {part['size']} {part['size']} "
            f'"{part["method"]} {part["url"]} {part["protocol"]}"')
    if alb:
        text = f'{part["type"]} {text} "{part["agent"]}"{part["alb_tail"]}'
    else:
        text += part["elb_tail"]
    line = text.encode()
    return bent_line(draw, line)


@st.composite
def files_of(draw: st.DrawFn, lines: st.SearchStrategy[bytes]) -> bytes:
    """A file of such lines and blank ones, maybe with a BOM, maybe without a final
    newline."""
    drawn = draw(st.lists(st.one_of(lines, st.sampled_from([b"\n", b"  \r\n", b"\r\n"])),
                          min_size=1, max_size=30))
    data = b"".join(drawn)
    if draw(st.booleans()):
        data = data.rstrip(b"\r\n")
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + data


def both_ways(path: Path, fmt: str) -> tuple[Any, Any]:
    """(native, pure): every parsed row and the load (summary, requests, rejects)."""
    cut = parse_rows(path, fmt), load(path, fmt)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(native, "_linecut", None)
        pure = parse_rows(path, fmt), load(path, fmt)
    return cut, pure


@needs_native
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=files_of(clf_lines()), fmt=st.sampled_from(["combined", "common"]))
def test_native_cut_equals_the_regex_cut(tmp_path_factory: pytest.TempPathFactory,
                                         data: bytes, fmt: str) -> None:
    assume(data.strip(b"\xef\xbb\xbf"))  # an empty file has no line to compare
    path = tmp_path_factory.mktemp("native") / "access.log"
    path.write_bytes(data)
    native, pure = both_ways(path, fmt)
    assert native == pure


@needs_native
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=files_of(clf_lines(vhost=True)))
def test_native_cut_equals_the_regex_of_vhost_combined(
        tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    """vhost_combined's rest is combined, but read by the generic request SQL: the
    native cut must give what that SQL gives (ports dropped, sizes as doubles)."""
    assume(data.strip(b"\xef\xbb\xbf"))
    path = tmp_path_factory.mktemp("native") / "access.log"
    path.write_bytes(data)
    native, pure = both_ways(path, "vhost_combined")
    assert native == pure


@needs_native
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(files_of(aws_lines(alb=True)).map(lambda d: ("alb", d)),
                      files_of(aws_lines(alb=False)).map(lambda d: ("elb", d))))
def test_native_cut_equals_the_regex_of_alb_and_elb(
        tmp_path_factory: pytest.TempPathFactory, data: tuple[str, bytes]) -> None:
    """ALB and ELB lines are read by a regex and the generic request SQL: the native
    cut gives what they give (ports and scheme://host dropped, fractions of a second
    kept, sizes as doubles)."""
    fmt, text = data
    assume(text.strip(b"\xef\xbb\xbf"))
    path = tmp_path_factory.mktemp("native") / "access.log"
    path.write_bytes(text)
    native_cut, pure = both_ways(path, fmt)
    assert native_cut == pure


@needs_native
def test_native_cut_reads_plain_lines_and_leaves_the_rest(tmp_path: Path) -> None:
    lines = [
        '203.0.113.7 - alice [29/Feb/2024:23:59:59 -0130] "GET /2/tweets?ids=1,2 HTTP/1.1" '
        '200 51 "-" "python" "10.0.0.1" 0.123',
        '203.0.113.7 - - [29/Feb/2023:10:00:00 +0000] "GET /x HTTP/1.1" 200 5',  # no such day
        '203.0.113.7 - - [15/Nov/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "'
        + "x" * (1 << 20) + '"',  # a 1 MB user agent
    ]
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\n")
    native, pure = both_ways(path, "combined")
    assert native == pure
    (_, rows), (summary, requests, rejects) = native
    assert [row["ts"].timestamp() for row in rows if row["ts"]] == [1709256599, 1731664800]
    assert (rows[0]["client_ip"], rows[0]["user"], rows[0]["path"], rows[0]["query"],
            rows[0]["xff"]) == ("203.0.113.7", "alice", "/2/tweets", "ids=1,2", "10.0.0.1")
    assert [r[0] for r in requests] == [1, 3] and rejects[0][:2] == (2, "bad timestamp "
                                                                      "29/Feb/2023:10:00:00 +0000")
    assert summary.lines == 3


def test_native_cut_is_built_where_a_compiler_is() -> None:
    """`pip install .` builds the extension wherever it can; the pure path is for
    machines without a C compiler, not a silent fallback."""
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not (shutil.which("cc") or shutil.which("gcc")) or not headers.exists():
        pytest.skip("no C compiler or Python headers here")
    assert native.built()


def test_a_tab_in_the_host_is_no_plain_line(tmp_path: Path) -> None:
    """The regex cut's fast shape and its exact regex agree: a tab is no separator (the
    property test above found the fast shape reading `a<TAB>b` as a host)."""
    path = tmp_path / "access.log"
    path.write_text('a\tb - - [01/Jan/2024:00:00:00 +0000] "GET /x HTTP/1.1" 200 0\n')
    [row] = parse_file(path, "combined")
    assert row["reject_reason"] == "not a common/combined log line"


def test_version_says_whether_the_native_cut_is_built() -> None:
    from click.testing import CliRunner

    from scrapewatch.cli import cli

    out = CliRunner().invoke(cli, ["--version"]).output
    head = ("native reader (lines; fields of common, combined, vhost_combined, ALB, ELB, CSV, "
            "TSV, CloudFront and flat JSON lines): ")
    assert out.splitlines()[1] == head + (
        "built" if native.built() else
        "not built (no C compiler at install time): numpy and DuckDB do it, more slowly")


def test_a_block_that_fails_stops_the_load_and_restores_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks load side by side on cursors (read._Loaders): the first error is the one
    raised, and the connection keeps its threads setting."""
    from scrapewatch.config import load_config
    from scrapewatch.engine.duckdb import connect
    from scrapewatch.reading import read
    from scrapewatch.reading.sources import LogSource
    from scrapewatch.sql import run

    path = tmp_path / "access.log"
    path.write_text((clf.COMBINED_EXAMPLE + "\n") * 400_000)  # 3 blocks
    calls = []

    def failing(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        raise RuntimeError("block failed")

    monkeypatch.setattr(read, "_load_part", failing)
    con = connect()
    settings = ("SELECT current_setting('threads'), "
                "current_setting('disabled_compression_methods')")
    before = run(con, settings)
    with LogSource.open(path) as source, pytest.raises(RuntimeError, match="block failed"):
        read.load_file(con, source, file_id=0, format_name="auto", config=load_config())
    assert run(con, settings) == before
    assert 1 <= len(calls) <= read.LOADERS  # no block started after the failure was seen


@needs_native
def test_the_native_cut_numbers_each_distinct_path_and_query() -> None:
    import numpy as np

    from scrapewatch.reading.sources import lines_array

    def line(target: str) -> str:
        return f'192.0.2.1 - - [01/Mar/2025:10:00:00 +0000] "GET {target} HTTP/1.1" 200 1\n'

    # "/a?" has an empty query, not none (NULL) as "/a"; "/b?x=1" shares only the query
    targets = ["/a?x=1", "/a?x=1", "/a", "/b?x=1", None, "/a?x=1", "/a?", "/a?x=2"]
    lines = lines_array("".join(line(t) if t else "junk\n" for t in targets).encode())
    _, offsets, data = lines.buffers()
    found = native._linecut.cut(offsets, data, len(lines))
    assert np.frombuffer(found["pair"], np.int32).tolist() == [0, 0, 1, 2, -1, 0, 3, 4]
    assert np.frombuffer(found["pair_first"], np.int32).tolist() == [0, 2, 3, 6, 7]
    # many lines, many pairs: numbered in order of first sight, as np.unique finds them
    rng = np.random.default_rng(7)
    drawn = rng.integers(0, 5000, 120_000)
    lines = lines_array("".join(line(f"/p{n % 70}?q={n // 70}") for n in drawn).encode())
    _, offsets, data = lines.buffers()
    found = native._linecut.cut(offsets, data, len(lines))
    _, first, inverse = np.unique(drawn, return_index=True, return_inverse=True)
    order = np.argsort(first)  # pair numbers follow first sight
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    assert np.frombuffer(found["pair"], np.int32).tolist() == rank[inverse].tolist()
    assert np.frombuffer(found["pair_first"], np.int32).tolist() == first[order].tolist()


# Values of delimited lines (CSV, TSV, CloudFront), quoted or not, hostile ones included.
VALUES = ["2024-11-15T10:00:00Z", "2024-11-15 10:00:00", "203.0.113.7", "k-1", "-", "",
          "/2/tweets/search/recent", "max_results=100", "ids=1,2,,3", "200", '"quoted"',
          '"with, comma"', '"with\ttab"', '"a ""quote"" inside"', '"unclosed', 'mid"quote',
          '"closed"then', '""', '"', " ", "\t", "é", "\x00", "%20a%22b"]


@st.composite
def delimited_files(draw: st.DrawFn, delimiter: str, header: str) -> bytes:
    """A header, then lines of drawn values (maybe one too few or many), blank lines
    and line ends of every kind, maybe no final newline."""
    width = header.count(delimiter) + 1
    lines = [header]
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.sampled_from(["", "  ", "\t", "\r"])))
            continue
        count = width + draw(st.sampled_from([0, 0, 0, -1, 1]))
        lines.append(delimiter.join(draw(st.sampled_from(VALUES)) for _ in range(count)))
    ends = [draw(st.sampled_from(["\n", "\r\n"])) for _ in lines]
    data = "".join(line + end for line, end in zip(lines, ends, strict=True))
    return (data.rstrip("\r\n") if draw(st.booleans()) else data).encode()


CLOUDFRONT_HEADER = "#Version: 1.0\n#Fields: " + " ".join([
    "date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)",
    "cs-uri-stem", "sc-status", "cs(Referer)", "cs(User-Agent)", "cs-uri-query"]) + "\n"


@needs_native
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(
    delimited_files(",", "timestamp,client_ip,api_key,path,query,status").map(
        lambda d: ("csv", d)),
    delimited_files("\t", "timestamp\tclient_ip\tpath\tstatus").map(lambda d: ("tsv", d)),
    # one column: a blank line is one value too, but stays a blank line
    delimited_files(",", "timestamp").map(lambda d: ("csv", d)),
    delimited_files("\t", "2024-11-15\t10:00:00\tLAX1\t1\t203.0.113.7\tGET\th\t/x\t200\t-\t"
                          "ua\tq=1").map(lambda d: ("cloudfront",
                                                     CLOUDFRONT_HEADER.encode() + d))))
def test_native_split_equals_the_sql_split(tmp_path_factory: pytest.TempPathFactory,
                                           data: tuple[str, bytes]) -> None:
    """CSV, TSV and CloudFront lines split natively (_linecut.split) give what the SQL's
    split gives: quoted values with delimiters and "" inside, unclosed quotes, a quote
    mid-value, too few or many values, blank lines."""
    fmt, text = data
    path = tmp_path_factory.mktemp("split") / f"access.{fmt}"
    path.write_bytes(text)
    native_cut, pure = both_ways(path, fmt)
    assert native_cut == pure


# Bytes that make lines and break UTF-8 in every way Arrow's check knows: truncated,
# overlong, surrogate and past-U+10FFFF sequences, stray continuation bytes.
UTF8_PIECES = [b"\n", b"\r\n", b"\r", b"a", b"GET /x 200", b"\t", b"\0", "é".encode(),
               "€".encode(), "😀".encode(), b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\x80",
               b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf",
               b"\xed\xa0\x80", b"\xed\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf4\x8f\xbf\xbf",
               b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\xfe"]


@needs_native
@settings(max_examples=300, deadline=None)
@given(data=st.lists(st.sampled_from(UTF8_PIECES), max_size=40).map(b"".join))
def test_native_lines_equal_the_pure_lines(data: bytes) -> None:
    """A block cut into lines natively (_linecut.lines) gives what the numpy and Arrow
    path gives: the same lines, each keeping its newline, invalid UTF-8 shown as
    escapes."""
    from scrapewatch.reading.sources import lines_array

    found = lines_array(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(native, "_linecut", None)
        pure = lines_array(data)
    assert found.to_pylist() == pure.to_pylist()
    assert (native.line_offsets(data) is None) == (data != data.decode("utf-8", "replace")
                                                   .encode("utf-8"))


@needs_native
def test_native_lines_of_a_block() -> None:
    """Each line ends after its newline; a last line without one, and no bytes at all,
    are lines too (as the pure path has them); long ASCII runs are read 8 bytes at a
    time."""
    import numpy as np

    def ends(data: bytes) -> list[int] | None:
        offsets = native.line_offsets(data)
        return None if offsets is None else np.frombuffer(offsets, np.int32).tolist()

    assert ends(b"") == [0, 0]
    assert ends(b"a\nbb\r\nc") == [0, 2, 6, 7]
    assert ends(b"x" * 20 + b"\n" + b"y" * 17) == [0, 21, 38]
    assert ends("é\n€\n😀".encode()) == [0, 3, 7, 11]
    assert ends(b"x" * 30 + b"\xed\xa0\x80\n") is None
