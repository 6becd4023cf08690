"""vhost_combined, ALB, ELB, CloudFront, W3C, custom formats and cloud JSON variants:
corpus files with their expected fields, and edge cases of each format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import load, parse_rows

from scrapewatch.config import load_config
from scrapewatch.errors import FormatError
from scrapewatch.reading.formats import get_format, tables, w3c
from scrapewatch.reading.sources import lines_array


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _write(tmp_path: Path, text: str | bytes, name: str = "x.log") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _requests(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["reject_reason"] is None]


def _fields(row: dict[str, Any], *names: str) -> tuple[Any, ...]:
    return tuple(row[n] for n in names)


# ---------------------------------------------------------------- vhost_combined

def test_vhost_combined_corpus(corpus: Path) -> None:
    fmt, rows = parse_rows(corpus / "apachelogs/vhost_combined.log")
    assert fmt == "vhost_combined"
    assert [(r["line_no"], r["reject_reason"]) for r in rows if r["reject_reason"]] == [
        (5, "does not match the vhost_combined format")]
    expected = [json.loads(line)["expected"] for line in
                (corpus / "apachelogs/vhost_combined.expected.jsonl").read_text().splitlines()]
    for row, want in zip(_requests(rows), expected, strict=True):
        method, target, _ = want["request_line"].split(" ")
        assert _fields(row, "client_ip", "ts", "method", "path", "status", "bytes") == (
            want["remote_host"], _utc(want["request_time"]["$datetime"]), method, target,
            want["final_status"], want["bytes_out"])


def test_vhost_combined_without_port_and_with_ipv6(tmp_path: Path) -> None:
    path = _write(tmp_path, 'api.example.com 2001:db8::7 - bob [15/Nov/2024:10:00:00 +0100] '
                            '"GET /2/tweets?ids=1,2 HTTP/1.1" 200 - "-" "ua \\"q\\""\n')
    [row] = parse_rows(path, "vhost_combined")[1]
    assert _fields(row, "client_ip", "user", "ts", "path", "query", "bytes", "user_agent") == (
        "2001:db8::7", "bob", _utc("2024-11-15T09:00:00Z"), "/2/tweets", "ids=1,2", None,
        'ua \\"q\\"')


# ---------------------------------------------------------------- ALB and ELB

def test_alb_vector_cases(corpus: Path, tmp_path: Path) -> None:
    cases = [json.loads(line) for line in
             (corpus / "vrl/parse_aws_alb_log_cases.jsonl").read_text().splitlines()]
    path = _write(tmp_path, "".join(c["args"]["value"] + "\n" for c in cases))
    fmt, rows = parse_rows(path)
    assert fmt == "alb" and len(rows) == len(cases) == 13
    for row, case in zip(rows, cases, strict=True):
        want = case["want"]["ok"]
        assert row["reject_reason"] is None, case["case"]
        host = want["client_host"].rsplit(":", 1)[0]
        url = want["request_url"].split("://", 1)[1]
        path_and_query = url[url.index("/"):] if "/" in url else None
        assert _fields(row, "client_ip", "ts", "status", "bytes", "method", "user_agent") == (
            host, _utc(want["timestamp"]), int(want["elb_status_code"]), want["sent_bytes"],
            want["request_method"], want["user_agent"]), case["case"]
        target = row["path"] and row["path"] + (f"?{row['query']}" if row["query"] else "")
        assert target == path_and_query, case["case"]


@pytest.mark.parametrize(("name", "requests"), [
    ("awsdocs/alb_doc_examples.log", 7),
    ("elastic-beats/aws-elb/application-lb-http.log", 10),
    ("elastic-beats/aws-elb/example-alb-http.log", 9),
])
def test_alb_corpus_files(corpus: Path, name: str, requests: int) -> None:
    loaded, rows, rejects = load(corpus / name)
    assert (loaded.format, len(rows), rejects) == ("alb", requests, [])


def test_alb_file_mixed_with_nlb_and_connection_logs(corpus: Path) -> None:
    """ALB access lines are read; NLB TLS and ALB connection-log lines are other logs."""
    _, rows = parse_rows(corpus / "elastic-integrations/aws-elb_logs/test-alb.log", "alb")
    assert [r["line_no"] for r in _requests(rows)] == [1, 2, 10]
    assert {r["reject_reason"] for r in rows if r["reject_reason"]} == {
        "does not match the AWS ALB format"}


def test_alb_edge_cases(tmp_path: Path) -> None:
    """Unbracketed IPv6 client:port, -1 timings, a space in the URL, CRLF, no final newline."""
    head = "h2 2024-11-15T10:00:00.5Z app/lb/1 "
    tail = ' 200 200 1 2 "GET https://api.example.com:443/2/tweets/search/all?max_results=500 ' \
           'HTTP/2.0" "ua" - -'
    path = _write(tmp_path, (
        head + "2001:db8::1:443 - -1 -1 -1 460 - 0 0" + tail.replace(" 200 200 1 2", "") + "\r\n"
        + head + "203.0.113.9:1 10.0.0.1:80 0.001 0.002 0.000" + tail.replace(
            "/2/tweets/search/all", "/a b") + "\n"
        + head + "203.0.113.9:1 10.0.0.1:80 0 0 0 200 200 1 2 \"- - -\" \"-\""))
    rows = parse_rows(path, "alb")[1]
    assert [_fields(r, "client_ip", "status", "method", "path", "query") for r in rows] == [
        ("2001:db8::1", 460, "GET", "/2/tweets/search/all", "max_results=500"),
        ("203.0.113.9", 200, "GET", "/a b", "max_results=500"),
        ("203.0.113.9", 200, None, None, None)]
    assert {r["reject_reason"] for r in rows} == {None}


def test_elb_classic(tmp_path: Path) -> None:
    path = _write(tmp_path, get_format("elb").example + "\n")
    fmt, [row] = parse_rows(path)
    assert fmt == "elb"
    assert _fields(row, "ts", "client_ip", "status", "bytes", "method", "path") == (
        _utc("2024-11-15T10:00:00.038Z"), "203.0.113.7", 200, 29, "GET",
        "/2/tweets/1460323737035677698")


def test_elb_logstash_cases(corpus: Path, tmp_path: Path) -> None:
    cases = [c for c in map(json.loads, (corpus / "logstash-patterns-core/grok_spec_cases.jsonl")
                            .read_text().splitlines()) if c["pattern"] == "ELB_ACCESS_LOG"]
    rows = parse_rows(_write(tmp_path, "".join(c["message"] + "\n" for c in cases)), "elb")[1]
    assert len(rows) == len(cases) == 4 and {r["reject_reason"] for r in rows} == {None}
    for row, case in zip(rows, cases, strict=True):
        want = (case["expected_subset"] or {}).get("legacy")
        if want:
            assert _fields(row, "ts", "client_ip", "status", "bytes", "method") == (
                _utc(want["timestamp"]), want["clientip"], want["response"], want["bytes"],
                want["verb"])


def test_iis_log_file_format(corpus: Path) -> None:
    fmt, rows = parse_rows(corpus / "brianary-scripts-iis/ex010320.log")
    assert fmt == "iis" and len(rows) == 2
    assert _fields(rows[0], "ts", "client_ip", "user", "method", "path", "status", "bytes") == (
        _utc("2001-03-20T07:55:20Z"), "192.168.114.201", None, "GET", "/DeptLogo.gif", 200,
        3223)


# ---------------------------------------------------------------- CloudFront

def test_cloudfront_aws_example(corpus: Path) -> None:
    fmt, rows = parse_rows(corpus / "awsdocs/cloudfront_doc_example.log")
    assert fmt == "cloudfront" and len(rows) == 6 and not [r for r in rows if r["reject_reason"]]
    assert _fields(rows[0], "line_no", "ts", "client_ip", "method", "path", "status", "bytes",
                   "user_agent") == (
        3, _utc("2019-12-04T21:02:31Z"), "192.0.2.100", "GET", "/index.html", 200, 392,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/78.0.3904.108 Safari/537.36")
    loaded, requests, rejects = load(corpus / "awsdocs/cloudfront_doc_example.log")
    assert (loaded.lines, len(requests), rejects) == (8, 6, [])


def test_cloudfront_elastic_fixture(corpus: Path) -> None:
    """IPv6 c-ip, status 000 and a last line truncated to 31 fields: all requests."""
    loaded, requests, rejects = load(
        corpus / "elastic-integrations/aws-cloudfront_logs/test-cloudfront.log")
    assert (loaded.format, loaded.lines, len(requests), rejects) == ("cloudfront", 14, 12, [])
    assert any(":" in r[3] for r in requests)  # an IPv6 client is an entity


def test_cloudfront_header_change_crlf_and_truncation(tmp_path: Path) -> None:
    path = _write(tmp_path, (
        "#Version: 1.0\r\n"
        "#Fields: date time c-ip cs-method cs-uri-stem sc-status x-edge-location\r\n"
        "2024-11-15\t10:00:00\t203.0.113.7\tGET\t/2/tweets\t200\tLAX1\r\n"
        "#Fields: time date x-edge-location c-ip cs-uri-stem cs-uri-query\r\n"
        "10:00:05\t2024-11-15\tLAX1\t2001:db8::5\t/2/tweets\tids=1%2C2%2C3\r\n"
        "10:00:06\t2024-11-15\tLAX1"))  # truncated: no client, no final newline
    fmt, rows = parse_rows(path)
    assert fmt == "cloudfront"
    assert [_fields(r, "line_no", "ts", "client_ip", "query", "reject_reason") for r in rows] == [
        (3, _utc("2024-11-15T10:00:00Z"), "203.0.113.7", None, None),
        (5, _utc("2024-11-15T10:00:05Z"), "2001:db8::5", "ids=1%2C2%2C3", None),
        (6, _utc("2024-11-15T10:00:06Z"), None, None, None)]
    loaded, requests, rejects = load(path)
    assert (loaded.lines, [r[0] for r in requests], [r[:2] for r in rejects]) == (
        6, [3, 5], [(6, "no entity: api_key, user and client address are all empty")])


# ---------------------------------------------------------------- W3C / IIS

W3C_FILES = {  # file -> (requests, rejected line numbers)
    "lnav/logfile_w3c.0": (1, []),
    "lnav/logfile_w3c.1": (1, []),
    "lnav/logfile_w3c.2": (14, []),
    "lnav/logfile_w3c.3": (2, [9]),       # the malformed third row has no c-ip
    "lnav/logfile_w3c.4": (2, []),
    "lnav/logfile_w3c.5": (0, [2]),       # #Fields names no client
    "lnav/logfile_w3c.6": (1, []),
    "lnav/logfile_w3c_big.0": (210, []),
    "brianary-scripts-iis/ex031118.log": (0, [5, 6, 7, 8]),  # a date but no time column
    "brianary-scripts-iis/ex960101.log": (5, []),
    "brianary-scripts-iis/u_ex100815.log": (16, []),
    "brianary-scripts-iis/u_ex160110.log": (28, []),
    # lines 16-17 carry the first header's 15 values under the third's 22 names
    "elastic-beats/iis/test.log": (3, [16, 17]),
    "elastic-beats/iis/test-ipv6zone.log": (1, []),
}


@pytest.mark.parametrize("name", sorted(W3C_FILES))
def test_w3c_corpus_files(corpus: Path, name: str) -> None:
    loaded, requests, rejects = load(corpus / name)
    assert loaded.format == "w3c"
    assert (len(requests), [r[0] for r in rejects]) == W3C_FILES[name]


def test_w3c_lnav_expected_headers(corpus: Path) -> None:
    rows = [r for r in parse_rows(corpus / "lnav/logfile_w3c.3")[1]
            if r["reject_reason"] != "blank line"]
    expected = json.loads((corpus / "lnav/expected/logfile_w3c.3.cs_headers.json").read_text())
    assert len(rows) == len(expected) == 3
    for row, want in zip(rows, expected, strict=True):
        headers = want["cs_headers"]
        assert (row["user_agent"], row["referer"]) == (headers["User-Agent"], headers["Referer"])
    assert _fields(rows[0], "ts", "method", "path", "status") == (
        _utc("2012-08-15T17:00:00.363Z"), "GET", "/Products/theProduct", 200)


def test_w3c_iis4_time_only_takes_the_date_directive(corpus: Path) -> None:
    rows = parse_rows(corpus / "lnav/logfile_w3c.2")[1]
    assert rows[0]["ts"] == _utc("2000-10-09T16:44:49Z")


def test_w3c_header_carries_across_blocks_and_changes_mid_block() -> None:
    cut = w3c.cutter(load_config().input)
    first = cut(lines_array(b"#Fields: date time c-ip cs-uri-stem\n"
                            b"2024-11-15 10:00:00 203.0.113.7 /a\n"), 1)
    second = cut(lines_array(b'2024-11-15 10:00:01 203.0.113.8 "/b c"\n'
                             b"#Fields: c-ip date time\n"
                             b"203.0.113.9 2024-11-15 10:00:02\n"), 3)
    assert first is not None and second is not None
    assert (first.directives, second.directives) == (1, 1)
    assert [t.column("line_no").to_pylist() for t in second.tables] == [[3], [5]]
    assert [json.loads(t.schema.metadata[b"fields"]) for t in second.tables] == [
        ["date", "time", "c-ip", "cs-uri-stem"], ["c-ip", "date", "time"]]


def test_w3c_quoted_values_offset_and_lines_before_fields(tmp_path: Path) -> None:
    path = _write(tmp_path, (
        "2024-11-15 10:00:00 203.0.113.1\n"  # before any #Fields: cannot be read
        "#Software: x\n#GMT-Offset: -0800\n"
        "#Fields:  date  time  c-ip  cs(User-Agent)  sc-status\n"
        '2024-11-15  10:00:00  203.0.113.7  "say ""hi"" now"  200\n'))
    fmt, rows = parse_rows(path)
    assert fmt == "w3c"
    assert _fields(rows[0], "line_no", "reject_reason") == (
        1, "no #Fields: directive before this line")
    assert _fields(rows[1], "ts", "client_ip", "user_agent", "status") == (
        _utc("2024-11-15T18:00:00Z"), "203.0.113.7", 'say "hi" now', 200)


def test_w3c_values_from_clients_cannot_shift_fields(tmp_path: Path) -> None:
    """Quotes inside values (IIS never quotes) neither split nor merge values."""
    path = _write(tmp_path, (
        "#Fields: date time cs-uri-query cs(User-Agent) cs(Referer) c-ip sc-status\n"
        '2024-11-15 10:00:00 "q ua"X "r"6.6.6.6 203.0.113.7 200\n'
        '2024-11-15 10:00:01 - "a"x 404 203.0.113.8 200\n'
        "2024-11-15 10:00:02 - ua - 203.0.113.9 200 extra\n"))
    rows = parse_rows(path, "w3c")[1]
    assert [_fields(r, "client_ip", "user_agent", "referer", "status", "reject_reason")
            for r in rows] == [
        ("203.0.113.7", 'ua"X', '"r"6.6.6.6', 200, None),
        ("203.0.113.8", '"a"x', "404", 200, None),
        ("203.0.113.9", "ua", None, 200, "8 values; #Fields names 7")]


# ---------------------------------------------------------------- JSON variants

def test_gcp_load_balancer(corpus: Path) -> None:
    fmt, rows = parse_rows(corpus / "elastic-integrations/gcp-loadbalancing_logs/"
                                    "test-load-balancer.log")
    assert fmt == "jsonl" and len(_requests(rows)) == 3
    assert _fields(rows[0], "ts", "client_ip", "method", "path", "status", "bytes") == (
        _utc("2020-06-08T23:41:30.078651Z"), "89.160.20.156", "GET",
        "/static/us/three-cats.jpg", 304, 157)


def test_cloudflare_timestamps_in_three_forms(corpus: Path) -> None:
    rows = parse_rows(corpus / "elastic-integrations/cloudflare_logpush-http_request/"
                               "test-pipeline-http-request.log")[1]
    assert len(_requests(rows)) == 5
    assert {r["ts"] for r in rows} == {_utc("2022-05-25T13:25:26Z")}
    assert _fields(rows[0], "client_ip", "method", "path", "status") == (
        "175.16.199.0", "POST", "/s/example/api/telemetry/v2/clusters/_stats", 200)


def test_azure_front_door(corpus: Path) -> None:
    loaded, requests, rejects = load(
        corpus / "elastic-integrations/azure_frontdoor-access/test-fdaccess.log")
    assert (loaded.format, len(requests), rejects) == ("jsonl", 3, [])
    assert requests[0][3] == "89.160.20.128"


def test_caddy_access_records(corpus: Path, tmp_path: Path) -> None:
    """The fixture is docker-compose output: its Caddy access records, unprefixed."""
    records = [line.split("| ", 1)[1] for line in
               (corpus / "lnav/logfile_caddy_log.0").read_text().splitlines()
               if "http.log.access" in line]
    rows = parse_rows(_write(tmp_path, "\n".join(records) + "\n"))[1]
    assert len(rows) == 4 and {r["reject_reason"] for r in rows} == {None}
    first = json.loads(records[0])
    assert _fields(rows[0], "client_ip", "method", "status", "user_agent") == (
        first["request"]["remote_ip"], first["request"]["method"], first["status"],
        first["request"]["headers"]["User-Agent"][0])


# ---------------------------------------------------------------- custom formats

def test_nginx_log_format(tmp_path: Path) -> None:
    spec = ('nginx:$remote_addr - $remote_user [$time_local] "$request" $status '
            '$body_bytes_sent "$http_referer" "$http_user_agent" $request_time "$http_x_api_key"')
    path = _write(tmp_path, '203.0.113.7 - - [15/Nov/2024:10:00:00 +0000] "GET '
                            '/2/tweets/search/recent?max_results=100 HTTP/1.1" 200 5 "-" '
                            '"ua 1" 0.004 "k-1"\n')
    [row] = parse_rows(path, spec)[1]
    assert _fields(row, "client_ip", "ts", "path", "query", "status", "user_agent",
                   "api_key") == ("203.0.113.7", _utc("2024-11-15T10:00:00Z"),
                                  "/2/tweets/search/recent", "max_results=100", 200, "ua 1",
                                  "k-1")


def test_apachelogs_parse_cases(corpus: Path, tmp_path: Path) -> None:
    """apachelogs' cases that log a time and a client: the fields scrapewatch reads."""
    checked = 0
    for raw in (corpus / "apachelogs/test_parse_cases.jsonl").read_text().splitlines():
        case = json.loads(raw)
        want = case["expected"]
        if "request_time" not in want or not ("%h" in case["format"] or "%a" in case["format"]):
            continue
        [row] = parse_rows(_write(tmp_path, case["entry"] + "\n"),
                           "apache:" + case["format"])[1]
        assert row["reject_reason"] is None, case
        # whole seconds: a %{msec_frac}t part after the time is not read
        assert row["ts"] == _utc(want["request_time"]["$datetime"]).replace(microsecond=0), case
        assert row["client_ip"] == want.get("remote_host", row["client_ip"]), case
        if want.get("request_line"):
            assert row["method"] == want["request_line"].split(" ")[0], case
        checked += 1
    assert checked == 4


