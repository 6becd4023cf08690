"""Real logs and other projects' test cases from ../shared/corpus (see its SOURCES.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import load, parse_file

from scrapewatch.errors import FormatError
from scrapewatch.reading.sniff import choose_format
from scrapewatch.reading.sources import LogSource

# Files of combined/common lines, with the lines that are not access-log lines.
CLF_FILES = {
    "elastic-examples/apache_logs.part1of2": [],
    "lnav/logfile_access_log.0": [],
    "lnav/logfile_access_log.1": [],
    "lnav/logfile_shop_access_log.0.part1of2": [],
    "lnav/logfile_bad_access_log.0": [2],        # lacks the ident and user fields
    "elastic-beats/apache/test.log": [],
    "elastic-beats/apache/test-vhost.log": [],
    "elastic-beats/apache/darwin-2.4.23.log": [],
    "elastic-beats/nginx/test.log": [],
    "apachelogs/vhost_combined.log": [5],         # "Bad line"
}


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@pytest.mark.parametrize("name", sorted(CLF_FILES))
def test_clf_corpus_files_parse_all_their_access_lines(corpus: Path, name: str) -> None:
    loaded, requests, rejects = load(corpus / name)
    assert loaded.format in ("combined", "common", "vhost_combined")
    assert [r[0] for r in rejects] == CLF_FILES[name]
    assert len(requests) + len(rejects) == loaded.lines
    assert loaded.lines == len((corpus / name).read_bytes().splitlines())


def test_real_traffic_volume(corpus: Path) -> None:
    loaded, requests, _ = load(corpus / "elastic-examples/apache_logs.part1of2")
    assert (loaded.lines, len(requests)) == (5000, 5000)
    first, last = min(r[1] for r in requests), max(r[1] for r in requests)
    assert (first, last) == (int(_utc("2015-05-17T10:05:00Z").timestamp()),
                             int(_utc("2015-05-19T03:05:59Z").timestamp()))


def test_lnav_expected_columns(corpus: Path) -> None:
    rows = parse_file(corpus / "lnav/logfile_access_log.0", "combined")
    expected = json.loads((corpus / "lnav/expected/logfile_access_log.0.all_columns.json")
                          .read_text())
    assert len(rows) == len(expected) == 3
    for row, want in zip(rows, expected, strict=True):
        assert row["ts"] == datetime.fromisoformat(want["log_time"]).replace(tzinfo=UTC)
        assert (row["client_ip"], row["method"], row["path"], row["query"], row["status"],
                row["bytes"], row["user_agent"], row["user"], row["referer"]) == (
            want["c_ip"], want["cs_method"], want["cs_uri_stem"], want["cs_uri_query"],
            want["sc_status"], want["sc_bytes"], want["cs_user_agent"], want["cs_username"],
            want["cs_referer"])


def test_elastic_nginx_expected_fields(corpus: Path) -> None:
    rows = parse_file(corpus / "elastic-beats/nginx/test.log", "combined")
    expected = [json.loads(line) for line in
                (corpus / "elastic-beats/nginx/test.log.expected-condensed.jsonl")
                .read_text().splitlines()]
    for row, want in zip(rows, expected, strict=True):
        assert row["ts"] == _utc(want["@timestamp"])
        assert row["status"] == want["http.response.status_code"]
        assert row["bytes"] == want["http.response.body.bytes"]
        assert row["method"] == want.get("http.request.method")
        target = row["path"] and row["path"] + (f"?{row['query']}" if row["query"] else "")
        assert target == want.get("url.original")
        assert row["user_agent"] == (None if want["user_agent.original"] == "-"
                                     else want["user_agent.original"])
        # The entity is the peer that connected, the last of the list: Filebeat's
        # source.address prefers the first public one, which a client can forge.
        assert row["client_ip"] == want["nginx.access.remote_ip_list"][-1]


def test_apachelogs_vhost_combined_expected(corpus: Path) -> None:
    rows = [r for r in parse_file(corpus / "apachelogs/vhost_combined.log", "combined")
            if r["reject_reason"] is None]
    expected = [json.loads(line)["expected"]
                for line in (corpus / "apachelogs/vhost_combined.expected.jsonl")
                .read_text().splitlines()]
    for row, want in zip(rows, expected, strict=True):
        method, target, _ = want["request_line"].split(" ")
        assert (row["client_ip"], row["ts"], row["method"], row["path"], row["status"],
                row["bytes"]) == (want["remote_host"], _utc(want["request_time"]["$datetime"]),
                                  method, target, want["final_status"], want["bytes_out"])


def _one_line(tmp_path: Path, line: str) -> dict:
    path = tmp_path / "one.log"
    path.write_text(line + "\n")
    [row] = parse_file(path, "combined")
    return row


def test_apachelogs_timestamp_cases(corpus: Path, tmp_path: Path) -> None:
    for raw in (corpus / "apachelogs/timestamp_cases.jsonl").read_text().splitlines():
        case = json.loads(raw)
        if case["test"] == "test_parse_apache_timestamp":
            text, want = case["values"]
            row = _one_line(tmp_path, f'192.0.2.1 - - [{text.strip("[]")}] "GET / HTTP/1.1" 200 1')
            assert row["ts"] == _utc(want["$datetime"]), text
        else:
            row = _one_line(tmp_path, f'192.0.2.1 - - [{case["values"]}] "GET / HTTP/1.1" 200 1')
            # an offset written -05:00 or -05 is unambiguous, so it is read; the rest
            # (no offset, numeric month, wrong separators, unknown month) are rejects
            if case["values"].endswith(("-05:00", " -05")):
                assert row["ts"] == _utc("2016-03-13T01:59:59-05:00")
            else:
                assert row["reject_reason"] is not None, case["values"]


def test_vector_parse_cases(corpus: Path, tmp_path: Path) -> None:
    checked = 0
    for name in ("parse_nginx_log_cases", "parse_apache_log_cases", "parse_common_log_cases"):
        for raw in (corpus / f"vrl/{name}.jsonl").read_text().splitlines():
            case = json.loads(raw)
            fmt = case["args"].get("format", "common")
            if fmt not in ("combined", "common") or case["args"].get("timestamp_format"):
                continue
            row = _one_line(tmp_path, case["args"]["value"])
            want = case["want"].get("ok")
            if not want or "timestamp" not in want:  # an error, or a line with no time
                assert row["reject_reason"] is not None, case["case"]
                continue
            assert row["reject_reason"] is None, case["case"]
            assert row["ts"] == _utc(want["timestamp"]["$timestamp"])
            assert row["client_ip"] == want.get("client", want.get("host"))
            assert row["status"] == want.get("status")
            assert row["bytes"] == want.get("size")
            assert row["user"] == want.get("user")
            if "path" in want:
                assert (row["method"], row["path"]) == (want["method"], want["path"])
            checked += 1
    assert checked >= 9


# What --format auto makes of every corpus file; None: no format fits (an error that
# names the file). The JSON test-case files are JSON lines, though not access logs.
SNIFFED = {
    "apachelogs/decoding_case.json": None,
    "apachelogs/test_parse_cases.jsonl": "jsonl",
    "apachelogs/timestamp_cases.jsonl": "jsonl",
    "apachelogs/vhost_combined.expected.jsonl": "jsonl",
    "apachelogs/vhost_combined.log": "vhost_combined",
    "awsdocs/alb_doc_examples.log": "alb",
    "awsdocs/athena_ddl_and_field_reference.json": None,
    "awsdocs/cloudfront_doc_example.log": "cloudfront",
    "brianary-scripts-iis/ex010320.log": "iis",
    "brianary-scripts-iis/ex031118.log": "w3c",
    "brianary-scripts-iis/ex960101.log": "w3c",
    "brianary-scripts-iis/u_ex100815.log": "w3c",
    "brianary-scripts-iis/u_ex160110.log": "w3c",
    "elastic-beats/apache/darwin-2.4.23.log": "common",
    "elastic-beats/apache/ssl-request.log": None,  # mod_ssl's log: no client first
    "elastic-beats/apache/test-vhost.log": "vhost_combined",
    "elastic-beats/apache/test.log": "combined",
    "elastic-beats/aws-elb/application-lb-http.log": "alb",
    "elastic-beats/aws-elb/example-alb-http.log": "alb",
    "elastic-beats/iis/test-ipv6zone.log": "w3c",
    "elastic-beats/iis/test.log": "w3c",
    "elastic-beats/nginx/test.log": "combined",
    "elastic-beats/nginx/test.log.expected-condensed.jsonl": "jsonl",
    "elastic-examples/apache_logs.part1of2": "combined",
    "elastic-integrations/aws-cloudfront_logs/test-cloudfront.log": "cloudfront",
    "elastic-integrations/aws-elb_logs/test-alb.log": None,  # mostly NLB and connection logs
    "elastic-integrations/azure_frontdoor-access/test-fdaccess.log": "jsonl",
    "elastic-integrations/cloudflare_logpush-http_request/test-pipeline-http-request.log":
        "jsonl",
    "elastic-integrations/gcp-loadbalancing_logs/test-load-balancer.log": "jsonl",
    "lnav/expected/logfile_access_log.0.all_columns.json": None,
    "lnav/expected/logfile_w3c.3.cs_headers.json": None,
    "lnav/expected/logfile_w3c.3.sc_substatus.json": None,
    "lnav/logfile_access_log.0": "combined",
    "lnav/logfile_access_log.1": "combined",
    "lnav/logfile_bad_access_log.0": "combined",
    "lnav/logfile_caddy_log.0": None,  # docker-compose output around Caddy's JSON
    "lnav/logfile_haproxy.0": None,
    "lnav/logfile_regexp_access_log.0": "vhost_combined",  # host:port first, then combined
    "lnav/logfile_shop_access_log.0.part1of2": "combined",
    "lnav/logfile_syslog_with_access_log.0": None,
    "lnav/logfile_w3c.0": "w3c",
    "lnav/logfile_w3c.1": "w3c",
    "lnav/logfile_w3c.2": "w3c",
    "lnav/logfile_w3c.3": "w3c",
    "lnav/logfile_w3c.4": "w3c",
    "lnav/logfile_w3c.5": "w3c",
    "lnav/logfile_w3c.6": "w3c",
    "lnav/logfile_w3c_big.0": "w3c",
    "logstash-patterns-core/grok_spec_cases.jsonl": "jsonl",
    "nielsbasjes-logparser/edge_cases.jsonl": "jsonl",
    "vrl/parse_apache_log_cases.jsonl": "jsonl",
    "vrl/parse_aws_alb_log_cases.jsonl": "jsonl",
    "vrl/parse_common_log_cases.jsonl": "jsonl",
    "vrl/parse_nginx_log_cases.jsonl": "jsonl",
}


def test_every_corpus_file_is_sniffed(corpus: Path) -> None:
    files = sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*")
                   if p.is_file() and p.name != "SOURCES.md")
    assert files == sorted(SNIFFED)  # a new corpus file needs its line here
    for name, expected in SNIFFED.items():
        with LogSource.open(corpus / name) as source:
            first = next(source.blocks())
            if expected is None:
                with pytest.raises(FormatError, match="not a log format scrapewatch knows"):
                    choose_format(source, first, "auto")
            else:
                assert choose_format(source, first, "auto").name == expected, name
