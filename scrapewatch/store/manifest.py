"""What of a file an ingest adds, decided by its content: nothing when the manifest
holds it already, its new lines when it extends held content (a log still being
appended to, or the same log rotated and compressed), else all of it; and the manifest
row that records what was added."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from scrapewatch.reading.loaded import FileLoad
from scrapewatch.reading.sources import LogSource
from scrapewatch.sql import run

# The first content bytes of a file, hashed to find the manifest entries it may extend
# (a file shorter than this when ingested is known by all of its content).
HEAD_BYTES = 4096
# A plain log's last line without a newline is held back as still being written, unless
# the file has not changed for this long: writers append whole lines, so such a line is
# then a truncated end, read as it is.
SETTLED_S = 300

@dataclass(frozen=True)
class Part:
    """What of a file an ingest adds: content bytes [start, end), from line first_line."""

    start: int
    end: int | None
    first_line: int
    format: str | None  # the format of the part it extends (a continuation has no header)
    head: bytes  # the file's first HEAD_BYTES content bytes (all, when shorter)
    replaces: int | None = None  # the held part (file_id) it reads again, see plan
    reason: str = ""  # why it is read, when not plainly new lines


@dataclass(frozen=True)
class Held:
    """A part of some file in the store's manifest, which a file may extend."""

    file_id: int
    content_sha256: str
    content_start: int
    content_end: int
    first_line: int
    lines: int
    format: str | None
    path: str


def plan(con: duckdb.DuckDBPyConnection, path: Path) -> Part | str:
    """The part of `path` to add, or why it adds nothing.

    A file that extends held content adds what follows it, numbered on from its lines.
    When the held content ends in a line without newline (read as cut short, once the
    file had settled), the file's further content completes that line: the held part
    is then read again from its start and replaces the part held, so that every line
    keeps its number in the whole file and is read whole, once.
    """
    raw = sha256_of(path)
    same = run(con, "SELECT f.path FROM store.files f JOIN store.manifest m USING (file_id) "
                    "WHERE f.sha256 = $sha AND m.complete LIMIT 1", {"sha": raw})
    if same:
        return f"already ingested (as {same[0][0]})"
    with LogSource.open(path) as source:
        compressed = source.compression != "none"
        head = source.read_content(HEAD_BYTES)
    end = None if compressed else complete_end(path)
    if end == 0:
        return "no complete line yet"
    shorter = None  # held content longer than this file, which starts like it
    for held in _held_like(con, head):
        prefix, cut_short, more = _compare(path, held, end)
        if end is not None and held.content_end > end:
            if prefix and cut_short:  # its cut-short last line is being written again
                return "no new lines"
            return f"starts like {held.path}, ingested before, but is shorter; not added"
        if prefix is None:  # a compressed file with less content than held
            shorter = shorter or held.path
        elif prefix:
            if not more:
                return "no new lines"
            if shorter is not None:
                break  # a copy of the held content cut between two ingests
            if cut_short:
                cut_line = held.first_line + held.lines - 1
                return Part(held.content_start, end, held.first_line, held.format, head,
                            held.file_id, f"line {cut_line} was cut short when read and is "
                            f"now complete: read again from line {held.first_line}")
            return Part(held.content_end, end, held.first_line + held.lines, held.format,
                        head)
    if shorter is not None:
        return f"starts like {shorter}, ingested before, but is shorter; not added"
    return Part(0, end, 1, None, head)


def _held_like(con: duckdb.DuckDBPyConnection, head: bytes) -> list[Held]:
    """The held parts whose file starts with the same bytes as `head` (so `head`'s file
    may extend them), longest content first."""
    found = []
    for (size,) in run(con, "SELECT DISTINCT head_bytes FROM store.manifest "
                            "WHERE head_bytes <= $n AND content_end > 0", {"n": len(head)}):
        found += [Held(*row) for row in run(con, """
            SELECT m.file_id, m.content_sha256, m.content_start, m.content_end, m.first_line,
                   f.lines, f.format, f.path
            FROM store.manifest m JOIN store.files f USING (file_id)
            WHERE m.head_bytes = $size AND m.head_sha256 = $head AND m.content_end > 0""",
                                          {"size": size,
                                           "head": hashlib.sha256(head[:size]).hexdigest()})]
    return sorted(found, key=lambda held: -held.content_end)


def _compare(path: Path, held: Held, end: int | None) -> tuple[bool | None, bool, bool]:
    """Whether `path`'s content starts with `held`'s (None: it is shorter), whether that
    content ends in a line without newline, and whether `path` has more content (to
    `end`, its complete lines, for a plain file)."""
    with LogSource.open(path) as source:
        source.read_content(held.content_end - 1, keep=False)
        last = source.read_content(1)
        if source.content_bytes < held.content_end:
            return None, False, False
        prefix = source.content_sha256() == held.content_sha256
        more = end > held.content_end if end is not None else bool(source.read_content(1))
    return prefix, last != b"\n", more


def record(con: duckdb.DuckDBPyConnection, file_id: int, run_id: int, path: Path, size: int,
           part: Part, loaded: FileLoad) -> None:
    """Add the file `part` of `path` loaded as `loaded` to the store's files and manifest."""
    run(con, "INSERT INTO store.files VALUES ($id, $path, $format, $sha, $size, $lines, $rej, "
             "$req)",
        {"id": file_id, "path": str(path), "format": loaded.format, "sha": loaded.sha256,
         "size": size, "lines": loaded.lines, "rej": loaded.rejected, "req": loaded.requests})
    head = part.head[:loaded.content_bytes]  # of the content it covers
    # complete: it read the file to its end (a plain file may have grown meanwhile, or end
    # in a line held back), so the raw file's hash alone says it is held
    complete = part.end is None or loaded.content_bytes == size
    counts = asdict(loaded.counts)
    run(con, "INSERT INTO store.manifest (file_id, run_id, ingested_at, head_bytes, "
             "head_sha256, content_sha256, content_start, content_end, first_line, complete, "
             f"first_request, last_request, {', '.join(counts)}) VALUES ($id, $run, $at, "
             "$head_bytes, $head, $content, $start, $end, $first, $complete, $first_request, "
             f"$last_request, {', '.join(f'${name}' for name in counts)})",
        {"id": file_id, "run": run_id, "at": datetime.now(UTC), "head_bytes": len(head),
         "head": hashlib.sha256(head).hexdigest(), "content": loaded.content_sha256,
         "start": part.start, "end": loaded.content_bytes, "first": part.first_line,
         "complete": complete, "first_request": loaded.first_request,
         "last_request": loaded.last_request, **counts})


def sha256_of(path: Path) -> str:
    """The SHA-256 of the file at `path` as it is on disk (compressed or not)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def complete_end(path: Path) -> int:
    """Where a plain log's complete lines end: its size, or, while its last line has no
    newline and the file changed in the last SETTLED_S seconds, the offset after its
    last newline (0 when there is none in the last 64 MiB)."""
    stat = path.stat()
    if time.time() - stat.st_mtime >= SETTLED_S:
        return stat.st_size
    with path.open("rb") as handle:
        at = stat.st_size
        while at > 0 and stat.st_size - at < (64 << 20):
            start = max(0, at - (1 << 20))
            handle.seek(start)
            newline = handle.read(at - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            at = start
    return 0


