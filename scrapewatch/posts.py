"""Posts per request and which requests count, as SQL expressions over parsed requests.

A request's posts come from a log field when the record carries one (`posts`, observed);
else from the first path rule that matches (estimated); else from `posts.default`.
Whether a request counts at all depends on its HTTP status (`policy.count_statuses`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapewatch.sql import Params, run

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class PostsRule:
    """One path rule. Exactly one of `param`, `list_param` or `posts` says how to count.

    Attributes:
        path: Regex searched in the request path (query string excluded); anchor it.
        param: Posts = this query parameter's integer value ...
        param_default: ... or this when the parameter is absent or not a number.
        param_max: The API's page-size cap: larger values count as this.
        list_param: Posts = the number of comma-separated values of this query parameter.
        posts: Posts = this constant.
    """

    path: str
    param: str | None = None
    param_default: int = 0
    param_max: int | None = None
    list_param: str | None = None
    posts: int | None = None

    def __post_init__(self) -> None:
        ways = [w for w in (self.param, self.list_param, self.posts) if w is not None]
        if len(ways) != 1:
            raise ValueError(f"rule {self.path!r} needs exactly one of param, list_param, posts")
        for name, value in (("param_default", self.param_default),
                            ("param_max", self.param_max), ("posts", self.posts)):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"rule {self.path!r}: {name} must be a whole number >= 0")
        try:
            re.compile(self.path)
        except re.error as exc:
            raise ValueError(f"rule path {self.path!r} is not a valid regex: {exc}") from exc


def _page(path: str, param: str, default: int, cap: int) -> PostsRule:
    return PostsRule(path=path, param=param, param_default=default, param_max=cap)


# X API read endpoints that return posts, with their documented default and maximum
# page sizes. Paths are matched without the query string.
BUILTIN_RULES: tuple[PostsRule, ...] = (
    _page(r"^/2/tweets/search/recent$", "max_results", 10, 100),
    _page(r"^/2/tweets/search/all$", "max_results", 10, 500),
    PostsRule(path=r"^/2/tweets$", list_param="ids"),
    PostsRule(path=r"^/2/tweets/[0-9]+$", posts=1),
    _page(r"^/2/tweets/[0-9]+/quote_tweets$", "max_results", 10, 100),
    _page(r"^/2/users/[0-9]+/tweets$", "max_results", 10, 100),
    _page(r"^/2/users/[0-9]+/mentions$", "max_results", 10, 100),
    _page(r"^/2/users/[0-9]+/timelines/reverse_chronological$", "max_results", 100, 100),
    _page(r"^/2/users/[0-9]+/liked_tweets$", "max_results", 100, 100),
    _page(r"^/2/users/[0-9]+/bookmarks$", "max_results", 100, 100),
    _page(r"^/2/lists/[0-9]+/tweets$", "max_results", 100, 100),
    _page(r"^/1\.1/search/tweets\.json$", "count", 15, 100),
    _page(r"^/1\.1/statuses/user_timeline\.json$", "count", 20, 200),
    _page(r"^/1\.1/statuses/home_timeline\.json$", "count", 20, 200),
    _page(r"^/1\.1/statuses/mentions_timeline\.json$", "count", 20, 200),
    _page(r"^/1\.1/lists/statuses\.json$", "count", 20, 200),
    _page(r"^/1\.1/favorites/list\.json$", "count", 20, 200),
    _page(r"^/1\.1/statuses/retweets/[0-9]+\.json$", "count", 100, 100),
    PostsRule(path=r"^/1\.1/statuses/lookup\.json$", list_param="id"),
    PostsRule(path=r"^/1\.1/statuses/show(/[0-9]+)?\.json$", posts=1),
)


def parse_status_set(spec: str) -> tuple[tuple[int, int], ...]:
    """Parse `count_statuses` into inclusive status ranges; `all` is every status.

    Accepts comma-separated classes (`2xx`), codes (`304`) and ranges (`200-206`).

    Raises:
        ValueError: naming the part that is not one of those.
    """
    ranges = []
    for part in (p.strip().lower() for p in spec.split(",")):
        if part == "all":
            ranges.append((-(2**15), 2**15 - 1))  # any SMALLINT status
        elif re.fullmatch(r"[1-5]xx", part):
            ranges.append((int(part[0]) * 100, int(part[0]) * 100 + 99))
        elif m := re.fullmatch(r"(\d{3})(?:-(\d{3}))?", part):
            low, high = int(m[1]), int(m[2] or m[1])
            if low > high:
                raise ValueError(f"status range {part!r} runs backwards")
            ranges.append((low, high))
        else:
            raise ValueError(f"count_statuses part {part!r} is not 'all', a class like '2xx', "
                             "a code like '304' or a range like '200-206'")
    return tuple(ranges)


def counted_sql(spec: str, params: Params) -> str:
    """SQL predicate over `status`: does this request count?

    A request whose log gives no status counts: nothing shows that it failed.
    """
    terms = [f"status BETWEEN {params.bind(low)} AND {params.bind(high)}"
             for low, high in parse_status_set(spec)]
    return f"(status IS NULL OR {' OR '.join(terms)})"


def posts_sql(rules: tuple[PostsRule, ...], default: int, params: Params) -> tuple[str, str]:
    """SQL expressions (rule, posts) for the posts a request accessed.

    `rule`, over `path`: the 1-based index of the first rule whose path matches, NULL
    when none does. One capture-free regex joining every rule first sends the many
    paths no rule matches (pages, assets) straight to NULL. `posts`, over `posts`,
    `query` and a `rule` column: the logged posts, else what the rule counts, else
    `default`. The rules' settings are looked up by index in lists, so the query
    holds one expression per way of counting rather than one per rule: DuckDB plans
    it once per block, and a long CASE takes milliseconds to plan.
    """
    fallback = params.bind(default)
    if not rules:
        return "NULL::INTEGER", f"coalesce(posts, {fallback})"
    any_rule = params.bind("|".join(f"(?:{r.path})" for r in rules))
    which = " ".join(f"WHEN regexp_matches(path, {params.bind(r.path)}) THEN {i}"
                     for i, r in enumerate(rules, 1))
    rule = f"CASE WHEN coalesce(regexp_matches(path, {any_rule}), false) THEN CASE {which} END END"

    def setting(values: list[object], kind: str) -> str:
        return f"({params.bind(values)}::{kind}[])[rule]"

    constant = setting([r.posts for r in rules], "BIGINT")
    list_param = setting([r.list_param for r in rules], "VARCHAR")
    page_param = setting([r.param for r in rules], "VARCHAR")
    # %2C is an encoded comma; empty and blank items (a,,b) are not posts
    items = f"replace(replace({_param_value_sql(list_param)}, '%2C', ','), '%2c', ',')"
    size = (f"greatest(0, coalesce(TRY_CAST({_param_value_sql(page_param)} AS BIGINT), "
            f"{setting([r.param_default for r in rules], 'BIGINT')}))")
    posts = f"""CASE WHEN posts IS NOT NULL THEN posts
        WHEN rule IS NULL THEN {fallback}
        WHEN {constant} IS NOT NULL THEN {constant}
        WHEN {list_param} IS NOT NULL THEN coalesce({_count_items_sql(items)}, 0)
        ELSE least({size}, {setting([r.param_max for r in rules], "BIGINT")}) END"""
    return rule, posts


def _count_items_sql(value: str) -> str:
    """The number of comma-separated items in SQL `value` that are not blank (neither
    empty, as in `a,,b`, nor left empty by trim()); NULL for NULL.

    Splitting makes a list per row, slow on long `ids=` lists, so where no item can be
    blank the commas are counted instead: none at either end, no two together, no space
    and nothing but ASCII (trim() also trims U+00A0 and the other Unicode spaces).
    `value` is computed once, as the lambda's argument.
    """
    blank = ("starts_with(items, ',') OR ends_with(items, ',') "
             "OR strlen(items) <> length(items) OR contains(items, ' ') "
             "OR contains(items, ',,')")
    return f"""list_transform([{value}], lambda items: CASE WHEN {blank}
        THEN len(list_filter(string_split(items, ','), lambda v: trim(v) <> ''))
        ELSE strlen(items) - strlen(replace(items, ',', '')) + 1 END)[1]"""


def _param_value_sql(name: str) -> str:
    """The raw value of the first query parameter named by SQL `name` (NULL when absent
    or empty). String search, not a regex capture: what follows the first '&name='
    in '&' || query, up to the next '&'.

    string_split()[n], not split_part: DuckDB expands split_part(s, ...) into an
    expression naming `s` twice, which inside posts' CASE is computed twice, so two
    nested calls cut the query four times (five times slower on long `ids=` lists)."""
    return (f"nullif(string_split(string_split('&' || query, '&' || {name} || '=')[2], '&')[1],"
            " '')")


def check_rules(con: duckdb.DuckDBPyConnection, rules: tuple[PostsRule, ...]) -> None:
    """Raise ConfigError for a rule regex the SQL engine (RE2) cannot compile."""
    import duckdb

    from scrapewatch.errors import ConfigError

    for rule in rules:
        try:
            run(con, "SELECT regexp_matches('', $p)", {"p": rule.path})
        except duckdb.Error as exc:
            raise ConfigError(f"posts rule path {rule.path!r} is not a regex the engine "
                              f"accepts (RE2 syntax: no look-around or backreferences): "
                              f"{str(exc).splitlines()[0]}") from exc
