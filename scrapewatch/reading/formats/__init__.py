"""The format registry: every log format scrapewatch reads, by name.

A format turns a relation `block(line_no BIGINT, line VARCHAR)` into parsed requests
(one SQL query, vectorised in DuckDB) and scores how well a file's first lines fit it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from scrapewatch.config import InputConfig
from scrapewatch.errors import ConfigError, FormatError
from scrapewatch.reading.formats import clf, custom, jsonl, native, regex, tables, w3c
from scrapewatch.reading.formats.base import Cutter, Pieces
from scrapewatch.sql import Params


@dataclass(frozen=True)
class LogFormat:
    """A named log format.

    Attributes:
        name: What `--format` takes.
        description: One line for `--help` and the README.
        example: A line in this format.
        parse_sql: Builds the parse query over `block(line_no, line)`, one row per line
            (see `scrapewatch.schema.PARSED_COLUMNS`).
        sniff: Share (0 to 1) of the given first lines that fit this format.
        cutter: Optional, makes a file's block reader (run on the reader thread): it
            reads what it can of each block at once into `plain` tables; the other
            lines go through `parse_sql`. It may make none (native code not built).
        cut_sql: The parse query over `plain`, given that table's schema.
        header: The cutter keeps a header from block to block (W3C, CSV): to read a
            file from the middle, it first reads the part before.
        magic: For a binary format, the first bytes of its files, which tell it
            instead of sniffing lines ...
        batches: ... and how its files are read: (path, config) -> per batch, the
            `plain` tables to load and 0.
    """

    name: str
    description: str
    example: str
    parse_sql: Callable[[InputConfig, Params], str]
    sniff: Callable[[list[str]], float]
    cutter: Callable[[InputConfig], Cutter | None] | None = None
    cut_sql: Callable[[pa.Schema, InputConfig, Params], str] | None = None
    header: bool = False
    magic: bytes | None = None
    batches: Callable[[Path, InputConfig], Pieces] | None = None


# In order of preference when two formats fit a file's first lines equally well: the
# more specific first (a vhost_combined line also reads as combined with a two-word host).
FORMATS: dict[str, LogFormat] = {
    "vhost_combined": LogFormat(
        "vhost_combined", "Apache vhost_combined: the virtual host (and port) before combined",
        regex.VHOST_COMBINED_EXAMPLE, regex.VHOST_COMBINED.parse_sql,
        regex.VHOST_COMBINED.sniff, native.cutter(native.VHOST), native.cut_sql),
    "combined": LogFormat(
        "combined", "nginx/Apache combined: common plus quoted referer and user agent",
        clf.COMBINED_EXAMPLE, clf.parse_sql, clf.sniff_combined, native.cutter(native.CLF),
        native.cut_sql),
    "common": LogFormat(
        "common", "nginx/Apache Common Log Format (CLF)",
        clf.COMMON_EXAMPLE, clf.parse_sql, clf.sniff_common, native.cutter(native.CLF),
        native.cut_sql),
    "alb": LogFormat(
        "alb", "AWS Application Load Balancer access log",
        regex.ALB_EXAMPLE, regex.ALB.parse_sql, regex.ALB.sniff, native.cutter(native.ALB),
        native.cut_sql),
    "elb": LogFormat(
        "elb", "AWS classic Elastic Load Balancer access log",
        regex.ELB_EXAMPLE, regex.ELB.parse_sql, regex.ELB.sniff, native.cutter(native.ELB),
        native.cut_sql),
    "cloudfront": LogFormat(
        "cloudfront", "Amazon CloudFront standard log: tab-separated W3C with #Fields",
        w3c.CLOUDFRONT_EXAMPLE, w3c.parse_sql, w3c.sniff_cloudfront, w3c.cutter, w3c.block_sql,
        header=True),
    "w3c": LogFormat(
        "w3c", "W3C extended log (IIS and others): columns named by each #Fields: line",
        w3c.W3C_EXAMPLE, w3c.parse_sql, w3c.sniff_w3c, w3c.cutter, w3c.block_sql, header=True),
    "iis": LogFormat(
        "iis", "Microsoft IIS log file format (comma-separated; local time read as UTC)",
        regex.IIS_EXAMPLE, regex.IIS.parse_sql, regex.IIS.sniff),
    "jsonl": LogFormat(
        "jsonl", "JSON lines, one request object per line, common field names or a mapping",
        jsonl.EXAMPLE, jsonl.parse_sql, jsonl.sniff, jsonl.cutter, jsonl.block_sql),
    "csv": LogFormat(
        "csv", "CSV with a header row naming the columns (common names or [input.fields])",
        tables.CSV_EXAMPLE, tables.parse_sql, tables.sniff_csv, tables.csv_cutter,
        tables.delimited_sql, header=True),
    "tsv": LogFormat(
        "tsv", "TSV with a header row naming the columns (common names or [input.fields])",
        tables.TSV_EXAMPLE, tables.parse_sql, tables.sniff_tsv, tables.tsv_cutter,
        tables.delimited_sql, header=True),
    "parquet": LogFormat(
        "parquet", "Parquet with columns named as for csv; only those columns are read",
        tables.PARQUET_EXAMPLE, tables.parse_sql, lambda lines: 0.0, None, tables.parquet_sql,
        magic=tables.PARQUET_MAGIC, batches=tables.parquet_batches),
}


CUSTOM_HELP = ("nginx:LOG_FORMAT (an nginx log_format string), apache:LOGFORMAT (an Apache "
               "LogFormat string) or regex:REGEX (named groups time, client, user, api_key, "
               "request, method, path, query, status, bytes, referer, user_agent, posts)")


def get_format(name: str) -> LogFormat:
    """The format called `name`, or the custom format it spells (see CUSTOM_HELP).

    Raises:
        FormatError: naming the valid names, or saying what is wrong with a custom one.
    """
    if name in FORMATS:
        return FORMATS[name]
    try:
        line_regex = custom.from_spec(name)
    except ConfigError as exc:
        raise FormatError(f"format {name!r}: {exc}") from None
    if line_regex is None:
        raise FormatError(f"unknown format {name!r}; valid: auto, {', '.join(FORMATS)}, "
                          f"or {CUSTOM_HELP}")
    return LogFormat(name, "custom", "", line_regex.parse_sql, line_regex.sniff)


def sniff_format(first_lines: list[str]) -> LogFormat | None:
    """The format that fits most of a file's first non-blank lines, if any fits half.

    A line with a CR inside fits none: where CR alone ends lines, the file is one line,
    whose first record a format would read and whose others it would skip.
    """
    lines = [line.rstrip("\r\n") for line in first_lines if line.strip()]
    if not lines:
        return None
    lines = ["" if "\r" in line else line for line in lines]
    scored = [(fmt.sniff(lines), fmt) for fmt in FORMATS.values() if fmt.magic is None]
    score, best = max(scored, key=lambda pair: pair[0])
    return best if score >= 0.5 else None
