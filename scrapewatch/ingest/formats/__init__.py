"""The format registry: every log format scrapewatch reads, by name.

A format turns a relation `block(line_no BIGINT, line VARCHAR)` into parsed requests
(one SQL query, vectorised in DuckDB) and scores how well a file's first lines fit it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from scrapewatch.config import InputConfig
from scrapewatch.errors import FormatError
from scrapewatch.ingest.formats import clf, jsonl
from scrapewatch.ingest.formats.jsonl import Cut
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
        cut: Optional fast path, run on the reader thread: reads what it can of a block
            at once into a `plain` table; its other lines go through `parse_sql`.
        cut_sql: The parse query over `plain`, given that table's schema.
    """

    name: str
    description: str
    example: str
    parse_sql: Callable[[InputConfig, Params], str]
    sniff: Callable[[list[str]], float]
    cut: Callable[[pa.StringArray, int, InputConfig], Cut | None] | None = None
    cut_sql: Callable[[pa.Schema, InputConfig, Params], str] | None = None


FORMATS: dict[str, LogFormat] = {
    "combined": LogFormat(
        "combined", "nginx/Apache combined: common plus quoted referer and user agent",
        clf.COMBINED_EXAMPLE, clf.parse_sql, clf.sniff_combined),
    "common": LogFormat(
        "common", "nginx/Apache Common Log Format (CLF)",
        clf.COMMON_EXAMPLE, clf.parse_sql, clf.sniff_common),
    "jsonl": LogFormat(
        "jsonl", "JSON lines, one request object per line, common field names or a mapping",
        jsonl.EXAMPLE, jsonl.parse_sql, jsonl.sniff, jsonl.read_block, jsonl.block_sql),
}


def get_format(name: str) -> LogFormat:
    """The format called `name`.

    Raises:
        FormatError: listing the valid names.
    """
    try:
        return FORMATS[name]
    except KeyError:
        raise FormatError(f"unknown format {name!r}; valid: auto, {', '.join(FORMATS)}") from None


def sniff_format(first_lines: list[str]) -> LogFormat | None:
    """The format that fits most of a file's first non-blank lines, if any fits half."""
    lines = [line.rstrip("\r\n") for line in first_lines if line.strip()]
    if not lines:
        return None
    scored = [(fmt.sniff(lines), fmt) for fmt in FORMATS.values()]
    score, best = max(scored, key=lambda pair: pair[0])
    return best if score >= 0.5 else None
