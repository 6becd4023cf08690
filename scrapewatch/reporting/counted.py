"""What a report counted, and why the rest did not: its funnel (lines -> requests ->
counted requests -> posts) and its overview of the population, with the sentences the
table and report.html say them in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scrapewatch.config import Policy
from scrapewatch.damages import iso
from scrapewatch.schema import Window


@dataclass(frozen=True)
class Overview:
    """The population a report counted from, to check it against: counted requests and
    posts by hour (or by day, past three days), the entities with the most posts
    whether or not they crossed, and the requests by status class."""

    bucket: str  # "hour" or "day"
    series: list[tuple[int, int, int]]  # each bucket's start (epoch s), requests, posts
    top: list[tuple[str, str, int, int]]  # entity_kind, entity, posts, requests
    statuses: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"bucket": self.bucket,
                "series": [{"start": iso(start), "requests": requests, "posts": posts}
                           for start, requests, posts in self.series],
                "top_entities": [{"entity": entity, "entity_kind": kind, "posts": posts,
                                  "requests": requests}
                                 for kind, entity, posts, requests in self.top],
                "statuses": self.statuses}


@dataclass(frozen=True)
class Funnel:
    """What counted, and why the rest did not: lines -> requests -> counted requests
    -> posts. The requests not counted: before policy.effective_from, of a status not
    counted, outside the --since/--until window (or pruned from a store), of the
    allow-listed entities whose peak reached the watch level. `unpriced`: of the
    requests counted by date and status, those no logged count or path rule gave posts
    to (they have posts.default)."""

    lines: int
    rejected: int
    requests: int
    before_effective_from: int
    status_not_counted: int
    outside_window: int
    allow_listed: int
    counted_requests: int
    posts: int
    unpriced: int

    @property
    def not_requests(self) -> int:
        """Lines with nothing to read: blank, or a format's directive (#Fields:)."""
        return self.lines - self.rejected - self.requests

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "rejected": self.rejected,
                "not_requests": self.not_requests, "requests": self.requests,
                "not_counted": {"before_effective_from": self.before_effective_from,
                                "status_not_counted": self.status_not_counted,
                                "outside_window": self.outside_window,
                                "allow_listed": self.allow_listed},
                "counted_requests": self.counted_requests, "posts": self.posts,
                "requests_without_posts_rule": self.unpriced}


def funnel_words(funnel: Funnel, policy: Policy) -> list[str]:
    """The funnel in a sentence; and when nothing counted, one more that says why and
    names the options that change it."""
    excluded = [(count, why, option) for count, why, option in (
        (funnel.before_effective_from,
         f"before {policy.effective_from:%Y-%m-%dT%H:%M:%SZ}, when the clause took effect",
         "--effective-from"),
        (funnel.status_not_counted,
         f"of a status not counted (count_statuses: {policy.count_statuses})",
         "--count-status"),
        (funnel.outside_window, "outside the window or pruned", "--since and --until"),
        (funnel.allow_listed, "of allow-listed entities", "entity.allow")) if count]
    reasons = "; ".join(f"{count:,} {why}" for count, why, _ in excluded)
    words = [f"Counted {funnel.counted_requests:,} of {plural(funnel.requests, 'request')}"
             + (f" (not counted: {reasons})" if reasons else "")
             + f", {plural(funnel.posts, 'post')}; {funnel.unpriced:,} of them matched no posts "
               "rule."]
    if funnel.requests and not funnel.counted_requests:
        options = " and ".join(option for _, _, option in excluded)
        words.append(f"Nothing counted: of {plural(funnel.requests, 'request')}, {reasons}; "
                     f"{options} change{'s' if len(excluded) == 1 else ''} that.")
    elif funnel.counted_requests and not funnel.posts:
        words.append(f"Nothing counted: {plural(funnel.counted_requests, 'counted request')} "
                     "and no posts, as none carried a posts count or matched a posts rule; "
                     "[[posts.rules]] or --posts-default change that.")
    return words


def plural(count: int, word: str) -> str:
    """`1 entity`, `2 entities`, `1,000 requests`."""
    if count == 1:
        return f"1 {word}"
    return f"{count:,} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


def window_words(window: Window) -> str | None:
    """What a report with a --since/--until window counted, in a sentence; None for a
    report of all activity."""
    if window.since is None and window.until is None:
        return None
    bounds = " ".join(([] if window.since is None else [f"from {iso(window.since)}"])
                      + ([] if window.until is None else [f"until {iso(window.until)}"]))
    return (f"Window: only activity {bounds} (--since, --until) is counted; the line, "
            "request and reject counts are the files' whole.")
