"""Parsing combined/common and JSON lines: edge-case files, one per case."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import load, parse_file

from scrapewatch.config import load_config
from scrapewatch.errors import FormatError
from scrapewatch.ingest.formats import FORMATS, sniff_format

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
