"""Formats read with one regex per line: vhost_combined, AWS ALB and classic ELB, and
custom formats (a regex with named groups, or an nginx `log_format` or Apache
`LogFormat` string compiled into one; see `custom`).

A group named after a request field fills it (GROUP_FIELDS); other groups are
ignored. The regex is RE2 (DuckDB's engine) and is also what the sniffer tries with
Python's `re`, so it must be written in the syntax both share: named groups as
`(?P<name>...)`, no look-around, no backreferences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scrapewatch.config import InputConfig
from scrapewatch.errors import ConfigError
from scrapewatch.reading.formats.base import requests_sql
from scrapewatch.schema import BLANK_LINE
from scrapewatch.sql import Params

# Request field filled by a group of this name. `request` is a whole request line
# (`GET /x?a=1 HTTP/1.1`); `path` may hold the query string or be an absolute URL.
GROUP_FIELDS = {
    "time": "ts", "client": "client_ip", "user": "user", "api_key": "api_key",
    "method": "method", "request": "request", "path": "path", "query": "query",
    "status": "status", "bytes": "bytes", "referer": "referer",
    "user_agent": "user_agent", "posts": "posts", "xff": "xff",
}
_WHOLE = "sw_line"  # the group wrapped around the whole regex: empty when no match

_QUOTED = r'(?:[^"\\]|\\.)*'  # inside "...", with backslash escapes
_ISO_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+"
_HOST_PORT = r"(?P<client>[^ ]*?)(?::[0-9]+)?"  # ip:port, also unbracketed IPv6
_NUMBER = r"[0-9]+|-"
# "METHOD URL PROTOCOL", where AWS writes `-` for each part it could not read
_AWS_REQUEST = r'"(?P<method>[^ "]*) (?P<path>[^"]*?) (?P<protocol>[^ "]*)"'


@dataclass(frozen=True)
class LineRegex:
    """A line format read by one regex with named groups.

    Attributes:
        regex: RE2 regex, matched from the start of each line.
        label: Names the format in reject reasons ("does not match the <label> format").
        time_format: strptime pattern for the `time` group, when it is neither ISO
            8601, epoch seconds nor CLF `dd/Mon/yyyy:HH:MM:SS +hhmm`.
    """

    regex: str
    label: str
    time_format: str | None = None

    def __post_init__(self) -> None:
        try:
            groups = re.compile(self.regex).groupindex
        except re.error as exc:
            raise ConfigError(f"{self.label}: not a valid regex: {exc}") from exc
        if _WHOLE in groups:
            raise ConfigError(f"{self.label}: the group name {_WHOLE!r} is reserved")
        if "time" not in groups or not {"client", "user", "api_key"} & set(groups):
            raise ConfigError(f"{self.label}: the regex needs named groups (?P<time>...) and "
                              "at least one of (?P<client>...), (?P<user>...), (?P<api_key>...)")

    def parse_sql(self, config: InputConfig, params: Params) -> str:
        """The parse query over `block(line_no, line)`: one regex capture per line."""
        del config
        compiled = re.compile(self.regex)
        groups = compiled.groupindex
        names = [_WHOLE] + [f"g{i}" for i in range(1, compiled.groups + 1)]
        for name, index in groups.items():
            names[index] = name
        f = {field: "NULL::VARCHAR" for field in GROUP_FIELDS.values()}
        for group, field in GROUP_FIELDS.items():
            if group in groups:
                f[field] = f"nullif(nullif(g.{group}, ''), '-')"
        f["path"] = f"coalesce({f.pop('path')}, {f.pop('request')})"
        source = f"""
        SELECT line_no, line,
               regexp_extract(line, {params.bind(f"^({self.regex})")}, {params.bind(names)})
                   AS g
        FROM block"""
        unparsed = f"""CASE WHEN g.{_WHOLE} <> '' THEN NULL
                    WHEN trim(line, {params.bind(" " + chr(13) + chr(10))}) = ''
                        THEN {params.bind(BLANK_LINE)}
                    ELSE {params.bind(f"does not match the {self.label} format")} END"""
        return requests_sql(source, f, unparsed, params, time_format=self.time_format)

    def sniff(self, lines: list[str]) -> float:
        """Share of the lines the regex matches."""
        compiled = re.compile(self.regex)
        return sum(1 for line in lines if compiled.match(line)) / len(lines)


VHOST_COMBINED = LineRegex(
    r"(?P<vhost>[^\s,\[]+) (?P<client>[^\s,\[]+) (?P<ident>\S+) (?P<user>\S+) "
    r"\[(?P<time>[^\]]+)\] "
    rf'"(?P<request>{_QUOTED})" (?P<status>[0-9]{{3}}|-) (?P<bytes>{_NUMBER})'
    rf'(?: "(?P<referer>{_QUOTED})" "(?P<user_agent>{_QUOTED})")?',
    "vhost_combined")
VHOST_COMBINED_EXAMPLE = ('www.example.com:443 203.0.113.7 - - [15/Nov/2024:10:00:00 +0000] '
                          '"GET /2/tweets/search/recent?max_results=100 HTTP/1.1" 200 5123 '
                          '"-" "python-requests/2.32"')

# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-access-logs.html
# Fields after the user agent (TLS, target group, trace id, ...) are not read.
ALB = LineRegex(
    rf"(?P<type>https?|h2|grpcs?|wss?) (?P<time>{_ISO_TIME}) (?P<elb>[^ ]+) {_HOST_PORT} "
    r"(?P<target>[^ ]+) (?P<request_time>[^ ]+) (?P<target_time>[^ ]+) "
    r"(?P<response_time>[^ ]+) (?P<status>[0-9]{3}|-) (?P<target_status>[^ ]+) "
    rf'(?P<received_bytes>{_NUMBER}) (?P<bytes>{_NUMBER}) {_AWS_REQUEST} '
    r'"(?P<user_agent>[^"]*)"',
    "AWS ALB")
ALB_EXAMPLE = ('https 2024-11-15T10:00:00.186641Z app/my-lb/50dc6c495c0c9188 '
               '203.0.113.7:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 '
               '"GET https://api.example.com:443/2/tweets/search/recent?max_results=100 '
               'HTTP/1.1" "curl/8.5.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 - '
               '"Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 '
               '2024-11-15T10:00:00.000000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-"')

# https://docs.aws.amazon.com/elasticloadbalancing/latest/classic/access-log-collection.html
ELB = LineRegex(
    rf"(?P<time>{_ISO_TIME}) (?P<elb>[^ ]+) {_HOST_PORT} (?P<backend>[^ ]+) "
    r"(?P<request_time>[^ ]+) (?P<backend_time>[^ ]+) (?P<response_time>[^ ]+) "
    rf"(?P<status>[0-9]{{3}}|-) (?P<backend_status>[^ ]+) (?P<received_bytes>{_NUMBER}) "
    rf'(?P<bytes>{_NUMBER}) {_AWS_REQUEST}(?: "(?P<user_agent>[^"]*)")?',
    "AWS classic ELB")
ELB_EXAMPLE = ('2024-11-15T10:00:00.038000Z my-lb 203.0.113.7:2817 10.0.0.1:80 0.000073 '
               '0.001048 0.000057 200 200 0 29 '
               '"GET http://api.example.com:80/2/tweets/1460323737035677698 HTTP/1.1" '
               '"curl/8.5.0" - -')

# Microsoft's older "IIS log file format": comma-separated, local date and time.
# https://learn.microsoft.com/en-us/previous-versions/iis/6.0-sdk/ms525807(v=vs.90)
IIS = LineRegex(
    r"(?P<client>[^, ]+), (?P<user>[^,]*), "
    r"(?P<time>[0-9]{1,2}/[0-9]{1,2}/[0-9]{2}, [0-9]{1,2}:[0-9]{2}:[0-9]{2}), "
    r"(?P<service>[^,]*), (?P<server>[^,]*), (?P<server_ip>[^,]*), (?P<time_taken>[^,]*), "
    r"(?P<received_bytes>[^,]*), (?P<bytes>[^,]*), (?P<status>[^,]*), (?P<win32_status>[^,]*), "
    r"(?P<method>[^,]*), (?P<path>[^,]*), (?P<query>.*),[ \t]*\r?\n?$",  # ids=1,2 has commas
    "IIS", time_format="%m/%d/%y, %H:%M:%S")
IIS_EXAMPLE = ("203.0.113.7, -, 11/15/24, 10:00:00, W3SVC1, WEB1, 10.0.0.5, 15, 310, 5123, "
               "200, 0, GET, /2/tweets/search/recent, max_results=100,")
