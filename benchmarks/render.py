"""Text output of the log generator: rows rendered to log lines and written in order.

Lines are built per chunk with pyarrow ``take`` + ``binary_join_element_wise`` from
pre-rendered lookup tables, then written (and gzipped, level 1) on a second thread.
"""

from __future__ import annotations

import gzip
import json
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.catalogue import Catalogue
from benchmarks.traffic import DAY, OFFSETS, STATUSES, Lines, Population, World

# ---------------------------------------------------------------------------
# Rendering text
# ---------------------------------------------------------------------------

def _json(text: str | None) -> str:
    """A JSON value for a string field (null when absent)."""
    return json.dumps(text)


@dataclass
class RenderTables:
    """Lookup tables of text pieces; a line is a few ``take``s joined."""

    days: pa.Array  # by day index from day_base
    day_base: int
    clock: pa.Array  # by offset * 86400 + second of day
    client_head: pa.Array
    client_tail: pa.Array
    request: pa.Array  # by template * len(STATUSES) + status


def _request_text(cat: Catalogue, fmt: str, i: int, status: int) -> str:
    """The request part of a line, up to the bytes field."""
    method, path, query = cat.method[i], cat.path[i], cat.query[i]
    if fmt == "combined":
        target = f"{path}?{query}" if query else path
        return f'{method} {target} HTTP/1.1" {status} '
    return (f'"method":{_json(method)},"path":{_json(path)},"query":{_json(query)},'
            f'"status":{status},"bytes":')


def _client_texts(pop: Population, fmt: str) -> tuple[list[str], list[str]]:
    """Per client: the text before the timestamp and the text ending the line."""
    if fmt == "combined":
        head = [f"{ip} - - [" for ip in pop.ip]
        tail = [f' "{ref}" "{agent}"\n' for ref, agent in zip(pop.referer, pop.agent, strict=True)]
        return head, tail
    head = [f'Z","client_ip":{_json(ip)},"api_key":{_json(key)},"user":{_json(user)},'
            for ip, key, user in zip(pop.ip, pop.api_key, pop.user, strict=True)]
    return head, []


def build_tables(world: World) -> RenderTables:
    """Pre-renders every repeated piece of text once."""
    fmt, cat = world.fmt, world.cat
    day_base = world.t0 // DAY - 1  # offsets move local days by at most one
    days: list[str] = []
    clock: list[str] = []
    for d in range(world.span // DAY + 3):
        when = datetime.fromtimestamp((day_base + d) * DAY, UTC)
        days.append(when.strftime("%d/%b/%Y:" if fmt == "combined" else '{"ts":"%Y-%m-%dT'))
    offsets = OFFSETS if fmt == "combined" else OFFSETS[:1]
    for text, _ in offsets:
        suffix = f' {text}] "' if fmt == "combined" else ""
        clock += [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{suffix}" for s in range(DAY)]
    head, tail = _client_texts(world.pop, fmt)
    request = [_request_text(cat, fmt, i, int(s)) for i in range(len(cat.method)) for s in STATUSES]
    text = pa.large_string()
    return RenderTables(pa.array(days, text), day_base, pa.array(clock, text),
                        pa.array(head, text), pa.array(tail, text), pa.array(request, text))


def _take(table: pa.Array, index: np.ndarray) -> pa.Array:
    return table.take(pa.array(index.astype(np.int32)))


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.large_string())


def render(lines: Lines, world: World, tables: RenderTables) -> pa.Array:
    """One string per line, newline included, in one large_string array."""
    pop = world.pop
    request = _take(tables.request, lines.template * len(STATUSES) + lines.status)
    if world.fmt == "combined":
        offset = pop.offset_idx[lines.client]
        local = lines.ts + np.array([s for _, s in OFFSETS])[offset]
        pieces = [_take(tables.client_head, lines.client),
                  _take(tables.days, local // DAY - tables.day_base),
                  _take(tables.clock, offset * DAY + local % DAY),
                  request, _text(lines.nbytes), _take(tables.client_tail, lines.client)]
    else:
        pieces = [_take(tables.days, lines.ts // DAY - tables.day_base),
                  _take(tables.clock, lines.ts % DAY),
                  _take(tables.client_head, lines.client), request, _text(lines.nbytes),
                  pa.scalar(',"result_count":', pa.large_string()), _text(lines.observed),
                  pa.scalar("}\n", pa.large_string())]
    joined = pc.binary_join_element_wise(*pieces, pa.scalar("", pa.large_string()))
    if joined.null_count:
        raise AssertionError("a line piece was missing")
    return joined


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

class ChunkWriter:
    """Writes rendered chunks in order on a second thread.

    zlib and file writes release the GIL, so gzip compression overlaps with the
    rendering of the next chunk. gzip headers carry no time stamp (mtime=0) so the
    output is byte-identical from run to run.
    """

    def __init__(self, path: Path) -> None:
        self._raw: BinaryIO = open(path, "wb")  # noqa: SIM115 (closed in close())
        self._out: BinaryIO = self._raw
        if path.name.endswith(".gz"):
            self._out = gzip.GzipFile(filename=path.name[:-3], mode="wb", fileobj=self._raw,
                                      compresslevel=1, mtime=0)  # type: ignore[assignment]
        self._queue: queue.Queue[pa.Array | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    end = int(np.frombuffer(chunk.buffers()[1], np.int64)[len(chunk)])
                    self._out.write(memoryview(chunk.buffers()[2])[:end])
                except BaseException as exc:  # reported by close(); keep draining
                    self._error = exc

    def write(self, chunk: pa.Array) -> None:
        """Queues a chunk (blocks when two are already waiting)."""
        self._queue.put(chunk)

    def close(self) -> None:
        """Flushes everything and re-raises a write error, if any."""
        self._queue.put(None)
        self._thread.join()
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()
        if self._error is not None:
            raise self._error
