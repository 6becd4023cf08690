"""Evidence of each charged period: the files its requests came from, with the first
and last line of each in the period, and those lines themselves.

The line ranges come from the activity (every part keeps its file and line range); the
lines are read again from the files, in one pass per file, stopping after the last one
wanted. A file that cannot be read again (moved since a store ingested it) keeps its
line ranges without samples.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from scrapewatch.errors import InputError
from scrapewatch.ingest.sources import LogSource
from scrapewatch.report.model import Finding, PeriodFile
from scrapewatch.schema import REJECT_TEXT_CHARS

if TYPE_CHECKING:
    from scrapewatch.engine import Engine

CHUNK_BYTES = 16 << 20

# period_files: per charged period (position, index) and file, what of it the period holds.
_PERIOD_FILES_SQL = """
SELECT l.position, l.period, f.path, f.sha256, min(e.first_line), max(e.last_line),
       sum(e.requests), sum(e.posts)
FROM charged l
JOIN evidence e ON e.entity_kind = l.entity_kind AND e.entity = l.entity
                AND e.sec >= l.start AND e.sec < l.stop
JOIN {files} f ON f.file_id = e.file_id
GROUP BY l.position, l.period, f.path, f.sha256
ORDER BY l.position, l.period, min(e.first_line), f.path
"""


def with_evidence(engine: Engine, findings: list[Finding],
                  files: str = "files", quote: bool = True) -> list[Finding]:
    """`findings` with each charged period's files, line ranges and (with `quote`) edge
    lines."""
    rows = [(position, index, f.window.entity_kind, f.window.entity, p.start, p.end)
            for position, f in enumerate(findings)
            for index, p in enumerate(f.assessment.periods)]
    if not rows:
        return findings
    engine.put("charged", pa.table({
        name: pa.array([row[i] for row in rows], kind) for i, (name, kind) in enumerate((
            ("position", pa.int32()), ("period", pa.int32()), ("entity_kind", pa.string()),
            ("entity", pa.string()), ("start", pa.int64()), ("stop", pa.int64())))}))
    found: dict[tuple[int, int], list[PeriodFile]] = defaultdict(list)
    for position, index, path, sha, first, last, requests, posts in engine.rows(
            _PERIOD_FILES_SQL.format(files=files)):
        found[position, index].append(PeriodFile(path, sha, int(first), int(last),
                                                 int(requests), int(posts)))
    samples = _edge_lines(found) if quote else {}
    return [replace(f, evidence=[[replace(pf, samples=[(n, samples[pf.path, n])
                                                        for n in (pf.first_line, pf.last_line)
                                                        if (pf.path, n) in samples])
                                  for pf in found[position, index]]
                                 for index in range(len(f.assessment.periods))])
            for position, f in enumerate(findings)]


def _edge_lines(found: dict[tuple[int, int], list[PeriodFile]]) -> dict[tuple[str, int], str]:
    """The text of every period's first and last line, by (path, line number)."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for period_files in found.values():
        for pf in period_files:
            wanted[pf.path] |= {pf.first_line, pf.last_line}
    texts: dict[tuple[str, int], str] = {}
    for path, numbers in wanted.items():
        try:
            with LogSource.open(Path(path), hashing=False) as source:
                texts.update(((path, n), text) for n, text in _lines_at(source, numbers))
        except (InputError, OSError):
            continue  # the line ranges stand without samples
    return texts


def _lines_at(source: LogSource, numbers: set[int]) -> Iterator[tuple[int, str]]:
    """The lines numbered `numbers` (1-based, of the content), cut to a readable length:
    newlines are counted in whole chunks, and only the lines wanted are decoded."""
    pending, first, carry = sorted(numbers), 1, b""
    while pending and (chunk := source.read_content(CHUNK_BYTES)):
        data = carry + chunk
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        while pending and pending[0] < first + len(ends):
            index = pending.pop(0) - first
            start = 0 if index == 0 else int(ends[index - 1]) + 1
            text = data[start:int(ends[index])].decode("utf-8", "backslashreplace")
            if index + first == 1:
                text = text.removeprefix("\ufeff")  # a byte order mark is no text
            yield index + first, text.rstrip("\r")[:REJECT_TEXT_CHARS]
        carry = data[int(ends[-1]) + 1:] if len(ends) else data
        first += len(ends)
    if pending and pending[0] == first and carry:  # a last line without newline
        yield first, carry.decode("utf-8", "backslashreplace")[:REJECT_TEXT_CHARS]