def test_regex_format(tmp_path: Path) -> None:
    spec = r"regex:(?P<time>\S+) (?P<api_key>\S+) (?P<path>\S+) (?P<posts>\d+)"
    [row] = parse_rows(_write(tmp_path, "2024-11-15T10:00:00Z k-9 /feed 250\n"), spec)[1]
    assert _fields(row, "ts", "api_key", "path", "posts") == (
        _utc("2024-11-15T10:00:00Z"), "k-9", "/feed", 250)


@pytest.mark.parametrize(("spec", "message"), [
    ("regex:(?P<x", "not a valid regex"),
    (r"regex:(?P<client>\S+)", "needs named groups (?P<time>...)"),
    ("xml", "unknown format 'xml'"),
    (r"regex:(?P<client>\S+) (?=2)(?P<time>\S+)", "not a regex the engine accepts"),
    (r"regex:(?P<sw_line>x)(?P<client>\S+) (?P<time>\S+)", "'sw_line' is reserved"),
])
def test_bad_custom_formats(spec: str, message: str) -> None:
    with pytest.raises(FormatError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("?", r"\?").replace(".", r"\.")):
        get_format(spec)


# ---------------------------------------------------------------- CSV, TSV, Parquet

def test_csv_header_quotes_and_short_records(tmp_path: Path) -> None:
    path = _write(tmp_path, (
        "\n"
        "Timestamp,Client_IP,path,status,posts\r\n"
        "2024-11-15T10:00:00Z,203.0.113.7,/a,200,5\r\n"
        '"2024-11-15T10:00:01Z","203.0.113.8","/b, ""x""",200,\n'
        "2024-11-15T10:00:02Z,203.0.113.9"), "export.csv")
    fmt, rows = parse_rows(path)
    assert fmt == "csv"
    assert [_fields(r, "line_no", "reject_reason", "client_ip", "path", "posts") for r in rows] == [
        (1, "blank line", None, None, None),
        (3, None, "203.0.113.7", "/a", 5),
        (4, None, "203.0.113.8", '/b, "x"', None),
        (5, "2 fields; the header has 5", "203.0.113.9", None, None)]
    loaded, requests, rejects = load(path)
    assert (loaded.lines, len(requests), [r[0] for r in rejects]) == (5, 2, [5])


