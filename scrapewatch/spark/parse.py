"""Log files as parsed requests on Spark, with Spark's own readers and SQL functions.

Each format gives the columns and reject reasons its DuckDB parser gives
(reading/formats): the same regexes, field aliases and time rules, spelled in Spark SQL.
Line numbers come from the file splits Spark reads: each split's lines are counted
once, and a line's number is the lines of the file's earlier splits plus its place in
its own split.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from scrapewatch.config import Config, InputConfig
from scrapewatch.reading.formats import clf
from scrapewatch.reading.formats.base import MAX_POSTS, SPLIT_OFFSET_REGEX, VALID_OFFSET_REGEX
from scrapewatch.reading.formats.jsonl import ALIASES
from scrapewatch.reading.formats.tables import columns_for
from scrapewatch.reading.read import EARLIEST, LATEST
from scrapewatch.schema import BLANK_LINE, REJECT_TEXT_CHARS
from scrapewatch.spark import fields
from scrapewatch.spark.fields import Literals
from scrapewatch.sql import Params

_LINE_END = " \r\n"  # what a blank line may hold
_CORRUPT = "_sw_not_an_object"  # from_json's column for a line that is no JSON object

FORMATS = ("combined", "common", "jsonl", "parquet")

# The columns of a parsed request, as schema.PARSED_COLUMNS less those no report uses.
PARSED = ("file_id", "line_no", "reject_reason", "ts", "client_ip", "user", "api_key",
          "path", "query", "status", "posts", "xff", "line")


@dataclass(frozen=True)
class Input:
    """One file to read: where Spark finds it (`uri`, a local path or a URI), and how
    a report names it."""

    uri: str
    path: str
    file_id: int

    @property
    def key(self) -> tuple[str, str, str]:
        return file_key(self.uri)


def is_uri(name: str) -> bool:
    """Whether `name` is a URI (s3a://b/k, dbfs:/x, file:///x) rather than a local path."""
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]+:/", name) is not None


def file_key(name: str) -> tuple[str, str, str]:
    """A file's identity however Spark or the user spells it: (scheme, host, path)."""
    if not is_uri(name):
        return "file", "", str(Path(name).resolve())
    parts = urlparse(name)
    return parts.scheme, parts.netloc, unquote(parts.path)


def hadoop_path(name: str) -> str:
    """A file for Spark's readers, its glob characters escaped: they would match."""
    return re.sub(r"([\\\[\]{}*?])", r"\\\1", name)


def numbered(spark: SparkSession, raw: DataFrame, files: list[Input]) -> DataFrame:
    """`raw` rows (a file reader's, in file order) with file_id and line_no.

    One job counts the rows of every split; the numbers then follow from the counts
    (a broadcast join), so no row is shuffled or gathered.
    """
    tagged = raw.select("*", F.input_file_name().alias("_file"),
                        F.expr("input_file_block_start()").alias("_block"),
                        F.spark_partition_id().alias("_pid"),
                        F.monotonically_increasing_id().alias("_mid"))
    splits = tagged.groupBy("_file", "_block", "_pid").agg(
        F.min("_mid").alias("_first"), F.count(F.lit(1)).alias("_n")).collect()
    by_key = {f.key: f.file_id for f in files}
    offsets, before = [], dict[int, int]()
    for row in sorted(splits, key=lambda r: (r["_file"], r["_block"])):
        file_id = by_key.get(file_key(row["_file"]))
        if file_id is None:
            raise LookupError(f"Spark read a file scrapewatch did not list: {row['_file']}")
        offsets.append((row["_file"], row["_block"], row["_pid"], row["_first"],
                        before.get(file_id, 0), file_id))
        before[file_id] = before.get(file_id, 0) + row["_n"]
    splits_df = spark.createDataFrame(
        offsets, "_file string, _block long, _pid int, _first long, _before long, file_id int")
    return (tagged.join(F.broadcast(splits_df), ["_file", "_block", "_pid"])
            .withColumn("line_no", F.col("_before") + F.col("_mid") - F.col("_first") + 1)
            .drop("_file", "_block", "_pid", "_mid", "_first", "_before"))


def read_lines(spark: SparkSession, files: list[Input]) -> DataFrame:
    """Text files as (file_id, line_no, line): lines end at '\\n' only, as the DuckDB
    reader cuts them, and the first line's byte order mark is dropped."""
    raw = spark.read.option("lineSep", "\n").text([hadoop_path(f.uri) for f in files])
    lines = numbered(spark, raw, files)
    return lines.select("file_id", "line_no", F.when(
        F.col("line_no") == 1, F.regexp_replace("value", "^\ufeff", "")
    ).otherwise(F.col("value")).alias("line"))


