"""Clients and background traffic of the log generator, with the columnar ``Lines`` batch.

Background clients (``Population``), log lines as parallel arrays (``Lines``), posts
counted per line, the diurnal time profile, background chunks, and the check that no
background client comes near the threshold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from benchmarks.catalogue import Catalogue

DAY = 86_400
HOUR = 3_600


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
