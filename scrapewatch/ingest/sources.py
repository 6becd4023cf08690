"""Input files: path expansion, transparent decompression, hashing and line blocks.

A file is read once, in large blocks: the raw bytes feed the SHA-256 (so the report can
prove which file it read), the decompressed bytes are cut at newlines into Arrow string
arrays. No Python object is made per line.
"""

from __future__ import annotations

import codecs
import glob
import gzip
import hashlib
import io
import os
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from queue import Full, Queue
from typing import IO, Any, TypeVar

import numpy as np
import pyarrow as pa

from scrapewatch.errors import InputError

T = TypeVar("T")
BLOCK_BYTES = 16 << 20
MAX_LINE_BYTES = 64 << 20  # a longer "line" is not a log line: stop rather than hold it all
_GLOB_CHARS = frozenset("*?[")


def expand_inputs(paths: Sequence[str]) -> list[Path]:
    """Files named by `paths`: files as given, directories recursively, globs expanded.

    Hidden files (a name starting with '.') inside directories are skipped. The result
    keeps the order given, each directory's files sorted, with duplicates removed.

    Raises:
        InputError: for a path that does not exist or a glob that matches no file.
    """
    found: dict[Path, None] = {}
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        found.setdefault(Path(root) / name)
        elif path.is_file():
            found.setdefault(path)
        elif _GLOB_CHARS & set(given):
            matches = [m for m in sorted(Path(g) for g in glob.glob(given, recursive=True))
                       if m.is_file()]
            if not matches:
                raise InputError(f"no file matches {given!r}")
            for match in matches:
                found.setdefault(match)
        else:
            raise InputError(f"{given}: no such file or directory")
    return list(found)


class _HashingReader(io.RawIOBase):
    """A raw file that hashes and counts every byte read through it."""

    def __init__(self, raw: IO[bytes], hashing: bool = True) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.hashing = hashing
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            if self.hashing:
                self.sha256.update(memoryview(buffer)[:count])
            self.bytes_read += count
        return count or 0

    def drain(self) -> None:
        """Read (and hash) what the decompressor left unread, e.g. trailing padding."""
        while self.read(1 << 20):
            pass


