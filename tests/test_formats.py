"""Parsing combined/common and JSON lines: edge-case files, one per case; UTC offsets in
every format."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import load, parse_file

from scrapewatch.config import load_config
from scrapewatch.errors import FormatError
from scrapewatch.reading.formats import FORMATS, sniff_format
from scrapewatch.reading.sniff import SNIFF_LINES, choose_format
from scrapewatch.reading.sources import LogSource

DATA = Path(__file__).parent / "data"
T = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
SEC = int(T.timestamp())


def test_ipv6_clients() -> None:
    rows = parse_file(DATA / "combined/ipv6_clients.log", "combined")
    assert [r["client_ip"] for r in rows] == ["2001:db8::17", "::1"]
    assert [r["path"] for r in rows] == ["/2/tweets/123", "/2/tweets/124"]
    assert all(r["reject_reason"] is None for r in rows)


def test_apache_backslash_escapes_stay_inside_their_field() -> None:
    [row] = parse_file(DATA / "combined/apache_escapes.log", "combined")
    assert row["reject_reason"] is None
    assert row["path"] == "/2/tweets/search/recent"
    assert row["query"] == 'query=\\"x\\"&max_results=50'
    assert row["referer"] == "http://a/\\\\b"
    assert row["user_agent"] == 'agent \\"quoted\\" \\\\ back'
    assert row["status"] == 200


def test_nginx_hex_escaped_tls_handshake_is_a_request_without_a_path() -> None:
    [row] = parse_file(DATA / "combined/nginx_hex_escapes.log", "combined")
    assert row["reject_reason"] is None
    assert (row["method"], row["path"], row["status"], row["bytes"]) == (None, None, 400, 157)


def test_dash_and_empty_fields_are_absent() -> None:
    rows = parse_file(DATA / "combined/dash_fields.log", "combined")
    assert [r["reject_reason"] for r in rows] == [None, None, None]
    assert [(r["method"], r["path"], r["status"], r["bytes"]) for r in rows] == [
        (None, None, 408, None), (None, None, 400, 0), ("GET", "/2/tweets/1", 200, None)]
    assert [r["user"] for r in rows] == [None, None, "alice"]
    assert rows[0]["referer"] is None and rows[0]["user_agent"] is None


def test_any_utc_offset() -> None:
    rows = parse_file(DATA / "combined/timezone_offsets.log", "combined")
    assert [r["ts"].astimezone(UTC) for r in rows] == [T] * 4


def test_raw_bytes_in_the_request_are_kept_visible() -> None:
    [row] = parse_file(DATA / "combined/raw_bytes_request.log", "combined")
    assert row["reject_reason"] is None
    assert row["line"].startswith('198.51.100.5 - - [04/Mar/2025:10:00:00 +0000] "Gh0st\\xad\\xff"')


def test_trailing_quoted_fields_are_tolerated() -> None:
    [row] = parse_file(DATA / "combined/trailing_quoted_fields.log", "combined")
    assert row["reject_reason"] is None
    assert (row["client_ip"], row["user_agent"], row["query"]) == ("198.51.100.6", "ua",
                                                                   "ids=1,2,3")


def test_crlf_and_missing_final_newline() -> None:
    loaded, requests, rejects = load(DATA / "combined/crlf_no_final_newline.log")
    assert (loaded.lines, loaded.rejected, rejects) == (2, 0, [])
    assert [r[1] for r in requests] == [SEC, SEC + 1]


def test_common_format_and_absolute_targets() -> None:
    loaded, requests, _ = load(DATA / "combined/common_format.log")
    assert loaded.format == "common"
    # max_results=900 is capped at the endpoint's 500; absent it defaults to 10
    assert [r[5] for r in requests] == [500, 10]


def test_every_broken_line_is_a_reject_with_its_number_and_reason() -> None:
    loaded, requests, rejects = load(DATA / "combined/broken_lines.log", "combined")
    # line 2 is blank: counted, neither a request nor a reject
    assert (loaded.lines, loaded.requests, loaded.rejected) == (6, 1, 4)
    assert [r[0] for r in requests] == [1]
    assert [(n, reason.split(" ")[0]) for n, reason, _ in rejects] == [
        (3, "not"), (4, "not"), (5, "bad"), (6, "not")]
    assert rejects[3][2] == "nul\x00byte line"


def test_jsonl_field_aliases_and_time_forms() -> None:
    loaded, requests, rejects = load(DATA / "jsonl/aliases.jsonl")
    assert (loaded.format, loaded.rejected, rejects) == ("jsonl", 0, [])
    assert [(r[1] - SEC, r[2], r[3], r[4], r[5], r[6]) for r in requests] == [
        (0, "client_ip", "192.0.2.1", 200, 70, False),   # +02:00 offset; uri with a query
        (1, "api_key", "k1", 200, 2, False),             # request line; ids=1%2C2; .750 s floored
        (2, "user", "bob", 206, 42, True),               # epoch seconds; result_count observed
        (3, "client_ip", "192.0.2.2", 404, 1, False),    # epoch ms; absolute url
        (4, "client_ip", "192.0.2.3", None, 0, True),    # epoch ns string; posts 0 observed
        (5, "client_ip", "192.0.2.4", None, 1, False),   # CLF time
    ]
    assert [r[7] for r in requests] == [True, True, True, False, True, True]


def test_jsonl_broken_lines() -> None:
    loaded, requests, rejects = load(DATA / "jsonl/broken_lines.jsonl", "jsonl")
    assert (loaded.lines, loaded.rejected, len(requests)) == (8, 6, 1)  # line 8 is blank
    assert [(n, reason) for n, reason, _ in rejects] == [
        (2, "invalid JSON"), (3, "not a JSON object"), (4, "no timestamp field"),
        (5, "bad timestamp yesterday"),
        (6, "no entity: api_key, user and client address are all empty"),
        (7, "bad posts -3")]


def test_jsonl_explicit_field_mapping(tmp_path: Path) -> None:
    log = tmp_path / "nested.jsonl"
    log.write_text('{"event": {"at": "2025-03-04T10:00:00Z"}, "who": {"key": "k9"}, '
                   '"n": 12, "ip": "192.0.2.1"}\n')
    config_file = tmp_path / "c.toml"
    config_file.write_text('[input.fields]\nts = "event.at"\napi_key = "who.key"\nposts = "n"\n')
    _, requests, _ = load(log, "jsonl", load_config(config_file))
    assert [(r[1], r[3], r[5], r[6]) for r in requests] == [(SEC, "k9", 12, True)]


def test_sniffing() -> None:
    combined = (DATA / "combined/ipv6_clients.log").read_text().splitlines()
    assert sniff_format(combined).name == "combined"  # type: ignore[union-attr]
    assert sniff_format(['{"a": 1}']).name == "jsonl"  # type: ignore[union-attr]
    assert sniff_format(["hello", "world"]) is None
    assert sniff_format([]) is None
    assert set(FORMATS) == {"vhost_combined", "combined", "common", "alb", "elb", "cloudfront",
                            "w3c", "iis", "jsonl", "csv", "tsv", "parquet"}


def test_the_first_sniff_lines_non_blank_lines_of_the_first_block_are_sniffed(
        tmp_path: Path) -> None:
    def chosen(lines: list[str]) -> str:
        path = tmp_path / "access.log"
        path.write_text("".join(lines))
        with LogSource.open(path) as source:
            return choose_format(source, next(source.blocks()), "auto").name

    blank = ["\n", " \t\r\n", "\u3000\n", "\x0b\x1c\n"] * 150  # past a first look
    json, other = '{"a": 1}\n', "hello\n"
    assert chosen(blank + [json, *blank[:3]] * SNIFF_LINES + [other] * 100) == "jsonl"
    with pytest.raises(FormatError, match="not a log format"):  # 26 of 50 fit nothing
        chosen(blank + [other] * 26 + [json] * (SNIFF_LINES - 26) + [json] * 100)
    assert chosen(blank) == next(iter(FORMATS))  # blank lines only: any format skips them


def test_choosing_a_format_does_not_import_pandas(tmp_path: Path) -> None:
    # pyarrow.compute's first call imports pandas when it is installed (0.16 s)
    path = tmp_path / "access.log"
    path.write_text("\n" + (DATA / "combined/ipv6_clients.log").read_text())
    code = ("import sys; from pathlib import Path; "
            "from scrapewatch.reading.sniff import choose_format; "
            "from scrapewatch.reading.sources import LogSource; "
            f"source = LogSource.open(Path({str(path)!r})); "
            "print(choose_format(source, next(source.blocks()), 'auto').name, "
            "'pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["combined", "False"]


def test_unknown_content_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("dear diary\n")
    with pytest.raises(FormatError, match=r"notes.txt: not a log format .*\(tried "
                                          r"vhost_combined, combined, .*, tsv\)"):
        load(path)


def test_every_parse_query_yields_the_parsed_columns() -> None:
    from scrapewatch.schema import PARSED_COLUMNS

    for name, path in (("combined", "combined/ipv6_clients.log"),
                       ("common", "combined/common_format.log"),
                       ("jsonl", "jsonl/aliases.jsonl")):
        rows = parse_file(DATA / path, name)
        assert tuple(rows[0]) == PARSED_COLUMNS, name


# ---------------------------------------------------------------- UTC offsets

LOCAL = datetime(2025, 10, 10, 13, 55, 36, tzinfo=UTC)  # the time as written, before its offset
GOOD_OFFSETS = [(23, 59), (-23, 59)]  # the widest RFC 3339 allows: requests
BAD_OFFSETS = [(99, 99), (0, 60), (-25, 0), (24, 0)]  # rejects, by line
CLF_TIME = "10/Oct/2025:13:55:36 {o}"
ISO_TIME = "2025-10-10T13:55:36{o}"
# format -> (header, line with {t} for the time, the time, whether offsets have a colon)
OFFSET_CASES: dict[str, tuple[str, str, str, bool]] = {
    "combined": ("", '203.0.113.7 - - [{t}] "GET /x HTTP/1.1" 200 5 "-" "ua"', CLF_TIME, False),
    # a quote escape: the exact regex reads the line, not the plain cut
    "combined-escaped": ("", '203.0.113.7 - - [{t}] "GET /x HTTP/1.1" 200 5 "-" "a\\"b"',
                         CLF_TIME, False),
    "common": ("", '203.0.113.7 - - [{t}] "GET /x HTTP/1.1" 200 5', CLF_TIME, False),
    "vhost_combined": ("", 'api.example.com:443 203.0.113.7 - - [{t}] "GET /x HTTP/1.1" 200 5 '
                           '"-" "ua"', CLF_TIME, False),
    "alb": ("", 'https {t} app/lb/1 203.0.113.7:4000 10.0.0.1:80 0 0 0 200 200 1 2 '
                '"GET https://api.example.com:443/x HTTP/1.1" "b" - -', ISO_TIME, True),
    "elb": ("", '{t} lb 203.0.113.7:4000 10.0.0.1:80 0 0 0 200 200 1 2 '
                '"GET http://api.example.com:80/x HTTP/1.1" "b" - -', ISO_TIME, False),
    "jsonl": ("", '{{"ts": "{t}", "ip": "203.0.113.7"}}', ISO_TIME, True),
    # a nested field: the per-line JSON query, not Arrow's reader
    "jsonl-nested": ("", '{{"ts": "{t}", "client": {{"ip": "203.0.113.7"}}}}', ISO_TIME, True),
    "jsonl-clf": ("", '{{"time_local": "{t}", "ip": "203.0.113.7"}}', CLF_TIME, False),
    "csv": ("timestamp,client_ip\n", "{t},203.0.113.7", ISO_TIME, True),
    "tsv": ("timestamp\tclient_ip\n", "{t}\t203.0.113.7", ISO_TIME, False),
    "w3c": ("#Fields: date time c-ip\n", "2025-10-10 {t} 203.0.113.7", "13:55:36{o}", True),
    "nginx:$remote_addr - $remote_user [$time_local] \"$request\" $status": (
        "", '203.0.113.7 - - [{t}] "GET /x HTTP/1.1" 200', CLF_TIME, False),
    "nginx:$time_iso8601 $remote_addr": ("", "{t} 203.0.113.7", ISO_TIME, True),
    "apache:%h %l %u %t \"%r\" %>s %b": (
        "", '203.0.113.7 - - [{t}] "GET /x HTTP/1.1" 200 5', CLF_TIME, False),
    "apache:%h %{%Y-%m-%dT%H:%M:%S%z}t \"%r\"": (
        "", '203.0.113.7 {t} "GET /x HTTP/1.1"', ISO_TIME, False),
    "regex:(?P<client>\\S+) (?P<time>\\S+)": ("", "203.0.113.7 {t}", ISO_TIME, True),
}


def _offset(hours: int, minutes: int, colon: bool) -> str:
    return f"{'-' if hours < 0 else '+'}{abs(hours):02}{':' if colon else ''}{minutes:02}"


@pytest.mark.parametrize("case", OFFSET_CASES)
def test_impossible_utc_offsets_are_rejects(tmp_path: Path, case: str) -> None:
    header, line, time, colon = OFFSET_CASES[case]
    offsets = [_offset(h, m, colon) for h, m in GOOD_OFFSETS + BAD_OFFSETS]
    path = tmp_path / "offsets.log"
    path.write_text(header + "".join(line.format(t=time.format(o=o)) + "\n" for o in offsets))
    fmt = case.split("-")[0] if ":" not in case else case
    loaded, requests, rejects = load(path, fmt)
    first = 1 + header.count("\n")
    # +23:59 is the day before, a minute later; -23:59 the day after, a minute earlier
    assert [r[1] - int(LOCAL.timestamp()) for r in requests] == [-86_340, 86_340]
    assert [r[:2] for r in rejects] == [(first + 2 + i, f"bad UTC offset {o}")
                                        for i, o in enumerate(offsets[2:])]
    assert (loaded.lines, loaded.requests, loaded.rejected) == (first + 5, 2, 4)


def test_parquet_times_with_impossible_offsets_are_rejects(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "offsets.parquet"
    times = ["2025-10-10T13:55:36+23:59", "2025-10-10T13:55:36+9999"]
    pq.write_table(pa.table({"timestamp": times, "api_key": ["k", "k"]}), path)
    _, requests, rejects = load(path)
    assert [r[1] - int(LOCAL.timestamp()) for r in requests] == [-86_340]
    assert [r[:2] for r in rejects] == [(2, "bad UTC offset +9999")]


@pytest.mark.parametrize(("offset", "expected"), [
    ("-2359", [(2, "2025-10-11T13:54:36")]),
    ("+9999", [(2, "bad UTC offset +9999 in #GMT-Offset:")]),
    ("EST", [(2, "bad UTC offset EST in #GMT-Offset:")]),
])
def test_w3c_gmt_offset_directive_must_be_an_offset(tmp_path: Path, offset: str,
                                                    expected: list[tuple[int, str]]) -> None:
    path = tmp_path / "ex.log"
    path.write_text(f"#GMT-Offset: {offset}\n#Fields: date time c-ip\n"
                    "2025-10-10 13:55:36 203.0.113.7\n")
    _, requests, rejects = load(path, "w3c")
    got = [(r[0], datetime.fromtimestamp(r[1], UTC).strftime("%Y-%m-%dT%H:%M:%S"))
           for r in requests] + [r[:2] for r in rejects]
    assert [(n + 1, text) for n, text in expected] == got


@pytest.mark.parametrize(("ts", "offset"), [
    ("2025-10-10T13:55:36.+99", "+99"),  # a fraction point without digits
    ("2025-10-10T13:55+99:99", "+99:99"),  # no seconds
    ("2025-10-10 13:55:36.123456+99", "+99"),
    ("2025-10-10T13:55:36+05:30:10", "+05:30:10"),  # seconds: no offset RFC 3339 writes
    ("10/Oct/2025:13:55:36 +9999 ", "+9999"),  # a blank after it
])
def test_every_time_form_duckdb_reads_has_its_offset_checked(tmp_path: Path, ts: str,
                                                             offset: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(f'{{"ts": "{ts}", "ip": "203.0.113.7"}}\n')
    _, requests, rejects = load(path, "jsonl")
    assert (requests, [r[:2] for r in rejects]) == ([], [(1, f"bad UTC offset {offset}")])
