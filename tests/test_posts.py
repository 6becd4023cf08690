"""Posts per request from log fields, path rules and the default; counted statuses."""

from __future__ import annotations

import unicodedata

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapewatch.engine.duckdb import connect
from scrapewatch.errors import ConfigError
from scrapewatch.posts import (
    BUILTIN_RULES,
    PostsRule,
    _param_value_sql,
    check_rules,
    counted_sql,
    parse_status_set,
    posts_sql,
)
from scrapewatch.sql import Params, run


def posts_of(requests: list[tuple[str | None, str | None, int | None]],
             rules: tuple[PostsRule, ...] = BUILTIN_RULES, default: int = 0) -> list[int]:
    con = connect()
    con.register("r", pa.table({"path": pa.array([r[0] for r in requests], pa.string()),
                                "query": pa.array([r[1] for r in requests], pa.string()),
                                "posts": pa.array([r[2] for r in requests], pa.int64())}))
    params = Params()
    rule, posts = posts_sql(rules, default, params)
    rows = run(con, f"SELECT {posts} FROM (SELECT *, {rule} AS rule FROM r)", params.values)
    return [row[0] for row in rows]


def test_builtin_rules() -> None:
    assert posts_of([
        ("/2/tweets/search/recent", "query=x&max_results=100", None),
        ("/2/tweets/search/recent", "query=x", None),            # documented default 10
        ("/2/tweets/search/recent", "max_results=1000", None),   # capped at the API's 100
        ("/2/tweets/search/all", "max_results=500", None),
        ("/2/tweets/search/all", "max_results=abc", None),       # not a number: default
        ("/2/tweets", "ids=1,2,3&expansions=x", None),
        ("/2/tweets", "ids=1%2C2%2c3%2C4", None),                # encoded commas
        ("/2/tweets", "ids=1,,2,", None),                         # empty items are not posts
        ("/2/tweets", None, None),
        ("/2/tweets/1460323737035677698", None, None),
        ("/2/users/2244994945/tweets", "max_results=5", None),
        ("/1.1/statuses/user_timeline.json", "count=200", None),
        ("/1.1/statuses/user_timeline.json", None, None),        # v1.1 default 20
        ("/1.1/statuses/lookup.json", "id=20,432656548536401920", None),
        ("/1.1/search/tweets.json", "q=a&count=-4", None),       # negative counts as 0
        ("/static/app.js", None, None),
        (None, None, None),                                      # no request line at all
    ]) == [100, 10, 100, 500, 10, 3, 4, 2, 0, 1, 5, 200, 20, 2, 0, 0, 0]


# what DuckDB's trim() trims: the Unicode space separators (Zs), not tabs or newlines
SPACES = " \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
         "\u202f\u205f\u3000"
LIST_VALUES = st.lists(st.sampled_from([",", ",", "1", "23", "1719231901806862961", " ", "%2C",
                                        "%2c", "%2", "C", "\t", "\n", "\u00a0", "\u3000", "\u2009",
                                        "\u200b", "é", "="]), max_size=12).map("".join)


def count_items(value: str) -> int:
    """The reference: items of the first `ids=` value, encoded commas decoded, that
    are not blank once trimmed as DuckDB trims."""
    return sum(1 for v in value.replace("%2C", ",").replace("%2c", ",").split(",")
               if v.strip(SPACES) != "")


def test_trim_trims_the_unicode_space_separators() -> None:
    assert "".join(c for c in map(chr, range(1, 0x3001)) if unicodedata.category(c) == "Zs"
                   ) == SPACES
    con = connect()
    for char in ("\t", "\n", "\u200b", "x", *SPACES):
        [(trimmed,)] = run(con, "SELECT trim($c) = ''", {"c": char})
        assert trimmed is (char in SPACES), repr(char)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(LIST_VALUES, st.sampled_from(["", "a=1&", "idsx=2&"]),
                          st.sampled_from(["", "&ids=5,6", "&expansions=x,y"])),
                min_size=1, max_size=40))
def test_list_items_counted_by_commas_equal_each_item_trimmed(
        queries: list[tuple[str, str, str]]) -> None:
    # rows that take the comma count and rows that split, side by side in one query
    got = posts_of([("/2/tweets", f"{before}ids={value}{after}", None)
                    for value, before, after in queries])
    assert got == [count_items(value) for value, _, _ in queries]


def param_value(query: str | None, name: str | None) -> str | None:
    """The reference: the first `name=` value of `query`, None when absent or empty."""
    if query is None or name is None:
        return None
    text = "&" + query
    found = text.find(f"&{name}=")
    if found < 0:
        return None
    return text[found + len(name) + 2:].split("&")[0] or None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(
    st.none() | st.lists(st.sampled_from(["n", "a", "=", "&", "1", ",", "n.b", "%2C", "é"]),
                         max_size=10).map("".join),
    st.none() | st.sampled_from(["n", "a", "n.b", "=", "&"])), min_size=1, max_size=40))
def test_a_parameter_value_is_what_follows_the_first_name_up_to_the_next_ampersand(
        pairs: list[tuple[str | None, str | None]]) -> None:
    con = connect()
    con.register("r", pa.table({"query": pa.array([q for q, _ in pairs], pa.string()),
                                "name": pa.array([n for _, n in pairs], pa.string())}))
    got = [row[0] for row in run(con, f"SELECT {_param_value_sql('name')} FROM r")]
    assert got == [param_value(query, name) for query, name in pairs]


def test_observed_posts_win_over_rules() -> None:
    assert posts_of([("/2/tweets/search/recent", "max_results=100", 37)]) == [37]


def test_first_matching_rule_wins_and_default_applies() -> None:
    rules = (PostsRule(path="^/a", posts=7), PostsRule(path="^/a/b", posts=9),
             PostsRule(path="^/page$", param="n", param_default=3))
    assert posts_of([("/a/b", None, None), ("/page", "n=4", None), ("/page", "m=4", None),
                     ("/other", None, None)], rules, default=2) == [7, 4, 3, 2]


def test_query_parameter_names_are_matched_literally() -> None:
    rules = (PostsRule(path="^/p$", param="a.b"),)
    assert posts_of([("/p", "axb=5&a.b=6", None)], rules) == [6]


def test_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        PostsRule(path="^/x", posts=1, param="n")
    with pytest.raises(ValueError, match="not a valid regex"):
        PostsRule(path="(", posts=1)
    with pytest.raises(ConfigError, match="RE2"):
        check_rules(connect(), (PostsRule(path="^/a(?=b)", posts=1),))


def test_status_sets() -> None:
    assert parse_status_set("2xx") == ((200, 299),)
    assert parse_status_set("all") == ((-32768, 32767),)
    assert parse_status_set("2xx, 304,400-404") == ((200, 299), (304, 304), (400, 404))
    with pytest.raises(ValueError, match="'2x'"):
        parse_status_set("2x")


def test_counted_statuses() -> None:
    con = connect()
    con.register("r", pa.table({"status": pa.array([200, 299, 300, 304, 404, None],
                                                   pa.int16())}))
    params = Params()
    rows = run(con, f"SELECT {counted_sql('2xx,304', params)} FROM r", params.values)
    assert [r[0] for r in rows] == [True, True, False, True, False, True]
