"""Planted entities of the log generator: violators, their bursts, and the expected answer.

Plans who is planted and with how many posts, picks request profiles that fit the line
budget, places bursts in time, builds their lines, recounts them, and states what
scrapewatch must report under the default policy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np

from benchmarks.catalogue import Catalogue, build_request, rule_posts
from benchmarks.traffic import DAY, HOUR, S200, S429, Lines, Population, World, counted_posts

THRESHOLD_POSTS = 1_000_000
RATE_USD = Decimal(15000)
PER_POSTS = 1_000_000
WATCH_PEAK = 850_000
MAX_BURST_S = 20 * HOUR
BURST_GAP_S = 48 * HOUR
RATE_LIMITED_EVERY = 33  # about 3 % of planted requests are answered 429
PLANTED_VARIANTS = 32  # distinct URLs per planted request shape


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
