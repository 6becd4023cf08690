"""Evidence of each charged period: the files its requests came from, with the first
and last line of each in the period, and those lines themselves.

The line ranges come from the activity (every part keeps its file and line range); the
lines are read again from the files, in one pass per file, stopping after the last one
wanted. In an uncompressed file the pass jumps to the nearest line whose offset the
load noted (`line_offsets`) before each line wanted. A file that cannot be read again
(moved since a store ingested it) keeps its line ranges without samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from scrapewatch.errors import InputError
from scrapewatch.reading.sources import LogSource
from scrapewatch.schema import REJECT_TEXT_CHARS
from scrapewatch.sql import insert_arrow, run

CHUNK_BYTES = 1 << 20
SAMPLES_SCHEMA = pa.schema([("path", pa.string()), ("line", pa.int64()), ("text", pa.string())])

# period_files: charged periods (sw_charged: position, period, start, end) and the
# evidence of the flagged entities (sw_evidence) -> per charged period and file, the
# first and last line of the period in it with the second each is counted at, its
# requests and its posts. (An evidence row's lines are all of its second.)
PERIOD_FILES_SQL = """
CREATE OR REPLACE TEMP TABLE sw_period_files AS
SELECT c.position, c.period, f.path, f.sha256, min(e.first_line) AS first_line,
       max(e.last_line) AS last_line, arg_min(e.sec, e.first_line) AS first_at,
       arg_max(e.sec, e.last_line) AS last_at, CAST(sum(e.requests) AS BIGINT) AS requests,
       CAST(sum(e.posts) AS BIGINT) AS posts
FROM sw_charged c
JOIN sw_flagged w USING (position)
JOIN sw_evidence e ON e.entity_kind = w.entity_kind AND e.entity = w.entity
                   AND e.sec >= c.start AND e.sec < c."end"
JOIN sw_files f ON f.file_id = e.file_id
GROUP BY c.position, c.period, f.path, f.sha256
"""

# wanted_lines: the first and last line of every period in the file $path, in order.
_WANTED_LINES_SQL = """
SELECT DISTINCT line FROM (
    SELECT first_line AS line FROM sw_period_files WHERE path = $path
    UNION ALL
    SELECT last_line FROM sw_period_files WHERE path = $path)
ORDER BY line
"""

# line_marks: the lines of the file $path whose content offset the load noted, in order.
_LINE_MARKS_SQL = """
SELECT o.line_no, o."offset" FROM {offsets} o JOIN sw_files f USING (file_id)
WHERE f.path = $path ORDER BY o.line_no
"""


def quote_edge_lines(db: duckdb.DuckDBPyConnection, offsets: str) -> None:
    """Fill `sw_samples` (path, line, text) with the text of every charged period's
    first and last line in each of its files (see PERIOD_FILES_SQL), reading from the
    marks in the `offsets` table (of schema.line_offsets) where it has some."""
    run(db, "CREATE OR REPLACE TEMP TABLE sw_samples (path VARCHAR, line BIGINT, text VARCHAR)")
    for (path,) in run(db, "SELECT DISTINCT path FROM sw_period_files ORDER BY path"):
        numbers = db.execute(_WANTED_LINES_SQL, {"path": path}).fetchnumpy()["line"]
        marks = db.execute(_LINE_MARKS_SQL.format(offsets=offsets), {"path": path}).fetchnumpy()
        try:
            with LogSource.open(Path(path), hashing=False) as source:
                if source.compression != "none":
                    marks = {"line_no": [], "offset": []}  # no seeking in a compressed stream
                lines = _lines_at(source, np.asarray(numbers, np.int64),
                                  np.asarray(marks["line_no"], np.int64),
                                  np.asarray(marks["offset"], np.int64))
                for batch in _batched(path, lines):
                    insert_arrow(db, "sw_samples", batch)
        except (InputError, OSError):
            continue  # the line ranges stand without samples


def _batched(path: str, lines: Iterator[tuple[int, str]], size: int = 65_536
             ) -> Iterator[pa.Table]:
    """(line, text) pairs of `path` as tables of SAMPLES_SCHEMA."""
    numbers: list[int] = []
    texts: list[str] = []
    for number, text in lines:
        numbers.append(number)
        texts.append(text)
        if len(numbers) == size:
            yield pa.table([[path] * size, numbers, texts], schema=SAMPLES_SCHEMA)
            numbers, texts = [], []
    if numbers:
        yield pa.table([[path] * len(numbers), numbers, texts], schema=SAMPLES_SCHEMA)


def _lines_at(source: LogSource, numbers: np.ndarray, marked: np.ndarray,
              offsets: np.ndarray) -> Iterator[tuple[int, str]]:
    """The lines numbered `numbers` (1-based, of the content, sorted), cut to a readable
    length: newlines are counted in whole chunks, and only the lines wanted are
    decoded. Line `marked[i]` starts at content byte `offsets[i]` (sorted by line):
    before each line wanted, the read jumps to the last mark at or before it when
    that is ahead of where it is."""
    at, first, carry = 0, 1, b""
    while at < len(numbers):
        mark = int(np.searchsorted(marked, numbers[at], side="right")) - 1
        if mark >= 0 and marked[mark] > first:
            source.seek_content(int(offsets[mark]))
            first, carry = int(marked[mark]), b""
        if not (chunk := source.read_content(CHUNK_BYTES)):
            break
        data = carry + chunk
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        stop = int(np.searchsorted(numbers, first + len(ends), side="left"))
        for number in numbers[at:stop].tolist():
            index = number - first
            start = 0 if index == 0 else int(ends[index - 1]) + 1
            text = data[start:int(ends[index])].decode("utf-8", "backslashreplace")
            if number == 1:
                text = text.removeprefix("\ufeff")  # a byte order mark is no text
            yield number, text.rstrip("\r")[:REJECT_TEXT_CHARS]
        at = stop
        carry = data[int(ends[-1]) + 1:] if len(ends) else data
        first += len(ends)
    if at < len(numbers) and numbers[at] == first and carry:  # a last line without newline
        yield first, carry.decode("utf-8", "backslashreplace")[:REJECT_TEXT_CHARS]