@dataclass
class LogSource:
    """One open input file: decompressed blocks out, hash and byte count alongside."""

    path: Path
    size: int
    _raw: _HashingReader
    _stream: Any
    compression: str
    magic: bytes = b""  # the file's first four bytes, as read
    content_bytes: int = 0  # decompressed bytes read so far
    _content_hash: Any = field(default_factory=hashlib.sha256)

    @classmethod
    def open(cls, path: Path, *, hashing: bool = True) -> LogSource:
        """Open `path`, choosing gzip, zstd or none from its first bytes, not its name.
        Without `hashing`, no hash is computed (a file read again, to quote lines).

        Raises:
            InputError: when the file cannot be opened.
        """
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by close()
            size = os.fstat(handle.fileno()).st_size
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
        magic = handle.read(4)
        handle.seek(0)
        raw = _HashingReader(handle, hashing)
        if magic[:2] == b"\x1f\x8b":
            return cls(path, size, raw, gzip.GzipFile(fileobj=raw, mode="rb"), "gzip", magic)
        if magic == b"\x28\xb5\x2f\xfd":
            stream = pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "zstd")
            return cls(path, size, raw, stream, "zstd", magic)
        return cls(path, size, raw, raw, "none", magic)

    @property
    def bytes_read(self) -> int:
        """Raw (compressed) bytes read so far: progress against `size`."""
        return self._raw.bytes_read

    def sha256(self) -> str:
        """The SHA-256 of the whole raw file; call after the blocks are consumed."""
        self._raw.drain()
        return self._raw.sha256.hexdigest()

    def close(self) -> None:
        self._raw.raw.close()

    def __enter__(self) -> LogSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, size: int) -> bytes:
        try:
            return bytes(self._stream.read(size))
        except (EOFError, OSError, zlib.error, pa.ArrowException) as exc:
            raise InputError(f"{self.path}: the {self.compression} stream is truncated or "
                             f"corrupt ({exc}); recompress or remove the file") from exc

    def blocks(self, block_bytes: int = BLOCK_BYTES, *, skip: int = 0,
               limit: int | None = None) -> Iterator[pa.StringArray]:
        """Yield the file's lines in blocks, each line keeping its '\\n'.

        `skip` and `limit` count decompressed (content) bytes: the lines from content
        byte `skip` (the start of a line) up to byte `limit` are yielded; the skipped
        bytes are read and hashed all the same (see `content_sha256`).

        Invalid UTF-8 is kept visible as `\\xHH` escapes (as nginx writes them) rather
        than dropped, so such lines still parse or are rejected with their text. A
        UTF-8 byte order mark (Windows tools write one) is dropped.
        """
        while skip > self.content_bytes:
            if not self._content(min(block_bytes, skip - self.content_bytes), limit):
                return
        carry = b""
        chunk = self._content(block_bytes, limit)
        if skip == 0 and chunk.startswith(codecs.BOM_UTF8):
            chunk = chunk[len(codecs.BOM_UTF8):]
        while chunk:
            data = carry + chunk
            chunk = self._content(block_bytes, limit)
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                if len(data) > MAX_LINE_BYTES:
                    raise InputError(f"{self.path}: a line is longer than "
                                     f"{MAX_LINE_BYTES >> 20} MiB; is this a log file?")
                carry = data
                continue
            carry = data[cut:]
            yield lines_array(data[:cut])
        if carry:
            yield lines_array(carry)

    def _content(self, size: int, limit: int | None) -> bytes:
        """Up to `size` more content bytes, none past `limit`; hashed and counted."""
        if limit is not None:
            size = min(size, limit - self.content_bytes)
        if size <= 0:
            return b""
        data = self._read(size)
        self.content_bytes += len(data)
        if self._raw.hashing:
            self._content_hash.update(data)
        return data

    def read_content(self, size: int, *, keep: bool = True) -> bytes:
        """The next `size` content bytes (fewer at the end), hashed and counted; with
        `keep` False, read (and hashed) but not returned: bounded memory."""
        parts, total = [], 0
        while total < size and (chunk := self._content(min(BLOCK_BYTES, size - total), None)):
            if keep:
                parts.append(chunk)
            total += len(chunk)
        return b"".join(parts)

    def content_sha256(self) -> str:
        """The SHA-256 of the content (decompressed) bytes read so far: with a limit,
        of the content up to it, which `skip` and `limit` of a later read refer to."""
        return str(self._content_hash.hexdigest())


def lines_array(data: bytes) -> pa.StringArray:
    """Cut `data` after each newline into an Arrow string array, without copying lines."""
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    ends = newlines + 1
    if not ends.size or ends[-1] != len(data):
        ends = np.append(ends, len(data))  # a last line with no final newline
    offsets = np.concatenate(([0], ends)).astype(np.int32)
    array = pa.StringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        return lines_array(data.decode("utf-8", "backslashreplace").encode("utf-8"))
    return array


def block_data(lines: pa.StringArray) -> pa.Buffer:
    """The bytes of `lines` (a block, each line keeping its newline), without copying."""
    offsets = np.frombuffer(lines.buffers()[1], np.int32)
    first, last = (int(x) for x in offsets[[lines.offset, lines.offset + len(lines)]])
    return lines.buffers()[2][first:last]


_DONE = object()


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run `items` in a background thread, up to `depth` ahead of the consumer.

    Reading, decompressing, hashing and cutting blocks release the GIL, so the next
    block is prepared on one core while DuckDB parses the current one. An exception in
    the producer is raised in the consumer; a consumer that stops early stops it.
    """
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put(item, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            queue.put(exc)

    thread = threading.Thread(target=produce, name="scrapewatch-reader", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
