"""Which format a file is in, told by its first lines (or named by the user)."""

from __future__ import annotations

import pyarrow as pa

from scrapewatch.errors import UnknownFormatError
from scrapewatch.reading.formats import FORMATS, LogFormat, get_format, sniff_format
from scrapewatch.reading.sources import LogSource

SNIFF_LINES = 50


def choose_format(source: LogSource, first: pa.StringArray, name: str) -> LogFormat:
    """The format named, or the one the first non-blank lines of the first block fit."""
    if name != "auto":
        return get_format(name)
    lines = _filled_lines(first, SNIFF_LINES)
    if not lines:
        # nothing but blank lines: any format skips each of them
        return next(iter(FORMATS.values()))
    fmt = sniff_format(lines)
    if fmt is None:
        tried = ", ".join(f.name for f in FORMATS.values() if f.magic is None)
        reason = (f"not a log format scrapewatch knows (tried {tried}); "
                  f"{_unknown_hint(lines)}")
        raise UnknownFormatError(f"{source.path}: {reason}", reason)
    return fmt


def _filled_lines(block: pa.StringArray, count: int) -> list[str]:
    """The first `count` lines of `block` that are not blank (whitespace only), read a
    growing slice at a time: the block's start rather than all of it, and without
    pyarrow.compute, whose first call imports pandas when it is installed (0.16 s).
    `str.strip` and Arrow's `utf8_trim_whitespace` agree on every code point."""
    lines: list[str] = []
    start, size = 0, 4 * count
    while len(lines) < count and start < len(block):
        lines += [line for line in block.slice(start, size).to_pylist() if line and line.strip()]
        start, size = start + size, 2 * size
    return lines[:count]


def _unknown_hint(lines: list[str]) -> str:
    """What to do about a file no format fits, told by its first lines."""
    if any("\0" in line for line in lines):  # UTF-16 text has a NUL in every ASCII letter
        return ("it holds NUL bytes: binary, or UTF-16 text to convert to UTF-8 "
                "(iconv -f UTF-16 -t UTF-8)")
    if "\r" in lines[0].rstrip("\r\n"):  # old Mac line ends: the file is one line
        return "its lines end in CR alone: make them LF (tr '\\r' '\\n')"
    return "give --format if it is one of them"