def parsed(spark: SparkSession, fmt: str, files: list[Input], config: InputConfig
           ) -> DataFrame:
    """The parsed requests (PARSED columns) of files in format `fmt`."""
    params = Literals()
    view = f"sw_source_{fmt}"  # one per format: a Spark Connect plan reads views when run
    if fmt == "parquet":
        table = spark.read.parquet(*[hadoop_path(f.uri) for f in files])
        found = columns_for(table.columns, config)
        source = numbered(spark, table, files).select(
            "file_id", "line_no", F.lit(None).cast("string").alias("line"),
            *[table[column].cast("string").alias(f"v_{field}")
              for field, column in found.items()])
        f = {field: f"nullif(nullif(v_{field}, ''), '-')" if field in found
             else "CAST(NULL AS STRING)" for field in ALIASES}
        query = _requests_sql(view, f, "NULL", params)
    elif fmt == "jsonl":
        source, f, unparsed = _json_source(read_lines(spark, files), config, params)
        query = _requests_sql(view, f, unparsed, params)
    else:
        source = read_lines(spark, files)
        query = _clf_sql(view, params)
    source.createOrReplaceTempView(view)
    return spark.sql(query)


def _json_source(lines: DataFrame, config: InputConfig, params: Params
                 ) -> tuple[DataFrame, dict[str, str], str]:
    """JSON lines with each field (`v_ts`, ...) as a column: the first of its aliases
    present, as jsonl.parse_sql picks it. One JSON parse of the line gives the
    top-level values; a nested name is read from its top-level value."""
    keys = {field: (config.fields[field],) if field in config.fields else names
            for field, names in ALIASES.items()}
    tops = list(dict.fromkeys(key.split(".")[0].split("[")[0] for names in keys.values()
                              for key in names))
    schema = StructType([StructField(name, StringType()) for name in [*tops, _CORRUPT]])
    # one parse, kept in a column of its own: read 80 times, it is not re-parsed
    objects = lines.select("file_id", "line_no", "line", F.from_json(
        "line", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT}
    ).alias("j"))
    columns: list[Column] = []
    for field, names in keys.items():
        slots = []
        for key in names:
            top, _, rest = key.partition(".")
            top_name, index = (top[:-3], top[-3:]) if re.fullmatch(r".+\[[0-9]\]", top) else (
                top, "")
            value = F.col("j").getField(top_name)
            if rest or index:
                value = F.get_json_object(value, "$" + index + ("." + rest if rest else ""))
            if field not in ("user_agent", "referer"):  # these may start with '{'
                value = F.when(~value.startswith("{"), value)
            slots.append(F.when(~value.isin("", "-"), value))
        columns.append(F.coalesce(*slots).alias(f"v_{field}"))
    source = objects.select("file_id", "line_no", "line",
                            (F.col("j").isNull() | F.col("j").getField(_CORRUPT).isNotNull())
                            .alias("not_object"), *columns)
    blank = params.bind(_LINE_END)
    unparsed = f"""CASE WHEN NOT not_object THEN NULL
                WHEN trim(BOTH {blank} FROM line) = '' THEN {params.bind(BLANK_LINE)}
                WHEN get_json_object(line, '$') IS NULL THEN 'invalid JSON'
                ELSE 'not a JSON object' END"""
    return source, {field: f"v_{field}" for field in keys}, unparsed


def _epoch_sql(text: str) -> str:
    number = f"try_cast({text} AS DOUBLE)"
    seconds = (f"CASE WHEN abs({number}) < 1e11 THEN {number} WHEN abs({number}) < 1e14 "
               f"THEN {number} / 1e3 WHEN abs({number}) < 1e17 THEN {number} / 1e6 "
               f"WHEN abs({number}) < 1e20 THEN {number} / 1e9 END")
    return f"timestamp_micros(CAST(round(({seconds}) * 1e6) AS BIGINT))"


def _offset_sql(source: str, params: Params, plain: str = "false") -> str:
    """`source` rows with the UTC offset of their `ts_text` split off as base.offset_sql
    finds it: offset_text ('' for none), bad_offset, offset_seconds (0 but for a valid
    offset) and the text around it (offset_before, offset_after; see _local_sql). A
    `plain` CLF line's offset is its last five characters."""
    split = params.bind(SPLIT_OFFSET_REGEX)
    digits = "replace(offset_text, ':', '')"
    return f"""
        SELECT *, substr(ts_text, length(offset_before) + length(offset_text) + 1)
                      AS offset_after,
                  CASE WHEN bad_offset OR offset_text = '' THEN 0
                       ELSE (CASE WHEN startswith(offset_text, '-') THEN -60 ELSE 60 END)
                            * (CAST(substr({digits}, 2, 2) AS INT) * 60
                               + coalesce(CAST(nullif(substr({digits}, 4, 2), '') AS INT), 0))
                  END AS offset_seconds
        FROM (SELECT *, offset_text <> ''
                        AND NOT offset_text RLIKE {params.bind(f"^{VALID_OFFSET_REGEX}$")}
                            AS bad_offset
              FROM (SELECT *,
                           CASE WHEN {plain} THEN substr(ts_text, 1, 21)
                                ELSE regexp_extract(ts_text, {split}, 1) END AS offset_before,
                           CASE WHEN {plain} THEN substr(ts_text, 22, 5)
                                ELSE regexp_extract(ts_text, {split}, 2) END AS offset_text
                    FROM {source}))"""


