"""Writes the small committed sample logs into ``sample_logs/`` (deterministically).

Run ``python -m benchmarks.make_samples``; running it again gives byte-identical files.

What the files plant, and what ``scrapewatch scan sample_logs/`` must report under the
default policy (greedy periods, full rounding, 2xx only, more than 1,000,000 posts in
[s, s + 24 h), $15,000 per full million):

``nginx-access.log`` (nginx combined, +0000, 2025-03-03 to 2025-03-05)
    1,500 background lines from 40 clients (two of them IPv6), one line with an
    escaped quote in its user agent, ``-`` byte counts on 304s, and exactly one
    malformed line (``this is not an access log line``, 1 reject of 3,216 lines).
    ``203.0.113.77``: 1,700 x ``/2/tweets/search/all?max_results=500`` answered 200 on
    2025-03-04 from 02:00:00Z (plus 15 answered 429, which do not count): peak
    850,000 posts -> watchlist, $0.

``nginx-access-2025-03-04.log.gz`` (nginx combined, gzip, +0100)
    ``198.51.100.23``: 2,101 x ``/2/tweets/search/all?max_results=500`` answered 200,
    from 08:00:00+0100 to 17:55:00+0100 on 2025-03-04, among 300 background lines:
    one period [2025-03-04T07:00:00Z, 2025-03-05T07:00:00Z) with 1,050,500 posts
    -> $15,000.

``api-gateway.jsonl`` (JSON lines; ``result_count`` is the observed post count)
    ``k-acme-scraper``: 100 stream requests of 25,000 posts from 2025-03-03T08:00:00Z
    (within 6 h) and 48 more from 2025-03-05T12:00:00Z (plus three 429s with
    result_count 0): periods [2025-03-03T08:00:00Z, 2025-03-04T08:00:00Z) with
    2,500,000 posts ($30,000) and [2025-03-05T12:00:00Z, 2025-03-06T12:00:00Z) with
    1,200,000 posts ($15,000) -> $45,000.
    ``k-research-lab``: 40 requests of 25,000 from 2025-03-04T00:00:00Z to
    23:59:59Z, exactly 1,000,000 posts: not a violation (watchlist).
    A few small keys, a user without a key, anonymous calls and some 429s.

Total: 2 flagged entities, 3 charged periods, $60,000.00. Watchlist: 203.0.113.77
(850,000) and k-research-lab (1,000,000).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from benchmarks.catalogue import rule_posts

OUT_DIR = Path(__file__).resolve().parent.parent / "sample_logs"
SEED = 20250303
WORDS = ("python", "nasa", "climate", "worldcup", "duckdb", "marathon", "f1", "music")
API_AGENTS = ("python-requests/2.31.0", "curl/8.4.0", "Go-http-client/2.0", "Tweepy/4.14.0")
BROWSER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
)
# Background clients: 38 IPv4 in TEST-NET-1 and two IPv6; API clients come first.
CLIENTS = (*(f"192.0.2.{10 + 5 * i}" for i in range(38)), "2001:db8:5::17", "2001:db8:a0b:12f0::1")
N_API_CLIENTS = 24
WATCH_IP = "203.0.113.77"
VIOLATOR_IP = "198.51.100.23"
MALFORMED = "this is not an access log line"


@dataclass(frozen=True)
class Request:
    """One access-log record (times are UTC; the file's offset is applied on output)."""

    ts: datetime
    ip: str
    method: str
    target: str  # path with its query string
    status: int
    nbytes: int | None  # None is logged as "-"
    agent: str
    referer: str = "-"

    def posts(self) -> int:
        """Posts this request counts for under the default policy (2xx, path rules)."""
        path, _, query = self.target.partition("?")
        return rule_posts(path, query) if 200 <= self.status < 300 else 0


def combined(request: Request, offset: timedelta) -> str:
    """Formats a request as an nginx combined line, clock shown at ``offset``."""
    local = request.ts.astimezone(timezone(offset))
    nbytes = "-" if request.nbytes is None else str(request.nbytes)
    return (f'{request.ip} - - [{local.strftime("%d/%b/%Y:%H:%M:%S %z")}] '
            f'"{request.method} {request.target} HTTP/1.1" {request.status} {nbytes} '
            f'"{request.referer}" "{request.agent}"')


def _api_target(rng: random.Random) -> str:
    """A background API call: small post counts, or none."""
    word = rng.choice(WORDS)
    choices = (
        f"/2/tweets/search/recent?query={word}&max_results={rng.choice((10, 25, 50, 100))}",
        f"/2/tweets/search/recent?query=%23{word}",
        f"/2/tweets/{rng.randrange(1_500_000_000_000_000_000, 1_900_000_000_000_000_000)}",
        "/2/tweets?ids=" + ",".join(str(rng.randrange(10**18, 2 * 10**18))
                                    for _ in range(rng.randint(1, 5))),
        f"/2/users/{rng.randrange(10_000, 2_000_000_000)}/tweets?max_results=20",
        f"/1.1/statuses/user_timeline.json?screen_name={word}&count=50",
        "/2/users/me",
        f"/2/tweets/counts/recent?query={word}",
    )
    return rng.choice(choices)


def _background_request(rng: random.Random, ts: datetime) -> Request:
    """One background request at ``ts`` from a random client."""
    client = rng.randrange(len(CLIENTS))
    if client < N_API_CLIENTS:
        status = rng.choices((200, 429, 404, 500), weights=(90, 5, 3, 2))[0]
        target, agent, referer = _api_target(rng), API_AGENTS[client % len(API_AGENTS)], "-"
    else:
        status = rng.choices((200, 304, 404), weights=(82, 14, 4))[0]
        target = rng.choice(("/", "/login", "/home", "/static/app.js", "/favicon.ico",
                             "/robots.txt"))
        agent, referer = BROWSER_AGENTS[client % len(BROWSER_AGENTS)], "https://example.com/home"
    request = Request(ts, CLIENTS[client], "GET", target, status, None, agent, referer)
    if status == 304:
        return request  # Apache logs "-" for an empty body
    size = 380 + 700 * request.posts() + rng.randint(0, 40_000 if client >= N_API_CLIENTS else 300)
    return dataclasses.replace(request, nbytes=size if status < 300 else rng.randint(60, 400))


def background(rng: random.Random, start: datetime, end: datetime, n: int) -> list[Request]:
    """n background requests at random times in [start, end), in time order."""
    seconds = int((end - start).total_seconds())
    times = sorted(rng.randrange(seconds) for _ in range(n))
    return [_background_request(rng, start + timedelta(seconds=s)) for s in times]


def burst(ip: str, start: datetime, every: int, count: int, *, status: int = 200) -> list[Request]:
    """``count`` requests of 500 posts (search/all) from ``ip``, ``every`` seconds apart."""
    words = WORDS * (count // len(WORDS) + 1)
    return [Request(start + timedelta(seconds=i * every), ip, "GET",
                    f"/2/tweets/search/all?query={words[i]}&max_results=500", status,
                    400 + 500 * 690 + (i * 37) % 5_000, "python-requests/2.31.0")
            for i in range(count)]


def nginx_access(rng: random.Random) -> list[str]:
    """``nginx-access.log``: background, a watchlist client and one malformed line."""
    start = datetime(2025, 3, 3, tzinfo=UTC)
    requests = background(rng, start, start + timedelta(days=3), 1_500)
    watch = burst(WATCH_IP, datetime(2025, 3, 4, 2, tzinfo=UTC), 30, 1_700)
    limited = burst(WATCH_IP, datetime(2025, 3, 4, 2, 0, 15, tzinfo=UTC), 3_390, 15, status=429)
    assert sum(r.posts() for r in watch + limited) == 850_000
    requests = sorted(requests + watch + limited, key=lambda r: r.ts)
    # An Apache-style escaped quote inside a quoted field: valid, but easy to mis-split.
    quoted = requests[100]
    requests[100] = Request(quoted.ts, quoted.ip, quoted.method, quoted.target, quoted.status,
                            quoted.nbytes, 'Mozilla/5.0 (compatible; \\"QuoteBot\\"/1.0)')
    lines = [combined(r, timedelta(0)) for r in requests]
    lines.insert(len(lines) // 2, MALFORMED)
    return lines


def nginx_violator(rng: random.Random) -> list[str]:
    """``nginx-access-2025-03-04.log.gz``: a violator crossing the line, clock at +0100."""
    offset = timedelta(hours=1)
    local_day = datetime(2025, 3, 4, tzinfo=timezone(offset))
    requests = background(rng, local_day, local_day + timedelta(days=1), 300)
    scraper = burst(VIOLATOR_IP, datetime(2025, 3, 4, 8, tzinfo=timezone(offset)), 17, 2_101)
    assert sum(r.posts() for r in scraper) == 1_050_500
    assert scraper[-1].ts - scraper[0].ts < timedelta(hours=10)
    return [combined(r, offset) for r in sorted(requests + scraper, key=lambda r: r.ts)]


@dataclass(frozen=True)
class ApiCall:
    """One API-gateway record; ``result_count`` is the observed number of posts."""

    ts: datetime
    client_ip: str
    api_key: str | None
    user: str | None
    path: str
    query: str
    status: int
    result_count: int
    method: str = "GET"

    def line(self) -> str:
        """The record as one JSON line, fields in a fixed order."""
        record = {"ts": self.ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "client_ip": self.client_ip,
                  "api_key": self.api_key, "user": self.user, "method": self.method,
                  "path": self.path, "query": self.query, "status": self.status,
                  "bytes": 380 + 700 * self.result_count if self.status < 300 else 98,
                  "result_count": self.result_count}
        return json.dumps(record, separators=(",", ":"))


def streams(key: str, ip: str, user: str, path: str, times: Iterable[datetime]) -> list[ApiCall]:
    """Stream connections that each delivered 25,000 posts."""
    query = "tweet.fields=created_at,author_id" if "search" in path else ""
    return [ApiCall(t, ip, key, user, path, query, 200, 25_000) for t in times]


def acme_scraper() -> list[ApiCall]:
    """k-acme-scraper: 2,500,000 posts from 03-03 08:00Z, 1,200,000 from 03-05 12:00Z."""
    key, ip, user, path = "k-acme-scraper", "203.0.113.110", "u-acme-ops", "/2/tweets/search/stream"
    first = datetime(2025, 3, 3, 8, tzinfo=UTC)
    second = datetime(2025, 3, 5, 12, tzinfo=UTC)
    calls = streams(key, ip, user, path, (first + timedelta(seconds=216 * i) for i in range(100)))
    calls += streams(key, ip, user, path, (second + timedelta(seconds=300 * i) for i in range(48)))
    calls += [ApiCall(first + timedelta(seconds=216 * i + 100), ip, key, user, path,
                      "tweet.fields=created_at,author_id", 429, 0) for i in (20, 50, 80)]
    return calls


def research_lab() -> list[ApiCall]:
    """k-research-lab: exactly 1,000,000 posts within [03-04 00:00:00Z, 03-05 00:00:00Z)."""
    day = datetime(2025, 3, 4, tzinfo=UTC)
    times = [day + timedelta(seconds=round(i * 86_399 / 39)) for i in range(40)]
    assert times[0] == day and times[-1] == day + timedelta(seconds=86_399)
    return streams("k-research-lab", "203.0.113.120", "u-lab-01", "/2/tweets/sample/stream", times)


def small_callers(rng: random.Random) -> list[ApiCall]:
    """Light, legitimate traffic: a few keys, a user without a key, anonymous calls."""
    day = datetime(2025, 3, 3, tzinfo=UTC)
    callers = (("k-mobile-app", "u1001", "203.0.113.101"), ("k-newsroom", "u1002", "203.0.113.102"),
               ("k-dev-sandbox", "u1003", "203.0.113.103"), (None, "u2002", "203.0.113.104"),
               (None, None, "203.0.113.105"))
    calls = []
    for i in range(32):
        key, user, ip = callers[i % len(callers)]
        ts = day + timedelta(seconds=rng.randrange(3 * 86_400))
        asked = rng.choice((10, 50, 100))
        status = 429 if i % 7 == 3 else (401 if key is None and user is None else 200)
        got = rng.randint(0, asked) if status == 200 else 0
        calls.append(ApiCall(ts, ip, key, user, "/2/tweets/search/recent",
                             f"query={rng.choice(WORDS)}&max_results={asked}", status, got))
    return calls


def api_gateway(rng: random.Random) -> list[str]:
    """``api-gateway.jsonl``: all API calls in time order."""
    calls = acme_scraper() + research_lab() + small_callers(rng)
    return [call.line() for call in sorted(calls, key=lambda c: c.ts)]


def write_text(path: Path, lines: list[str]) -> None:
    """Writes lines with "\\n" endings whatever the platform."""
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def write_gzip(path: Path, lines: list[str]) -> None:
    """Writes gzipped lines with no time stamp in the header, so reruns are identical."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=path.name[:-3], mode="wb", fileobj=buffer, mtime=0) as out:
        out.write(("\n".join(lines) + "\n").encode("utf-8"))
    path.write_bytes(buffer.getvalue())


def main(out_dir: Path = OUT_DIR) -> None:
    """Writes the three sample logs into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "nginx-access.log", nginx_access(random.Random(SEED)))
    write_gzip(out_dir / "nginx-access-2025-03-04.log.gz", nginx_violator(random.Random(SEED + 1)))
    write_text(out_dir / "api-gateway.jsonl", api_gateway(random.Random(SEED + 2)))


if __name__ == "__main__":
    main()
