"""Seeded generator of realistic access logs with planted scrapers and their expected answer.

What it plants (the entity is the client IP for ``combined``, the api_key for ``jsonl``):

* ``max(2, 2 + lines // 2_000_000)`` **violators**. Each sends bursts lasting at most
  20 h; bursts of one entity start at least 48 h apart; each burst carries a known
  number of counted posts above 1,000,000 (1.0x to 3.5x million; the very first burst
  of the first violator carries exactly 1,000,001). So under the default policy
  (greedy periods, full rounding) every charged period starts at a burst's first
  request, ends 24 h later and holds exactly that burst's posts.
* one entity whose single burst holds **exactly 1,000,000** posts, spread over
  23:59:59 (not a violation: the clause says *more than*; it is on the watchlist),
* one **watchlist** entity peaking at 850,000 posts,
* **background** traffic from at least 200,000 clients (5 % IPv6, a few timezone
  offsets), mixing API calls with 0-post pages and assets, none of them above
  700,000 posts in any 24 h (checked while writing; the bound is reported).

Planted bursts also carry about 3 % of HTTP 429 answers to the same URLs, which must
not count (only 2xx does). Posts per request follow scrapewatch's built-in path rules
(``rule_posts`` below); in JSON lines ``result_count`` is the observed count and wins.

Expected answer (returned by ``generate`` and written by ``--expected``)::

    {"lines": N, "format": "combined", "seed": S, "threshold_posts": 1000000,
     "violators": {ENTITY: {"periods": [{"start": ..., "end": ..., "posts": ...}],
                            "damages_usd": "45000.00", "peak_24h_posts": ...,
                            "first_crossing_at": ...}},
     "exactly_threshold": {ENTITY: 1000000},
     "watchlist": {ENTITY: peak},          # both the 850,000 and the 1,000,000 entity
     "total_damages_usd": "...", ...}

Usage::

    python -m benchmarks.generate --lines 10000000 --format combined --seed 1 \\
        --out /tmp/access.log.gz --expected /tmp/expected.json

Speed: text is built per chunk with pyarrow ``take`` + ``binary_join_element_wise`` from
lookup tables, and written (and gzipped, level 1) on a second thread. Same arguments
give a byte-identical file.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import math
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FORMATS = ("combined", "jsonl")
DEFAULT_START = "2025-03-01T00:00:00Z"
DEFAULT_DAYS = 7
EFFECTIVE_FROM = datetime(2024, 11, 15, tzinfo=UTC)

THRESHOLD_POSTS = 1_000_000
RATE_USD = Decimal(15000)
PER_POSTS = 1_000_000
WATCH_PEAK = 850_000
BACKGROUND_CAP = 700_000  # no background entity may get closer to the threshold

DAY = 86_400
HOUR = 3_600
MAX_BURST_S = 20 * HOUR
BURST_GAP_S = 48 * HOUR
CHUNK_LINES = 500_000  # big enough to amortise, small enough to keep memory reused
MIN_CLIENTS = 200_000
RATE_LIMITED_EVERY = 33  # about 3 % of planted requests are answered 429

# ---------------------------------------------------------------------------
# scrapewatch's built-in path rules (the generator must agree with them)
# ---------------------------------------------------------------------------

# (path regex, query parameter or None, default, cap); "ids" counts list items.
POST_RULES: tuple[tuple[re.Pattern[str], str | None, int, int | None], ...] = (
    (re.compile(r"^/2/tweets/search/recent$"), "max_results", 10, 100),
    (re.compile(r"^/2/tweets/search/all$"), "max_results", 10, 500),
    (re.compile(r"^/2/tweets$"), "ids", 0, None),
    (re.compile(r"^/2/tweets/[0-9]+$"), None, 1, None),
    (re.compile(r"^/2/users/[0-9]+/tweets$"), "max_results", 10, 100),
    (re.compile(r"^/1\.1/statuses/user_timeline\.json$"), "count", 20, 200),
)


def rule_posts(path: str, query: str) -> int:
    """Posts a request is estimated to return, by scrapewatch's default path rules.

    Args:
        path: URL path without the query string.
        query: raw query string (no leading ``?``).

    Returns:
        The number of posts; 0 for paths no rule matches.
    """
    params = dict(parse_qsl(query, keep_blank_values=True))
    for pattern, param, default, cap in POST_RULES:
        if not pattern.match(path):
            continue
        if param == "ids":
            ids = params.get("ids", "")
            return len(ids.split(",")) if ids else 0
        value = int(params[param]) if param and param in params else default
        return min(value, cap) if cap is not None else value
    return 0


# ---------------------------------------------------------------------------
# Request templates
# ---------------------------------------------------------------------------

WORDS = ("python", "election", "nasa", "climate", "bitcoin", "worldcup", "openai",
         "football", "music", "breaking", "weather", "stocks", "f1", "nba", "space",
         "rustlang", "duckdb", "cats", "recipes", "marathon")
# (method, path, query, typical bytes) of non-API pages: they hold no posts.
WEB_PAGES = (("GET", "/", "", 48_211), ("GET", "/login", "", 9_874),
             ("POST", "/login", "", 412), ("GET", "/home", "", 51_330),
             ("GET", "/explore", "", 47_002), ("GET", "/static/app.js", "v=3f2a91", 184_213),
             ("GET", "/static/app.css", "", 38_120), ("GET", "/static/logo.png", "", 12_448),
             ("GET", "/favicon.ico", "", 1_150), ("GET", "/robots.txt", "", 212),
             ("GET", "/i/flow/login", "redirect_after_login=%2Fhome", 9_120),
             ("GET", "/search", "q=duckdb&src=typed_query", 52_777))
# Background API mix: kind -> (share, size parameters as written in the URL).
API_KINDS: dict[str, tuple[float, tuple[int | None, ...]]] = {
    "recent": (0.30, (None, 10, 25, 50, 100, 100, 250)),
    "all": (0.06, (None, 10, 100, 100, 500)),
    "lookup": (0.12, (1, 2, 5, 10, 20, 50, 100)),
    "single": (0.15, (None,)),
    "user_tweets": (0.12, (None, 5, 20, 50, 100)),
    "statuses": (0.10, (None, 50, 100, 200)),
    "zero": (0.15, (None,)),
}
N_API_TEMPLATES = 12_000
PLANTED_VARIANTS = 32  # distinct URLs per planted request shape


def _term(rng: np.random.Generator) -> str:
    """A search query as it appears URL-encoded in a log (hashtags, operators)."""
    word = WORDS[int(rng.integers(len(WORDS)))]
    style = int(rng.integers(4))
    return (word, f"%23{word}", f"from%3A{word}", f"{word}%20lang%3Aen")[style]


def _with_size(base: str, name: str, size: int | None) -> str:
    """Appends ``&name=size`` unless the size parameter is omitted (rule default)."""
    return base if size is None else f"{base}&{name}={size}"


def _zero_post_api(rng: np.random.Generator) -> tuple[str, str, str]:
    """An API call that returns no posts (some look close to ones that do)."""
    name = WORDS[int(rng.integers(len(WORDS)))]
    choices = (("GET", f"/2/users/by/username/{name}", ""), ("GET", "/2/users/me", ""),
               ("GET", "/2/tweets/counts/recent", f"query={_term(rng)}"),
               ("POST", "/2/tweets", ""), ("GET", "/2/tweets/search/stream/rules", ""),
               ("GET", "/1.1/account/verify_credentials.json", ""))
    return choices[int(rng.integers(len(choices)))]


def build_request(rng: np.random.Generator, kind: str, size: int | None) -> tuple[str, str, str]:
    """Builds one request of ``kind``.

    Args:
        rng: random source for ids and search terms.
        kind: one of API_KINDS, or "stream"/"sample" (bulk endpoints, 0 by path rules).
        size: the size parameter as written in the URL (``max_results``, ``count``, or
            the number of ids for "lookup"); None leaves it out.

    Returns:
        (method, path, query).
    """
    tweet_id = int(rng.integers(1_500_000_000_000_000_000, 1_900_000_000_000_000_000))
    if kind == "recent":
        query = _with_size(f"query={_term(rng)}", "max_results", size)
        return "GET", "/2/tweets/search/recent", query
    if kind == "all":
        return "GET", "/2/tweets/search/all", _with_size(f"query={_term(rng)}", "max_results", size)
    if kind == "lookup":
        ids = ",".join(str(tweet_id + 7919 * i) for i in range(size or 1))
        # tweet.fields also holds commas: only the ids list may be counted.
        return "GET", "/2/tweets", f"ids={ids}&tweet.fields=created_at,author_id"
    if kind == "single":
        return "GET", f"/2/tweets/{tweet_id}", "tweet.fields=public_metrics"
    if kind == "user_tweets":
        user_id = int(rng.integers(10_000, 2_000_000_000))
        query = _with_size("exclude=replies", "max_results", size)
        return "GET", f"/2/users/{user_id}/tweets", query
    if kind == "statuses":
        name = WORDS[int(rng.integers(len(WORDS)))]
        query = _with_size(f"screen_name={name}", "count", size)
        return "GET", "/1.1/statuses/user_timeline.json", query
    if kind == "stream":
        return "GET", "/2/tweets/search/stream", "tweet.fields=created_at,author_id"
    if kind == "sample":
        return "GET", "/2/tweets/sample/stream", ""
    return _zero_post_api(rng)


@dataclass
class Catalogue:
    """Every distinct request line; each log line points at one by index."""

    method: list[str] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    query: list[str] = field(default_factory=list)
    rule: list[int] = field(default_factory=list)  # posts by path rules
    web_bytes: list[int] = field(default_factory=list)  # > 0 marks a page/asset
    api_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    web_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    posts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    page_bytes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def add(self, method: str, path: str, query: str, web_bytes: int = 0) -> int:
        """Adds a request and returns its index."""
        self.method.append(method)
        self.path.append(path)
        self.query.append(query)
        self.rule.append(rule_posts(path, query))
        self.web_bytes.append(web_bytes)
        return len(self.method) - 1

    def freeze(self) -> None:
        """Builds the numpy views used on the hot path (call after the last add)."""
        self.posts = np.asarray(self.rule, dtype=np.int64)
        self.page_bytes = np.asarray(self.web_bytes, dtype=np.int64)


def background_catalogue(rng: np.random.Generator) -> Catalogue:
    """Creates the background request mix: API calls of all kinds, pages and assets."""
    cat = Catalogue()
    kinds = list(API_KINDS)
    shares = np.array([API_KINDS[k][0] for k in kinds])
    picks = rng.choice(len(kinds), N_API_TEMPLATES, p=shares / shares.sum())
    api = []
    for pick in picks:
        sizes = API_KINDS[kinds[pick]][1]
        size = sizes[int(rng.integers(len(sizes)))]
        api.append(cat.add(*build_request(rng, kinds[pick], size)))
    web = [cat.add(m, p, q, b) for m, p, q, b in WEB_PAGES]
    cat.api_ids = np.asarray(api, dtype=np.int64)
    cat.web_ids = np.asarray(web, dtype=np.int64)
    return cat


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------

OFFSETS = (("+0000", 0), ("+0200", 2 * HOUR), ("-0500", -5 * HOUR), ("+0100", HOUR),
           ("+0530", 5 * HOUR + 30 * 60))
OFFSET_SHARE = (0.85, 0.05, 0.05, 0.03, 0.02)
API_AGENTS = ("python-requests/2.31.0", "curl/8.4.0", "Go-http-client/2.0",
              "okhttp/4.12.0", "Tweepy/4.14.0", "axios/1.6.7", "node-fetch/1.0")
BROWSER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148")
# First octets of public-looking background IPv4; the documentation ranges
# (192.0.2/24, 198.51.100/24, 203.0.113/24) are kept for planted entities.
PUBLIC_FIRST_OCTETS = np.array([o for o in range(1, 224)
                                if o not in (10, 100, 127, 169, 172, 192, 198, 203)])


@dataclass
class Population:
    """All clients: background ones first, planted ones appended."""

    ip: list[str]
    offset: list[int]  # index into OFFSETS
    api_key: list[str | None]
    user: list[str | None]
    agent: list[str]
    referer: list[str]
    is_api: np.ndarray
    weight: np.ndarray  # background share of lines (lognormal: a few busy clients)
    n_background: int
    cum_weight: np.ndarray = field(default_factory=lambda: np.zeros(0))
    offset_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def add(self, *, ip: str, offset: int, api_key: str | None, user: str | None) -> int:
        """Appends a planted client and returns its index."""
        self.ip.append(ip)
        self.offset.append(offset)
        self.api_key.append(api_key)
        self.user.append(user)
        self.agent.append(API_AGENTS[len(self.ip) % len(API_AGENTS)])
        self.referer.append("-")
        return len(self.ip) - 1

    def freeze(self) -> None:
        """Builds the numpy views used on the hot path."""
        self.cum_weight = np.cumsum(self.weight)
        self.offset_idx = np.asarray(self.offset, dtype=np.int64)


def _ipv4_pool(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct public-looking IPv4 addresses outside the planted ranges."""
    found: np.ndarray = np.zeros(0, np.int64)
    while len(found) < n:
        first = PUBLIC_FIRST_OCTETS[rng.integers(len(PUBLIC_FIRST_OCTETS), size=n)]
        rest = rng.integers(1, 1 << 24, size=n)
        rest = rest[(rest & 255 != 0) & (rest & 255 != 255)]
        found = np.unique(np.concatenate([found, (first[: len(rest)] << 24) | rest]))
    chosen = rng.permutation(found)[:n]
    return [f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}" for v in chosen.tolist()]