def _local_sql(parse: Callable[[str], str], zero: str, *, space: bool) -> str:
    """The instant `parse` reads from ts_text, its valid offset (see _offset_sql) put
    back after the parse: Java's parsers stop at ±18:00 (RFC 3339 at ±23:59) and take
    fewer forms than DuckDB's, so they read the time with the offset `zero` instead.
    Without `space`, an offset after a space is no time, as for DuckDB's ISO cast."""
    local = (f"CASE WHEN offset_text = '' OR bad_offset THEN ts_text "
             f"{'' if space else 'WHEN endswith(offset_before, chr(32)) THEN NULL '}"
             f"ELSE concat(offset_before, '{zero}', offset_after) END")
    return (f"timestamp_micros(unix_micros({parse(local)}) "
            f"- CAST(offset_seconds AS BIGINT) * 1000000)")


def _requests_sql(source: str, f: dict[str, str], unparsed: str, params: Params) -> str:
    """base.requests_sql in Spark SQL, over the view `source`."""
    number = params.bind(r"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
    request_line = params.bind(r"^[A-Za-z]+ (\S.*?)(?: HTTP/[0-9.]+)?$")
    origin = params.bind(clf.ORIGIN_REGEX)
    clf_time = params.bind("dd/MMM/yyyy:HH:mm:ss Z")
    return f"""
    WITH e AS (
        SELECT *, {f['ts']} AS ts_text, {f['path']} AS target_text,
               {f['method']} AS method_text
        FROM {source}
    ), o AS ({_offset_sql("e", params)}
    ), t AS (
        SELECT *,
               CASE WHEN ts_text RLIKE {number} THEN {_epoch_sql('ts_text')}
                    ELSE coalesce({_local_sql(lambda t: f"try_to_timestamp({t})", "+00:00",
                                              space=False)},
                                  {_local_sql(lambda t: f"try_to_timestamp({t}, {clf_time})",
                                              "+0000", space=True)})
               END AS ts,
               CASE WHEN startswith(target_text, '/') AND NOT contains(target_text, ' ')
                    THEN target_text
                    ELSE regexp_replace(coalesce(nullif(regexp_extract(target_text,
                                                                      {request_line}, 1), ''),
                                                 target_text), {origin}, '') END AS target
        FROM o
    )
    SELECT file_id, line_no,
           coalesce({unparsed},
                    CASE WHEN ts_text IS NULL THEN 'no timestamp field'
                         WHEN bad_offset THEN 'bad UTC offset ' || left(offset_text, 16)
                         WHEN ts IS NULL THEN 'bad timestamp ' || left(ts_text, 64)
                         WHEN {f['posts']} IS NOT NULL
                              AND NOT coalesce(try_cast(round(try_cast({f['posts']} AS DOUBLE))
                                                        AS BIGINT) BETWEEN 0 AND {MAX_POSTS},
                                               false)
                             THEN 'bad posts ' || left({f['posts']}, 32) END) AS reject_reason,
           ts,
           {fields.without_port(f['client_ip'], params)} AS client_ip,
           {f['user']} AS `user`,
           {f['api_key']} AS api_key,
           nullif(split_part(target, '?', 1), '') AS path,
           coalesce(regexp_replace({f['query']}, '^[?]', ''),
                    CASE WHEN contains(target, '?')
                         THEN substr(target, instr(target, '?') + 1) END) AS query,
           try_cast(round(try_cast({f['status']} AS DOUBLE)) AS SMALLINT) AS status,
           try_cast(round(try_cast({f['posts']} AS DOUBLE)) AS BIGINT) AS posts,
           {f['xff']} AS xff,
           line
    FROM t
    """


def _clf_sql(source: str, params: Params) -> str:
    """clf.parse_sql in Spark SQL, over the view `source`: lines of the plain shape
    cut at the quotes, the others by the exact regex."""
    line = params.bind(clf.LINE_REGEX)
    request = params.bind(clf.REQUEST_REGEX)
    clf_time = "dd/MMM/yyyy:HH:mm:ss Z"
    group = {name: f"regexp_extract(line, {line}, {index})"
             for index, name in enumerate(clf.FIELDS, 1)}
    return f"""
    WITH s AS (
        SELECT file_id, line_no, line, line RLIKE {params.bind(clf.PLAIN_REGEX)} AS plain,
               split(line, '"') AS q
        FROM {source}
    ), m AS (
        SELECT file_id, line_no, line, plain,
               CASE WHEN plain THEN split_part(q[0], ' ', 1) ELSE {group['client']} END
                   AS client,
               CASE WHEN plain THEN split_part(q[0], ' ', 3) ELSE {group['user']} END AS u,
               CASE WHEN plain THEN substr(q[0], length(q[0]) - 27, 26) ELSE {group['ts']} END
                   AS ts_text,
               CASE WHEN plain THEN split_part(q[1], ' ', 2)
                    ELSE regexp_extract({group['request']}, {request}, 2) END AS raw_target,
               CASE WHEN plain THEN substr(q[2], 2, 3) ELSE {group['status']} END AS status,
               CASE WHEN NOT plain THEN {group['xff']} WHEN size(q) = 9 THEN q[7] END AS xff
        FROM s
    ), o AS ({_offset_sql("m", params, "plain")}
    ), p AS (
        SELECT *, {_local_sql(lambda t: f"try_to_timestamp({t}, {params.bind(clf_time)})",
                              "+0000", space=True)} AS ts
        FROM o
    ), t AS (
        SELECT *, CASE WHEN startswith(raw_target, '/') THEN raw_target
                       ELSE regexp_replace(raw_target, {params.bind(clf.ORIGIN_REGEX)}, '') END
                      AS target
        FROM p
    )
    SELECT file_id, line_no,
           CASE WHEN ts_text = '' AND trim(BOTH {params.bind(_LINE_END)} FROM line) = ''
                    THEN {params.bind(BLANK_LINE)}
                WHEN ts_text = '' THEN 'not a common/combined log line'
                WHEN bad_offset THEN 'bad UTC offset ' || left(offset_text, 16)
                WHEN ts IS NULL THEN 'bad timestamp ' || ts_text END AS reject_reason,
           ts,
           CASE WHEN plain AND NOT contains(client, ',') AND NOT contains(client, '[')
                    THEN client
                WHEN client RLIKE {params.bind(clf.ONE_HOST_REGEX)} THEN client
                ELSE nullif(regexp_extract(client, {params.bind(clf.LAST_HOST_REGEX)}, 1), '')
           END AS client_ip,
           nullif(nullif(u, '-'), '') AS `user`,
           CAST(NULL AS STRING) AS api_key,
           nullif(split_part(target, '?', 1), '') AS path,
           CASE WHEN contains(target, '?') THEN substr(target, instr(target, '?') + 1) END
               AS query,
           try_cast(status AS SMALLINT) AS status,
           CAST(NULL AS BIGINT) AS posts,
           nullif(nullif(xff, '-'), '') AS xff,
           line
    FROM t
    """


def requests(spark: SparkSession, groups: Iterable[tuple[str, list[Input]]], config: Config
             ) -> DataFrame:
    """Every line of every file as a request (entity, second, posts, counted) or a
    reject: read.py's load query in Spark SQL."""
    frames = [parsed(spark, fmt, files, config.input) for fmt, files in groups]
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    union.createOrReplaceTempView("sw_parsed")
    params = Literals()
    kind, entity = fields.entity_sql(config.entity, params)
    client = fields.client_ip_sql(config.entity, params)
    rule, posts = fields.posts_sql(config.posts, params)
    counted = fields.counted_sql(config.policy.count_statuses, params)
    effective = params.bind(int(config.policy.effective_from.timestamp()))
    first, last = (params.bind(int(t.timestamp())) for t in (EARLIEST, LATEST))
    columns = [f"`{c}`" if c != "client_ip" else f"{client or 'client_ip'} AS client_ip"
               for c in PARSED]
    query = f"""
    SELECT file_id, line_no, sec, entity_kind, entity, posts, observed, counted, reject_reason,
           CASE WHEN reject_reason IS NOT NULL
                THEN left(regexp_replace(raw_line, '[\\r\\n]+$', ''), {REJECT_TEXT_CHARS}) END
               AS line
    FROM (
        SELECT file_id, line_no, sec, entity_kind, entity, {posts} AS posts,
               posts IS NOT NULL AS observed, {counted} AND sec >= {effective} AS counted,
               coalesce(reject_reason,
                        CASE WHEN NOT sec BETWEEN {first} AND {last}
                                 THEN 'time out of range '
                                      || date_format(ts, "yyyy-MM-dd'T'HH:mm:ss'Z'")
                             WHEN entity IS NULL
                                 THEN 'no entity: api_key, user and client address are all empty'
                        END) AS reject_reason,
               line AS raw_line
        FROM (SELECT *, unix_seconds(ts) AS sec, {kind} AS entity_kind, {entity} AS entity,
                     {rule} AS rule
              FROM (SELECT {", ".join(columns)} FROM sw_parsed)))
    """
    return spark.sql(query)