def test_tsv_with_a_field_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "when\twho\turl\n2024-11-15 10:00:00\tk-7\t/2/tweets/search/all"
                            "?max_results=500\n", "export.tsv")
    config = load_config(overrides={"input.fields": {"ts": "when", "api_key": "who",
                                                      "path": "url"}})
    loaded, requests, rejects = load(path, "tsv", config)
    assert (loaded.format, rejects) == ("tsv", [])
    assert [r[1:6] for r in requests] == [(1731664800, "api_key", "k-7", None, 500)]


def test_parquet_reads_only_the_columns_it_needs(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "requests.parquet"
    pq.write_table(pa.table({
        "Timestamp": pa.array([datetime(2024, 11, 15, 10, 0, tzinfo=UTC),
                               datetime(2024, 11, 15, 10, 0, 1, tzinfo=UTC), None]),
        "client_ip": ["192.0.2.1", "192.0.2.2", "192.0.2.3"],
        "path": ["/2/tweets/search/all", "/x", "/y"],
        "query": ["max_results=500", None, None],
        "payload": [b"\x00" * 10, b"", b""],  # never read
    }), path)
    loaded, requests, rejects = load(path)
    assert (loaded.format, loaded.lines) == ("parquet", 3)
    assert [r[:6] for r in requests] == [(1, 1731664800, "client_ip", "192.0.2.1", None, 500),
                                         (2, 1731664801, "client_ip", "192.0.2.2", None, 0)]
    assert [r[:2] for r in rejects] == [(3, "no timestamp field")]
    [([(_, table, _)], _)] = list(tables.parquet_batches(path, load_config().input))
    assert table.column_names == ["line_no", "line", "c0", "c1", "c2", "c3"]  # no payload


# ---------------------------------------------------------------- one folder, every format

ALL = "/2/tweets/search/all?max_results=500"  # 500 posts a request
EVERY_FORMAT = {  # file -> (format, client, text): three requests of 500 posts each
    "a.log": ("combined", "198.51.100.1",
              '{ip} - - [15/Nov/2024:10:00:0{i} +0000] "GET ' + ALL + ' HTTP/1.1" 200 5 "-" "b"\n'),
    "b.log": ("common", "198.51.100.2",
              '{ip} - - [15/Nov/2024:10:00:0{i} +0000] "GET ' + ALL + ' HTTP/1.1" 200 5\n'),
    "c.log": ("vhost_combined", "198.51.100.3",
              'api.example.com:443 {ip} - - [15/Nov/2024:10:00:0{i} +0000] "GET ' + ALL
              + ' HTTP/1.1" 200 5 "-" "b"\n'),
    "d.log": ("alb", "198.51.100.4",
              "https 2024-11-15T10:00:0{i}.000Z app/lb/1 {ip}:4000 10.0.0.1:80 0 0 0 200 200 1 2 "
              '"GET https://api.example.com:443' + ALL + ' HTTP/1.1" "b" - -\n'),
    "e.log": ("elb", "198.51.100.5",
              "2024-11-15T10:00:0{i}.000Z lb {ip}:4000 10.0.0.1:80 0 0 0 200 200 1 2 "
              '"GET http://api.example.com:80' + ALL + ' HTTP/1.1" "b" - -\n'),
    "f.log": ("cloudfront", "198.51.100.6",
              "2024-11-15\t10:00:0{i}\tLAX1\t5\t{ip}\tGET\tx.net\t/2/tweets/search/all\t200\t-\tb"
              "\tmax_results=500\n"),
    "g.log": ("w3c", "198.51.100.7",
              "2024-11-15 10:00:0{i} {ip} GET /2/tweets/search/all max_results=500 200\n"),
    "h.jsonl": ("jsonl", "198.51.100.8",
                '{{"ts": "2024-11-15T10:00:0{i}Z", "client_ip": "{ip}", "path": '
                '"/2/tweets/search/all", "query": "max_results=500", "status": 200}}\n'),
    "i.csv": ("csv", "198.51.100.9",
              "2024-11-15T10:00:0{i}Z,{ip},/2/tweets/search/all,max_results=500,200\n"),
    "j.tsv": ("tsv", "198.51.100.10",
              "2024-11-15T10:00:0{i}Z\t{ip}\t/2/tweets/search/all\tmax_results=500\t200\n"),
}
HEADS = {"cloudfront": "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip "
                       "cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) "
                       "cs-uri-query\n",
         "w3c": "#Fields: date time c-ip cs-method cs-uri-stem cs-uri-query sc-status\n",
         "csv": "timestamp,client_ip,path,query,status\n",
         "tsv": "timestamp\tclient_ip\tpath\tquery\tstatus\n"}


def test_one_report_from_a_folder_of_every_format(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from scrapewatch.pipeline import scan

    logs = tmp_path / "logs"
    logs.mkdir()
    for name, (fmt, ip, line) in EVERY_FORMAT.items():
        text = HEADS.get(fmt, "") + "".join(line.format(ip=ip, i=i) for i in range(3))
        (logs / name).write_text(text)
    pq.write_table(pa.table({"ts": [f"2024-11-15T10:00:0{i}Z" for i in range(3)],
                             "client_ip": ["198.51.100.11"] * 3,
                             "path": ["/2/tweets/search/all"] * 3,
                             "query": ["max_results=500"] * 3}), logs / "k.parquet")
    config = load_config(overrides={"policy.threshold_posts": 1000, "policy.per_posts": 1000,
                                    "policy.rate_usd": "10"})
    report = scan([str(logs)], config=config)
    assert {Path(f.path).name: f.format for f in report.files} == {
        **{name: fmt for name, (fmt, _, _) in EVERY_FORMAT.items()}, "k.parquet": "parquet"}
    assert (report.lines, report.rejected) == (3 * 11 + 2 + 1 + 1 + 1, 0)
    assert {f.window.entity: (f.window.peak_24h_posts, f.assessment.damages_usd)
            for f in report.findings} == {f"198.51.100.{n}": (1500, 10) for n in range(1, 12)}


def test_csv_quotes_only_around_whole_values(tmp_path: Path) -> None:
    path = _write(tmp_path, 'ua,timestamp,client_ip,path\n'
                            ',2024-11-15T10:00:00Z,192.0.2.1,"/a, b"\n'
                            '"ab"c,2024-11-15T10:00:01Z,192.0.2.2,/x\n', "q.csv")
    rows = parse_rows(path)[1]
    assert [_fields(r, "user_agent", "client_ip", "path", "reject_reason") for r in rows] == [
        (None, "192.0.2.1", "/a, b", None), ('"ab"c', "192.0.2.2", "/x", None)]


@pytest.mark.parametrize(("name", "text", "fmt"), [
    ("bom.csv", "timestamp,client_ip\r\n2024-11-15T10:00:00Z,192.0.2.1\r\n", "csv"),
    ("bom.log", "#Software: IIS\r\n#Fields: date time c-ip\r\n2024-11-15 10:00:00 192.0.2.1\r\n",
     "w3c"),
])
def test_a_byte_order_mark_is_dropped(tmp_path: Path, name: str, text: str, fmt: str) -> None:
    loaded, requests, rejects = load(_write(tmp_path, b"\xef\xbb\xbf" + text.encode(), name))
    assert (loaded.format, len(requests), rejects) == (fmt, 1, [])