def _ipv6_pool(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct IPv6 addresses in canonical compressed form (as servers log them)."""
    seen: set[str] = set()
    while len(seen) < n:
        a, b, c = rng.integers(1, 0xFFFF, size=3).tolist()
        seen.add(f"2001:db8:{a:x}:{b:x}::{c:x}")
    return sorted(seen)


def background_population(rng: np.random.Generator, n: int) -> Population:
    """Creates n background clients: 45 % API clients (most with an api_key), the rest browsers."""
    n_v6 = n // 20
    ips = _ipv4_pool(rng, n - n_v6) + _ipv6_pool(rng, n_v6)
    ips = [ips[i] for i in rng.permutation(n).tolist()]
    is_api = rng.random(n) < 0.45
    keyed = is_api & (rng.random(n) < 0.9)
    logged_in = keyed | (rng.random(n) < 0.4)
    # Odd multipliers are bijections modulo a power of two: ids are unique.
    keys = [f"k-{(i * 0x9E3779B97F4B + 0x5DEECE66D) % (1 << 48):012x}" if keyed[i] else None
            for i in range(n)]
    users = [f"u{(i * 2654435761 + 12345) % (1 << 32)}" if logged_in[i] else None
             for i in range(n)]
    agent_pick = rng.integers(0, 1 << 16, size=n).tolist()
    agents = [API_AGENTS[a % len(API_AGENTS)] if api else BROWSER_AGENTS[a % len(BROWSER_AGENTS)]
              for a, api in zip(agent_pick, is_api.tolist(), strict=True)]
    referers = ["-" if api or a % 2 else "https://example.com/home"
                for a, api in zip(agent_pick, is_api.tolist(), strict=True)]
    offsets = rng.choice(len(OFFSETS), size=n, p=OFFSET_SHARE).tolist()
    return Population(ip=ips, offset=offsets, api_key=keys, user=users, agent=agents,
                      referer=referers, is_api=is_api, weight=rng.lognormal(0.0, 1.0, n),
                      n_background=n)


# ---------------------------------------------------------------------------
# Lines (columnar, one row per log line)
# ---------------------------------------------------------------------------

STATUSES = np.array([200, 206, 301, 304, 404, 429, 500, 503])
STATUS_OK = (STATUSES >= 200) & (STATUSES < 300)
API_STATUS_SHARE = (0.885, 0.005, 0.0, 0.0, 0.03, 0.05, 0.02, 0.01)
WEB_STATUS_SHARE = (0.82, 0.0, 0.02, 0.12, 0.04, 0.0, 0.0, 0.0)
S200 = 0
S429 = 5


@dataclass
class Lines:
    """A batch of log lines as parallel arrays."""

    ts: np.ndarray  # UTC epoch seconds
    client: np.ndarray  # index into Population
    template: np.ndarray  # index into Catalogue
    status: np.ndarray  # index into STATUSES
    observed: np.ndarray  # result_count (JSON lines); 0 unless 2xx
    nbytes: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: np.ndarray | slice) -> Lines:
        """Rows at ``index`` (an index array or a slice)."""
        return Lines(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))

    @staticmethod
    def concat(parts: Sequence[Lines]) -> Lines:
        """Rows of all parts, in order."""
        return Lines(*(np.concatenate([getattr(p, f.name) for p in parts])
                       for f in dataclasses.fields(Lines)))


def counted_posts(lines: Lines, cat: Catalogue, fmt: str) -> np.ndarray:
    """Posts each line counts for under the default policy (2xx only; result_count wins)."""
    per_line = lines.observed if fmt == "jsonl" else cat.posts[lines.template]
    return np.where(STATUS_OK[lines.status], per_line, 0)


def response_bytes(rng: np.random.Generator, cat: Catalogue, template: np.ndarray,
                   status: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Plausible response sizes: pages have their size, API answers grow with posts."""
    n = len(template)
    page = cat.page_bytes[template]
    api = 420 + observed * rng.integers(600, 800, size=n)
    ok_size = np.where(page > 0, page + rng.integers(0, 64, size=n), api)
    error_size = np.where(STATUSES[status] == 304, 0, rng.integers(60, 600, size=n))
    return np.where(STATUS_OK[status], ok_size, error_size)


# ---------------------------------------------------------------------------
# Planted entities
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    """How a planted entity asks for posts: one request shape, repeated."""

    kind: str
    size: int | None  # as written in the URL (may exceed the rule's cap on purpose)
    observed: int | None = None  # result_count per request (bulk streams, jsonl only)

    def unit(self) -> int:
        """Posts one 2xx request of this profile counts for."""
        if self.observed is not None:
            return self.observed
        return rule_posts(*build_request(np.random.default_rng(0), self.kind, self.size)[1:])


# Realistic profiles, cycled over planted entities; some exceed the cap on purpose.
PROFILES = {
    "combined": (Profile("all", 500), Profile("recent", 100), Profile("statuses", 200),
                 Profile("all", 1000), Profile("user_tweets", 100), Profile("lookup", 100),
                 Profile("recent", 250), Profile("statuses", 800)),
    "jsonl": (Profile("stream", None, 25_000), Profile("all", 500), Profile("sample", None, 10_000),
              Profile("recent", 100), Profile("lookup", 100), Profile("statuses", 200)),
}
# Most posts per line: used when realistic profiles would not fit the line budget.
DENSE = {"combined": Profile("all", 500), "jsonl": Profile("stream", None, 25_000)}


@dataclass
class Burst:
    """A run of requests by one planted entity, holding ``posts`` counted posts."""

    start: int  # epoch seconds of the first (2xx) request
    duration: int  # seconds from the first to the last request
    posts: int
    first_crossing: int | None = None  # filled when lines are built


@dataclass
class PlantedEntity:
    """A planted entity: its role, how it requests, and its bursts."""

    role: str  # "violator", "exactly_threshold" or "watchlist"
    posts: list[int]
    profile: Profile
    name: str = ""
    client: int = -1
    bursts: list[Burst] = field(default_factory=list)


def planted_line_count(entities: Sequence[PlantedEntity]) -> int:
    """Lines the planted bursts need (posts lines, a remainder line, 429s)."""
    total = 0
    for entity in entities:
        unit = entity.profile.unit()
        for posts in entity.posts:
            total += math.ceil(posts / unit) + (posts // unit) // RATE_LIMITED_EVERY
    return total


def plan_roles(rng: np.random.Generator, lines: int, max_bursts: int) -> list[PlantedEntity]:
    """Decides the planted entities and their burst sizes (profiles come later)."""
    entities = []
    for i in range(max(2, 2 + lines // 2_000_000)):
        n_bursts = int(rng.integers(1, min(3, max_bursts) + 1))
        posts = rng.integers(THRESHOLD_POSTS + 1, 3_500_001, size=n_bursts).tolist()
        if i == 0:
            posts[0] = THRESHOLD_POSTS + 1  # the smallest possible violation
        entities.append(PlantedEntity("violator", posts, DENSE["combined"]))
    entities.append(PlantedEntity("exactly_threshold", [THRESHOLD_POSTS], DENSE["combined"]))
    entities.append(PlantedEntity("watchlist", [WATCH_PEAK], DENSE["combined"]))
    return entities


def fit_profiles(entities: list[PlantedEntity], lines: int, fmt: str) -> None:
    """Picks request profiles so that the planted lines fit in ``lines``.

    Realistic mixed profiles while they take at most 15 % of the file; else the
    densest profile; else violators keep a single burst. Raises ValueError when
    even that does not fit in 80 % of the lines.
    """
    profiles = PROFILES[fmt]
    for i, entity in enumerate(entities):
        entity.profile = profiles[i % len(profiles)]
    if planted_line_count(entities) <= 0.15 * lines:
        return
    for entity in entities:
        entity.profile = DENSE[fmt]
    if planted_line_count(entities) > 0.5 * lines:
        for entity in entities:
            entity.posts = entity.posts[:1]
    needed = planted_line_count(entities)
    if needed > 0.8 * lines:
        raise ValueError(f"--lines {lines} is too small for the planted entities: "
                         f"use at least {math.ceil(needed / 0.8)}")


def place_bursts(rng: np.random.Generator, entity: PlantedEntity, t0: int, span: int) -> None:
    """Places the entity's bursts: each at most 20 h long, starts at least 48 h apart.

    The exactly-threshold burst lasts 23:59:59 instead, to exercise the half-open
    24 h boundary (all of it must still fit in one period).
    """
    long_burst = entity.role == "exactly_threshold"
    durations = [DAY - 1 if long_burst else int(rng.integers(HOUR, MAX_BURST_S + 1))
                 for _ in entity.posts]
    k = len(durations)
    slack = span - 1 - (k - 1) * BURST_GAP_S - durations[-1]
    if slack < 0:
        raise ValueError(f"{k} bursts do not fit in {span // DAY} days")
    gaps = np.floor(rng.dirichlet(np.ones(k + 1)) * slack).astype(np.int64).tolist()
    start = t0 + gaps[0]
    for i, (posts, duration) in enumerate(zip(entity.posts, durations, strict=True)):
        if i:
            start += BURST_GAP_S + gaps[i]
        entity.bursts.append(Burst(start=start, duration=duration, posts=posts))


def name_entities(rng: np.random.Generator, entities: list[PlantedEntity],
                  pop: Population, fmt: str) -> None:
    """Gives each planted entity its own client: a distinct IP, api_key and user."""
    doc_ips = [f"{net}.{host}" for net in ("203.0.113", "198.51.100", "192.0.2")
               for host in range(1, 255)]
    doc_ips = [doc_ips[i] for i in rng.permutation(len(doc_ips)).tolist()]
    values = rng.integers(1 << 62, 1 << 63, size=len(entities) * 2).tolist()
    keys = sorted({f"k-{v:016x}" for v in values})
    keys = [keys[i] for i in rng.permutation(len(keys)).tolist()]
    for i, entity in enumerate(entities):
        # One IPv6 violator exercises IPv6 parsing; background never uses 2001:db8:ffff::.
        ip = f"2001:db8:ffff::{i + 1:x}" if i == 1 else doc_ips[i]
        offset = {"exactly_threshold": 4, "watchlist": 3}.get(entity.role, i % 3)
        entity.client = pop.add(ip=ip, offset=offset, api_key=keys[i], user=f"u{(1 << 40) + i}")
        entity.name = keys[i] if fmt == "jsonl" else ip


def _remainder_request(profile: Profile, posts: int) -> tuple[str, int | None]:
    """A request shape worth exactly ``posts`` (less than the profile's unit)."""
    if profile.observed is not None:
        return profile.kind, None  # a shorter stream: result_count says how many
    if posts == 1:
        return "single", None
    if posts <= 100:
        return "lookup", posts
    return "all", posts


def burst_requests(rng: np.random.Generator, entity: PlantedEntity, posts: int,
                   cat: Catalogue) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Requests of one burst in order: (template, status, observed posts).

    Full-unit requests plus one remainder request sum to exactly ``posts``; about 3 %
    more requests are answered 429 and count nothing. The first and the last request
    are 2xx, so the charged period starts at the burst's first line.
    """
    profile = entity.profile
    unit = profile.unit()
    full, rest = divmod(posts, unit)
    variants = np.array([cat.add(*build_request(rng, profile.kind, profile.size))
                         for _ in range(PLANTED_VARIANTS)])
    template = variants[rng.integers(len(variants), size=full)]
    observed = np.full(full, unit, dtype=np.int64)
    if rest:
        extra = cat.add(*build_request(rng, *_remainder_request(profile, rest)))
        template = np.append(template, extra)
        observed = np.append(observed, rest)
    order = rng.permutation(len(template))
    template, observed = template[order], observed[order]
    n429 = full // RATE_LIMITED_EVERY
    at = rng.integers(1, len(template), size=n429)  # never before the first / after the last
    template = np.insert(template, at, variants[rng.integers(len(variants), size=n429)])
    status = np.insert(np.full(len(observed), S200, np.int64), at, S429)
    return template.astype(np.int64), status, np.insert(observed, at, 0)


def burst_lines(rng: np.random.Generator, entity: PlantedEntity, burst: Burst,
                cat: Catalogue) -> Lines:
    """Lines of one burst, from its first request at ``start`` to ``start + duration``.

    Response sizes are left at 0: they are filled in once the catalogue is frozen.
    """
    template, status, observed = burst_requests(rng, entity, burst.posts, cat)
    offsets = np.sort(rng.integers(0, burst.duration + 1, size=len(template) - 2))
    ts = burst.start + np.concatenate([[0], offsets, [burst.duration]]).astype(np.int64)
    client = np.full(len(ts), entity.client, dtype=np.int64)
    return Lines(ts, client, template, status, observed, np.zeros(len(ts), np.int64))


# ---------------------------------------------------------------------------
# Background traffic over time
# ---------------------------------------------------------------------------

class DiurnalClock:
    """Maps a traffic quantile in [0, 1] to seconds after the start.

    Traffic follows a daily cycle (busiest mid-afternoon UTC, half as busy at night),
    so windows starting at different hours hold different loads, as in real logs.
    """

    def __init__(self, span: int) -> None:
        self.grid = np.linspace(0.0, float(span), span // 60 + 1)
        rate = 1.0 + 0.5 * np.sin(2 * np.pi * (self.grid / DAY - 8 / 24))
        steps = (rate[1:] + rate[:-1]) / 2 * np.diff(self.grid)
        cdf = np.concatenate([[0.0], np.cumsum(steps)])
        self.cdf = cdf / cdf[-1]

    def seconds_at(self, q: np.ndarray | float) -> np.ndarray:
        """Seconds after the start at which a share ``q`` of the traffic has passed."""
        return np.asarray(np.interp(q, self.cdf, self.grid))


@dataclass
class World:
    """Everything a chunk needs: where, when, who and what."""

    fmt: str
    seed: int
    t0: int
    span: int
    cat: Catalogue
    pop: Population
    clock: DiurnalClock


def observed_counts(rng: np.random.Generator, rule: np.ndarray, status: np.ndarray) -> np.ndarray:
    """result_count: the rule's count, sometimes fewer (a last page); 0 unless 2xx."""
    partial = rng.random(len(rule)) < 0.1
    fewer = np.floor(rule * rng.uniform(0.3, 1.0, size=len(rule))).astype(np.int64)
    return np.where(STATUS_OK[status], np.where(partial, fewer, rule), 0)


def background_chunk(rng: np.random.Generator, world: World, n: int,
                     q0: float, q1: float) -> Lines:
    """n background lines whose times cover the traffic quantiles [q0, q1), sorted."""
    cat, pop = world.cat, world.pop
    share = q0 + (q1 - q0) * np.sort(rng.random(n))
    ts = world.t0 + np.floor(world.clock.seconds_at(share)).astype(np.int64)
    draw = rng.random(n) * pop.cum_weight[-1]
    client = np.minimum(np.searchsorted(pop.cum_weight, draw, side="right"), pop.n_background - 1)
    api = pop.is_api[client]
    template = np.where(api, cat.api_ids[rng.integers(len(cat.api_ids), size=n)],
                        cat.web_ids[rng.integers(len(cat.web_ids), size=n)])
    status = np.where(api, rng.choice(len(STATUSES), size=n, p=API_STATUS_SHARE),
                      rng.choice(len(STATUSES), size=n, p=WEB_STATUS_SHARE))
    observed = observed_counts(rng, cat.posts[template], status)
    nbytes = response_bytes(rng, cat, template, status, observed)
    return Lines(ts, client.astype(np.int64), template, status, observed, nbytes)


class BackgroundPeakCheck:
    """Upper-bounds each background client's posts in any 24 h.

    Any 24 h window lies inside two consecutive day buckets (counted from the start),
    so the largest two-bucket sum bounds every background peak. Buckets are released
    once no later chunk can touch them, which keeps memory at a few client-sized arrays.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.days: dict[int, np.ndarray] = {}
        self.bound = 0

    def add(self, lines: Lines) -> None:
        """Accounts for a time-ordered chunk."""
        background = lines.client < self.world.pop.n_background
        posts = counted_posts(lines, self.world.cat, self.world.fmt)[background]
        client = lines.client[background]
        day = (lines.ts[background] - self.world.t0) // DAY
        for d in np.unique(day).tolist():
            sums = np.bincount(client[day == d], weights=posts[day == d],
                               minlength=self.world.pop.n_background)
            self.days[d] = self.days.get(d, 0) + sums
        self._release(int(day.min()) if len(day) else 0)

    def _release(self, before: int) -> None:
        """Folds in the pairs (d, d+1) that later chunks can no longer change."""
        for d in sorted(self.days):
            if d + 1 >= before:
                break
            pair = self.days[d] + self.days.get(d + 1, 0)
            self.bound = max(self.bound, int(np.max(pair)))
            del self.days[d]

    def finish(self) -> int:
        """The bound over the whole file."""
        self._release(1 << 62)
        return self.bound


# ---------------------------------------------------------------------------
# Rendering text
# ---------------------------------------------------------------------------

def _json(text: str | None) -> str:
    """A JSON value for a string field (null when absent)."""
    return json.dumps(text)


@dataclass
class RenderTables:
    """Lookup tables of text pieces; a line is a few ``take``s joined."""

    days: pa.Array  # by day index from day_base
    day_base: int
    clock: pa.Array  # by offset * 86400 + second of day
    client_head: pa.Array
    client_tail: pa.Array
    request: pa.Array  # by template * len(STATUSES) + status


def _request_text(cat: Catalogue, fmt: str, i: int, status: int) -> str:
    """The request part of a line, up to the bytes field."""
    method, path, query = cat.method[i], cat.path[i], cat.query[i]
    if fmt == "combined":
        target = f"{path}?{query}" if query else path
        return f'{method} {target} HTTP/1.1" {status} '
    return (f'"method":{_json(method)},"path":{_json(path)},"query":{_json(query)},'
            f'"status":{status},"bytes":')


def _client_texts(pop: Population, fmt: str) -> tuple[list[str], list[str]]:
    """Per client: the text before the timestamp and the text ending the line."""
    if fmt == "combined":
        head = [f"{ip} - - [" for ip in pop.ip]
        tail = [f' "{ref}" "{agent}"\n' for ref, agent in zip(pop.referer, pop.agent, strict=True)]
        return head, tail
    head = [f'Z","client_ip":{_json(ip)},"api_key":{_json(key)},"user":{_json(user)},'
            for ip, key, user in zip(pop.ip, pop.api_key, pop.user, strict=True)]
    return head, []


def build_tables(world: World) -> RenderTables:
    """Pre-renders every repeated piece of text once."""
    fmt, cat = world.fmt, world.cat
    day_base = world.t0 // DAY - 1  # offsets move local days by at most one
    days: list[str] = []
    clock: list[str] = []
    for d in range(world.span // DAY + 3):
        when = datetime.fromtimestamp((day_base + d) * DAY, UTC)
        days.append(when.strftime("%d/%b/%Y:" if fmt == "combined" else '{"ts":"%Y-%m-%dT'))
    offsets = OFFSETS if fmt == "combined" else OFFSETS[:1]
    for text, _ in offsets:
        suffix = f' {text}] "' if fmt == "combined" else ""
        clock += [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{suffix}" for s in range(DAY)]
    head, tail = _client_texts(world.pop, fmt)
    request = [_request_text(cat, fmt, i, int(s)) for i in range(len(cat.method)) for s in STATUSES]
    text = pa.large_string()
    return RenderTables(pa.array(days, text), day_base, pa.array(clock, text),
                        pa.array(head, text), pa.array(tail, text), pa.array(request, text))


def _take(table: pa.Array, index: np.ndarray) -> pa.Array:
    return table.take(pa.array(index.astype(np.int32)))


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.large_string())


def render(lines: Lines, world: World, tables: RenderTables) -> pa.Array:
    """One string per line, newline included, in one large_string array."""
    pop = world.pop
    request = _take(tables.request, lines.template * len(STATUSES) + lines.status)
    if world.fmt == "combined":
        offset = pop.offset_idx[lines.client]
        local = lines.ts + np.array([s for _, s in OFFSETS])[offset]
        pieces = [_take(tables.client_head, lines.client),
                  _take(tables.days, local // DAY - tables.day_base),
                  _take(tables.clock, offset * DAY + local % DAY),
                  request, _text(lines.nbytes), _take(tables.client_tail, lines.client)]
    else:
        pieces = [_take(tables.days, lines.ts // DAY - tables.day_base),
                  _take(tables.clock, lines.ts % DAY),
                  _take(tables.client_head, lines.client), request, _text(lines.nbytes),
                  pa.scalar(',"result_count":', pa.large_string()), _text(lines.observed),
                  pa.scalar("}\n", pa.large_string())]
    joined = pc.binary_join_element_wise(*pieces, pa.scalar("", pa.large_string()))
    if joined.null_count:
        raise AssertionError("a line piece was missing")
    return joined


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

class ChunkWriter:
    """Writes rendered chunks in order on a second thread.

    zlib and file writes release the GIL, so gzip compression overlaps with the
    rendering of the next chunk. gzip headers carry no time stamp (mtime=0) so the
    output is byte-identical from run to run.
    """

    def __init__(self, path: Path) -> None:
        self._raw: BinaryIO = open(path, "wb")  # noqa: SIM115 (closed in close())
        self._out: BinaryIO = self._raw
        if path.name.endswith(".gz"):
            self._out = gzip.GzipFile(filename=path.name[:-3], mode="wb", fileobj=self._raw,
                                      compresslevel=1, mtime=0)  # type: ignore[assignment]
        self._queue: queue.Queue[pa.Array | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    end = int(np.frombuffer(chunk.buffers()[1], np.int64)[len(chunk)])
                    self._out.write(memoryview(chunk.buffers()[2])[:end])
                except BaseException as exc:  # reported by close(); keep draining
                    self._error = exc

    def write(self, chunk: pa.Array) -> None:
        """Queues a chunk (blocks when two are already waiting)."""
        self._queue.put(chunk)

    def close(self) -> None:
        """Flushes everything and re-raises a write error, if any."""
        self._queue.put(None)
        self._thread.join()
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()
        if self._error is not None:
            raise self._error


# ---------------------------------------------------------------------------
# Expected answer
# ---------------------------------------------------------------------------

def iso(ts: int) -> str:
    """Epoch seconds as ``2025-03-01T00:00:01Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def damages(posts: int) -> Decimal:
    """Default policy: $15,000 per full million posts of the charged period."""
    return RATE_USD * (posts // PER_POSTS)


def check_bursts(entities: Sequence[PlantedEntity], planted: Lines, world: World) -> None:
    """Recounts every burst from its lines and records its first crossing time.

    This is the independent check that the plan and the lines agree: the counted
    posts in [first request, +24 h) of each burst must equal the planned posts.
    """
    posts = counted_posts(planted, world.cat, world.fmt)
    for entity in entities:
        for burst in entity.bursts:
            mine = ((planted.client == entity.client) & (planted.ts >= burst.start)
                    & (planted.ts < burst.start + DAY))
            if int(posts[mine].sum()) != burst.posts:
                raise AssertionError(f"burst of {entity.name} holds {posts[mine].sum()} posts")
            cumulative = np.cumsum(posts[mine])
            crossing = np.flatnonzero(cumulative > THRESHOLD_POSTS)
            if len(crossing):
                burst.first_crossing = int(planted.ts[mine][crossing[0]])


def expected_answer(entities: Sequence[PlantedEntity], **header: Any) -> dict[str, Any]:
    """The answer scrapewatch must give under the default policy."""
    violators: dict[str, Any] = {}
    total = Decimal(0)
    for entity in (e for e in entities if e.role == "violator"):
        periods = [{"start": iso(b.start), "end": iso(b.start + DAY), "posts": b.posts}
                   for b in entity.bursts]
        owed = sum((damages(b.posts) for b in entity.bursts), Decimal(0))
        total += owed
        first = min(b.first_crossing for b in entity.bursts if b.first_crossing is not None)
        violators[entity.name] = {"periods": periods, "damages_usd": f"{owed:.2f}",
                                  "peak_24h_posts": max(entity.posts),
                                  "first_crossing_at": iso(first)}
    # The watchlist is every entity whose peak is >= 80 % of the threshold but not over.
    near = {e.name: max(e.posts) for e in entities if e.role != "violator"}
    exact = {e.name: max(e.posts) for e in entities if e.role == "exactly_threshold"}
    return {**header, "threshold_posts": THRESHOLD_POSTS, "violators": violators,
            "exactly_threshold": exact, "watchlist": near, "total_damages_usd": f"{total:.2f}"}


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

def parse_start(start: str | datetime) -> int:
    """A start instant (ISO-8601 or datetime, UTC if naive) as epoch seconds."""
    when = (start if isinstance(start, datetime)
            else datetime.fromisoformat(start.replace("Z", "+00:00")))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when < EFFECTIVE_FROM:
        raise ValueError("start must be on or after 2024-11-15T00:00:00Z "
                         "(earlier requests do not count)")
    return int(when.timestamp())


def build_world(rng: np.random.Generator, *, lines: int, fmt: str, seed: int,
                t0: int, days: int) -> tuple[World, list[PlantedEntity], Lines]:
    """Plans the whole file: clients, requests, planted entities and their lines."""
    span = days * DAY
    # More clients when days are dense, so busy background clients stay far below the line.
    clients = min(max(MIN_CLIENTS, lines // days // 40), 5_000_000)
    cat = background_catalogue(rng)
    pop = background_population(rng, clients)
    entities = plan_roles(rng, lines, (span - 1 - MAX_BURST_S) // BURST_GAP_S + 1)
    fit_profiles(entities, lines, fmt)
    name_entities(rng, entities, pop, fmt)
    for entity in entities:
        place_bursts(rng, entity, t0, span)
    parts = [burst_lines(rng, e, b, cat) for e in entities for b in e.bursts]
    planted = Lines.concat(parts)
    planted = planted.take(np.argsort(planted.ts, kind="stable"))
    cat.freeze()
    pop.freeze()
    planted.nbytes = response_bytes(rng, cat, planted.template, planted.status, planted.observed)
    world = World(fmt, seed, t0, span, cat, pop, DiurnalClock(span))
    check_bursts(entities, planted, world)
    return world, entities, planted


def write_lines(path: Path, world: World, planted: Lines, n_background: int,
                progress: bool) -> int:
    """Writes background chunks merged with planted lines in time order.

    Returns:
        The upper bound of any background client's posts in 24 h.
    """
    tables = build_tables(world)
    n_chunks = max(1, math.ceil(n_background / CHUNK_LINES))
    cuts = [n_background * k // n_chunks for k in range(n_chunks + 1)]
    # Planted lines go to the chunk whose time range holds them (see edges).
    edges = [world.t0 + math.floor(float(world.clock.seconds_at(c / n_background))) for c in cuts]
    check, writer, began, done = BackgroundPeakCheck(world), ChunkWriter(path), time.monotonic(), 0
    try:
        for k in range(n_chunks):
            rng = np.random.default_rng([world.seed, 1, k])
            chunk = background_chunk(rng, world, cuts[k + 1] - cuts[k],
                                     cuts[k] / n_background, cuts[k + 1] / n_background)
            lo = 0 if k == 0 else int(np.searchsorted(planted.ts, edges[k]))
            hi = (len(planted) if k == n_chunks - 1
                  else int(np.searchsorted(planted.ts, edges[k + 1])))
            merged = Lines.concat([chunk, planted.take(slice(lo, hi))])
            merged = merged.take(np.argsort(merged.ts, kind="stable"))
            check.add(merged)
            writer.write(render(merged, world, tables))
            done += len(merged)
            if progress:
                report_progress(done, n_background + len(planted), began)
    finally:
        writer.close()
    return check.finish()


def report_progress(done: int, total: int, began: float) -> None:
    """One progress line on stderr (rewritten in place on a terminal)."""
    rate = done / max(time.monotonic() - began, 1e-9)
    end = "\r" if sys.stderr.isatty() and done < total else "\n"
    print(f"generate: {done:,}/{total:,} lines ({done / total:.0%}), "
          f"{rate / 1e6:.2f} M lines/s", end=end, file=sys.stderr, flush=True)


def generate(path: str | os.PathLike[str], *, lines: int, fmt: str, seed: int,
             start: str | datetime = DEFAULT_START, days: int = DEFAULT_DAYS,
             progress: bool = False) -> dict[str, Any]:
    """Writes a log file with planted violators and returns the expected answer.

    Args:
        path: output file; gzip (level 1) when it ends in ``.gz``.
        lines: exact number of lines to write.
        fmt: "combined" (nginx/Apache) or "jsonl".
        seed: random seed; same arguments give a byte-identical file.
        start: first instant of the traffic (UTC), on or after 2024-11-15.
        days: whole days of traffic.
        progress: print progress to stderr.

    Returns:
        The expected answer (see the module docstring).

    Raises:
        ValueError: bad arguments, or too few lines for the planted entities.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if lines < 1 or days < 1 or seed < 0:
        raise ValueError("lines and days must be positive and seed non-negative")
    t0 = parse_start(start)
    world, entities, planted = build_world(np.random.default_rng([seed, 0]), lines=lines,
                                           fmt=fmt, seed=seed, t0=t0, days=days)
    bound = write_lines(Path(path), world, planted, lines - len(planted), progress)
    if bound > BACKGROUND_CAP:
        raise AssertionError(f"a background client reached {bound} posts in 48 h; change the seed")
    return expected_answer(entities, lines=lines, format=fmt, seed=seed, start=iso(t0), days=days,
                           planted_lines=len(planted), background_peak_24h_upper_bound=bound)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, required=True, help="number of lines to write")
    parser.add_argument("--format", choices=FORMATS, default="combined", dest="fmt")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True, help="output file (.gz for gzip level 1)")
    parser.add_argument("--expected", help="write the expected answer here as JSON")
    parser.add_argument("--start", default=DEFAULT_START, help="first instant, ISO-8601 UTC")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    try:
        answer = generate(args.out, lines=args.lines, fmt=args.fmt, seed=args.seed,
                          start=args.start, days=args.days, progress=not args.quiet)
    except ValueError as exc:
        parser.error(str(exc))
    if args.expected:
        Path(args.expected).write_text(json.dumps(answer, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
