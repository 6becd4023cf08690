"""Plain DuckDB and plain Polars baselines for ``scrapewatch scan``'s default job.

Each baseline answers the same question as ``scrapewatch scan LOG`` under the default
policy, with the shortest fast pipeline its engine allows, so that scan's speed can be
judged against "what one query would do":

* parse every line (combined: ``read_csv``/``scan_csv`` with ``' '`` as the delimiter
  and ``"`` as the quote, which gives 10 columns; JSON lines: ``read_ndjson``/
  ``scan_ndjson`` with an explicit schema);
* keep status 2xx and times at or after 2024-11-15T00:00:00Z (combined times such as
  ``[01/Mar/2025:10:00:00 +0530]`` become UTC epoch seconds);
* entity: the client address (combined, first field) or the first non-empty of
  ``api_key``, ``user``, ``client_ip`` (JSON lines);
* posts: JSON ``result_count`` when present, else the first of RULES that matches the
  path (query string excluded), else 0;
* drop entities whose total posts cannot pass the threshold, then the rolling sum of
  posts in ``[s, s + 24 h)`` at every remaining request time ``s``, kept where it
  exceeds 1,000,000;
* greedy charged periods (plain Python, over those few rows) and damages of
  ``floor(posts / 1e6) * $15,000`` per period.

The answer goes to stdout as JSON::

    {"violators": {ENTITY: {"periods": [{"start", "end", "posts"}], "damages_usd": "..."}},
     "total_damages_usd": "..."}

Usage: ``python -m benchmarks.baselines duckdb|polars LOG [--format auto|combined|jsonl]``.
Both assume clean input, as the generator writes it: a combined line that does not
give 10 fields is skipped by DuckDB (``ignore_errors``) and fails Polars.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

THRESHOLD_POSTS = 1_000_000
RATE_USD = 15_000
PER_POSTS = 1_000_000
DAY = 86_400
EFFECTIVE_FROM = 1_731_628_800  # 2024-11-15T00:00:00Z
COMBINED_COLUMNS = ("ip", "ident", "user", "t1", "t2", "request", "status", "bytes",
                    "referer", "agent")
JSON_COLUMNS = {"ts": "VARCHAR", "client_ip": "VARCHAR", "api_key": "VARCHAR",
                "user": "VARCHAR", "path": "VARCHAR", "query": "VARCHAR",
                "status": "INTEGER", "result_count": "BIGINT"}
CLF_TIME = "[%d/%b/%Y:%H:%M:%S%z]"  # t1 || t2, e.g. "[01/Mar/2025:10:00:00+0530]"


@dataclass(frozen=True)
class Rule:
    """A path rule of scrapewatch's built-in set (those the generator exercises).

    Attributes:
        path: the path (``numeric`` False) or an anchored-free regex on it.
        numeric: ``path`` is a regex with ``[0-9]+`` ids rather than a literal.
        param: query parameter holding a page size, or the comma list (``ids``).
        default: posts when the page-size parameter is absent or not a number.
        cap: the page-size maximum (a larger value counts as this).
        posts: constant posts (when there is no parameter).
    """

    path: str
    numeric: bool = False
    param: str | None = None
    default: int = 0
    cap: int | None = None
    posts: int | None = None

    @property
    def is_list(self) -> bool:
        """Posts are the number of non-empty items of a comma-separated parameter."""
        return self.param is not None and self.cap is None

    @property
    def prefix(self) -> str:
        """The literal start of the path (cheap to test before a regex)."""
        return self.path.split("[", 1)[0]


RULES: tuple[Rule, ...] = (
    Rule("/2/tweets/search/recent", param="max_results", default=10, cap=100),
    Rule("/2/tweets/search/all", param="max_results", default=10, cap=500),
    Rule("/2/tweets", param="ids"),
    Rule("/2/tweets/[0-9]+", numeric=True, posts=1),
    Rule("/2/users/[0-9]+/tweets", numeric=True, param="max_results", default=10, cap=100),
    Rule("/1.1/statuses/user_timeline.json", param="count", default=20, cap=200),
)


# ---------------------------------------------------------------------------
# Shared: format sniffing, greedy periods, the answer
# ---------------------------------------------------------------------------

def sniff_format(path: Path) -> str:
    """``jsonl`` when the first non-blank byte is ``{``, else ``combined``."""
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
    return "jsonl" if head.startswith(b"{") else "combined"


def iso(ts: int) -> str:
    """Epoch seconds as ``2025-03-01T00:00:00Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def greedy_answer(rows: Iterable[tuple[str, int, int]]) -> dict[str, Any]:
    """Greedy charged periods and damages from the rows over the threshold.

    Args:
        rows: ``(entity, s, posts in [s, s + 24 h))`` for every counted request time
            ``s`` whose period holds more than the threshold, sorted by entity then s.
            Times whose period does not exceed the threshold can never be charged, so
            the greedy walk only needs these.

    Returns:
        The answer printed by the baselines (see the module docstring).
    """
    violators: dict[str, Any] = {}
    total = 0
    next_free: dict[str, int] = {}
    for entity, start, posts in rows:
        if start < next_free.get(entity, start):
            continue  # inside the entity's last charged period
        next_free[entity] = start + DAY
        owed = posts // PER_POSTS * RATE_USD
        total += owed
        found = violators.setdefault(entity, {"periods": [], "owed": 0})
        found["periods"].append({"start": iso(start), "end": iso(start + DAY),
                                 "posts": int(posts)})
        found["owed"] += owed
    for found in violators.values():
        found["damages_usd"] = f"{Decimal(found.pop('owed')):.2f}"
    return {"violators": violators, "total_damages_usd": f"{Decimal(total):.2f}"}


# ---------------------------------------------------------------------------
# DuckDB
# ---------------------------------------------------------------------------

def _sql_text(value: str) -> str:
    """A SQL string literal (for the constants of RULES)."""
    return "'" + value.replace("'", "''") + "'"


def _duckdb_param(name: str, combined: bool) -> str:
    """SQL for the raw value of query parameter ``name`` (NULL when absent or empty).

    ``split_part`` rather than ``regexp_extract``: RE2 is slow on long ``ids`` lists.
    Combined rows carry the whole target (``path?query``), JSON rows the query alone.
    """
    if combined:
        after = (f"coalesce(nullif(split_part(target, {_sql_text('?' + name + '=')}, 2), ''), "
                 f"split_part(target, {_sql_text('&' + name + '=')}, 2))")
    else:
        after = f"split_part('&' || query, {_sql_text('&' + name + '=')}, 2)"
    return f"nullif(split_part({after}, '&', 1), '')"


def _duckdb_path_is(rule: Rule, combined: bool) -> str:
    """SQL condition: the request's path matches ``rule``."""
    column = "target" if combined else "path"
    tail = "(\\?.*)?" if combined else ""
    if rule.numeric:
        return (f"(starts_with({column}, {_sql_text(rule.prefix)}) AND "
                f"regexp_full_match({column}, {_sql_text(rule.path + tail)}))")
    if combined:
        return (f"({column} = {_sql_text(rule.path)} OR "
                f"starts_with({column}, {_sql_text(rule.path + '?')}))")
    return f"{column} = {_sql_text(rule.path)}"


def _duckdb_rule_posts(rule: Rule, combined: bool) -> str:
    """SQL for the posts of a request that ``rule`` matches."""
    if rule.posts is not None:
        return str(rule.posts)
    assert rule.param is not None
    value = _duckdb_param(rule.param, combined)
    if rule.is_list:
        return (f"coalesce(len(list_filter(string_split({value}, ','), "
                f"lambda v: v <> '')), 0)")
    size = f"coalesce(TRY_CAST({value} AS BIGINT), {rule.default})"
    return f"least(greatest({size}, 0), {rule.cap})"


def duckdb_posts_sql(combined: bool) -> str:
    """SQL CASE giving the posts of a request by RULES (lazy: one branch per row)."""
    column = "target" if combined else "path"
    branches = " ".join(f"WHEN {_duckdb_path_is(r, combined)} "
                        f"THEN {_duckdb_rule_posts(r, combined)}" for r in RULES)
    api = " OR ".join(f"starts_with({column}, {_sql_text(p)})"
                      for p in sorted({"/" + r.path.split("/")[1] + "/" for r in RULES}))
    return f"CASE WHEN NOT ({api}) THEN 0 {branches} ELSE 0 END"


def duckdb_requests_sql(fmt: str) -> str:
    """SQL (one ``$log`` parameter) for the counted requests: entity, ts, posts."""
    if fmt == "combined":
        columns = "{" + ", ".join(f"'{c}': '{'INTEGER' if c == 'status' else 'VARCHAR'}'"
                                  for c in COMBINED_COLUMNS) + "}"
        return f"""
        SELECT ip AS entity, ts, ({duckdb_posts_sql(True)})::BIGINT AS posts
        FROM (SELECT ip, epoch(strptime(t1 || t2, '{CLF_TIME}'))::BIGINT AS ts,
                     split_part(request, ' ', 2) AS target
              FROM read_csv($log, delim = ' ', quote = '"', escape = '"', header = false,
                            auto_detect = false, ignore_errors = true, columns = {columns})
              WHERE status BETWEEN 200 AND 299)
        WHERE ts >= {EFFECTIVE_FROM}"""
    columns = "{" + ", ".join(f"'{k}': '{'TIMESTAMPTZ' if k == 'ts' else v}'"
                              for k, v in JSON_COLUMNS.items()) + "}"
    return f"""
        SELECT coalesce(nullif(api_key, ''), nullif("user", ''), client_ip) AS entity,
               floor(epoch(ts))::BIGINT AS ts,
               coalesce(result_count, {duckdb_posts_sql(False)})::BIGINT AS posts
        FROM read_ndjson($log, columns = {columns}, format = 'newline_delimited')
        WHERE (status IS NULL OR status BETWEEN 200 AND 299)
          AND ts >= to_timestamp({EFFECTIVE_FROM})"""


def duckdb_sql(fmt: str) -> str:
    """The whole DuckDB query: rows ``(entity, s, posts in [s, s+24h))`` over the threshold.

    ``counted`` is materialised once; entities whose total posts cannot exceed the
    threshold are dropped before the window; the window runs on per-second sums.
    """
    return f"""
    WITH counted AS MATERIALIZED ({duckdb_requests_sql(fmt)}),
    candidates AS (
        SELECT entity FROM counted GROUP BY entity HAVING sum(posts) > {THRESHOLD_POSTS}
    ), activity AS (
        SELECT entity, ts, sum(posts) AS posts
        FROM counted SEMI JOIN candidates USING (entity)
        GROUP BY entity, ts
    ), windows AS (
        SELECT entity, ts, sum(posts) OVER (PARTITION BY entity ORDER BY ts
                                            RANGE BETWEEN CURRENT ROW AND {DAY - 1} FOLLOWING)
                           AS ahead
        FROM activity
    )
    SELECT entity, ts, ahead::BIGINT FROM windows
    WHERE ahead > {THRESHOLD_POSTS}
    ORDER BY entity, ts"""


def run_duckdb(log: Path, fmt: str) -> dict[str, Any]:
    """The DuckDB baseline's answer for one log file."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    rows = con.execute(duckdb_sql(fmt), {"log": str(log)}).fetchall()
    return greedy_answer(rows)


# ---------------------------------------------------------------------------
# Polars
# ---------------------------------------------------------------------------

def polars_rule(path: pl.Expr) -> pl.Expr:
    """Index in RULES of the first rule matching the path (null when none does).

    A hash lookup of the literal paths, then the regexes of the numeric ones.
    """
    import polars as pl

    literal = {r.path: i for i, r in enumerate(RULES) if not r.numeric}
    rule = path.replace_strict(literal, default=None, return_dtype=pl.Int8)
    for i, r in enumerate(RULES):
        if r.numeric:
            hit = pl.when(path.str.contains(f"^{r.path}$")).then(pl.lit(i, pl.Int8))
            rule = rule.fill_null(hit)
    return rule


def polars_posts(rule: pl.Expr, query: pl.Expr) -> pl.Expr:
    """Posts of a request from its rule index (see polars_rule) and query string.

    Parameters are extracted only on rows whose rule needs them (other rows are null,
    which the string kernels skip), so no regex runs over every row.
    """
    import polars as pl

    def raw(name: str, rules: list[int]) -> pl.Expr:
        masked = pl.when(rule.is_in(rules)).then(query)
        return masked.str.extract(f"(?:^|&){name}=([^&]*)", 1)

    pages = [i for i, r in enumerate(RULES) if r.cap is not None]
    by_param: dict[str, list[int]] = {}
    for i in pages:
        by_param.setdefault(str(RULES[i].param), []).append(i)
    size = pl.coalesce([raw(n, ids) for n, ids in by_param.items()]).cast(pl.Int64, strict=False)
    default = rule.replace_strict({i: RULES[i].default for i in pages}, default=0,
                                  return_dtype=pl.Int64)
    cap = rule.replace_strict({i: RULES[i].cap for i in pages}, default=0, return_dtype=pl.Int64)
    posts = size.fill_null(default).clip(0, cap)
    for i, r in enumerate(RULES):
        if r.is_list:
            items = raw(str(r.param), [i]).str.count_matches("[^,]+").fill_null(0)
            posts = pl.when(rule == i).then(items).otherwise(posts)
        elif r.posts is not None:
            posts = pl.when(rule == i).then(pl.lit(r.posts, pl.Int64)).otherwise(posts)
    return posts.cast(pl.Int64)


def polars_requests(log: Path, fmt: str) -> pl.LazyFrame:
    """The counted requests as a lazy frame: entity, ts, posts."""
    import polars as pl

    ok = pl.col("status").is_between(200, 299)
    if fmt == "combined":
        schema = {c: pl.Int32 if c == "status" else pl.String for c in COMBINED_COLUMNS}
        lines = pl.scan_csv(log, separator=" ", quote_char='"', has_header=False, schema=schema)
        target = pl.col("request").str.splitn(" ", 3).struct.field("field_1")
        parts = target.str.splitn("?", 2).struct.rename_fields(["path", "query"])
        ts = (pl.col("t1") + pl.col("t2")).str.strptime(pl.Datetime("us", "UTC"), CLF_TIME)
        return (lines.filter(ok)
                .select(entity=pl.col("ip"), ts=ts.dt.epoch("s"), parts=parts)
                .filter(pl.col("ts") >= EFFECTIVE_FROM)
                .unnest("parts")
                .with_columns(rule=polars_rule(pl.col("path")))
                .select("entity", "ts", posts=polars_posts(pl.col("rule"), pl.col("query"))))
    types = {"INTEGER": pl.Int32, "BIGINT": pl.Int64, "VARCHAR": pl.String}
    lines = pl.scan_ndjson(log, schema={k: types[v] for k, v in JSON_COLUMNS.items()})
    entity = pl.coalesce([pl.col(c).replace("", None) for c in ("api_key", "user")]
                         + [pl.col("client_ip")])
    ts = pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC").dt.epoch("s")
    posts = pl.coalesce(pl.col("result_count"), polars_posts(pl.col("rule"), pl.col("query")))
    return (lines.filter(pl.col("status").is_null() | ok)
            .with_columns(rule=pl.when(pl.col("result_count").is_null())
                          .then(polars_rule(pl.col("path"))))
            .select(entity=entity, ts=ts, posts=posts)
            .filter(pl.col("ts") >= EFFECTIVE_FROM))


def run_polars(log: Path, fmt: str) -> dict[str, Any]:
    """The Polars baseline's answer for one log file.

    The counted requests are collected once with the streaming engine (reading the
    file twice for the two uses costs more than keeping three columns in memory);
    entities are dropped by a per-entity total (``over``: faster here than a
    ``group_by`` and a semi join); the window is ``rolling`` with ``offset=-1``,
    ``period=86400`` and closed right, which is exactly ``[s, s + 24 h)`` on integer
    seconds (Polars' default, closed right with offset ``-period``, looks backwards).
    """
    import polars as pl

    counted = polars_requests(log, fmt).collect(engine="streaming").lazy()
    windows = (counted.filter(pl.col("posts").sum().over("entity") > THRESHOLD_POSTS)
               .group_by("entity", "ts").agg(pl.col("posts").sum())
               .sort("entity", "ts")
               .rolling(index_column="ts", period=f"{DAY}i", offset="-1i", closed="right",
                        group_by="entity")
               .agg(ahead=pl.col("posts").sum())
               .filter(pl.col("ahead") > THRESHOLD_POSTS)
               .sort("entity", "ts")
               .collect())
    return greedy_answer(windows.iter_rows())


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

ENGINES = {"duckdb": run_duckdb, "polars": run_polars}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point: prints the answer as JSON on stdout."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baselines",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("engine", choices=sorted(ENGINES))
    parser.add_argument("log", type=Path)
    parser.add_argument("--format", choices=("auto", "combined", "jsonl"), default="auto",
                        dest="fmt")
    args = parser.parse_args(argv)
    fmt = sniff_format(args.log) if args.fmt == "auto" else args.fmt
    answer = ENGINES[args.engine](args.log, fmt)
    json.dump(answer, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
