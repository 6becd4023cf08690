"""Request catalogue of the log generator: scrapewatch's path rules and request templates.

``rule_posts`` mirrors scrapewatch's built-in path rules; the ``Catalogue`` holds every
distinct request line a generated log points at, starting with the background mix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import numpy as np

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

