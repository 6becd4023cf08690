"""Input files: path expansion, transparent decompression, hashing and line blocks.

A file is read once, in large blocks: the raw bytes feed the SHA-256 (so the report can
prove which file it read), the decompressed bytes are cut at newlines into Arrow string
arrays. No Python object is made per line.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import os
import stat
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Full, Queue
from typing import IO, Any, TypeVar

import numpy as np
import pyarrow as pa

from scrapewatch.errors import InputError
from scrapewatch.reading.formats import native
from scrapewatch.reading.formats.base import block_data
from scrapewatch.reading.inputs import file_kind

T = TypeVar("T")
BLOCK_BYTES = 16 << 20
MAX_LINE_BYTES = 64 << 20  # a longer "line" is not a log line: stop rather than hold it all
MARK_EVERY = 2048  # lines between two marks of where a line starts (see LogSource.marks)


class _HashingReader(io.RawIOBase):
    """A raw file that counts every byte read through it and, while `hashing`, hashes
    it."""

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
    hashing: bool = True  # False: no hash computed at all
    # Of an uncompressed file, where some lines of the read start: (line of the read,
    # 0-based; content offset) per block's first line and every MARK_EVERY-th line
    # after it. A later read seeks to the mark before a line rather than read from the
    # start (see `seek_content`).
    marks: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    lines_read: int = 0  # lines yielded by `blocks` so far

    @classmethod
    def open(cls, path: Path, *, hashing: bool = True) -> LogSource:
        """Open `path`, choosing gzip, zstd or none from its first bytes, not its name.
        Without `hashing`, no hash is computed (a file read again, to quote lines).

        Raises:
            InputError: when the file cannot be opened.
        """
        try:
            # non-blocking: opening a named pipe put in the file's place must not wait
            # for a writer; for a regular file the flag changes nothing
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                         | getattr(os, "O_BINARY", 0))
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                os.close(fd)
                raise InputError(f"{path}: not a regular file ({file_kind(status.st_mode)}); "
                                 "scrapewatch reads regular files only: copy it into a file")
            handle = os.fdopen(fd, "rb")
            size = status.st_size
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
        magic = handle.read(4)
        handle.seek(0)
        raw = _HashingReader(handle, hashing)
        if magic[:2] == b"\x1f\x8b":
            return cls(path, size, raw, gzip.GzipFile(fileobj=raw, mode="rb"), "gzip", magic,
                       hashing=hashing)
        if magic == b"\x28\xb5\x2f\xfd":
            stream = pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "zstd")
            return cls(path, size, raw, stream, "zstd", magic, hashing=hashing)
        # uncompressed, the raw bytes read are the content bytes: hashed once, as content
        # (`sha256` goes on from the content's hash)
        raw.hashing = False
        return cls(path, size, raw, raw, "none", magic, hashing=hashing)

    @property
    def bytes_read(self) -> int:
        """Raw (compressed) bytes read so far: progress against `size`."""
        return self._raw.bytes_read

    def sha256(self) -> str:
        """The SHA-256 of the whole raw file; call after the blocks are consumed. Of no
        byte for a file read without hashing, whose rest is then not read."""
        if not self.hashing:
            return str(self._raw.sha256.hexdigest())
        if not self._raw.hashing:
            # uncompressed: the raw bytes read so far are the content read so far, which
            # was hashed; the rest of the file (past a limit) is hashed on from there
            self._raw.sha256 = self._content_hash.copy()
            self._raw.hashing = True
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
            raise self._corrupt(exc) from exc

    def _corrupt(self, exc: BaseException) -> InputError:
        return InputError(f"{self.path}: the {self.compression} stream is truncated or "
                          f"corrupt ({exc}); recompress or remove the file")

    def blocks(self, block_bytes: int = BLOCK_BYTES, *, skip: int = 0,
               limit: int | None = None) -> Iterator[pa.StringArray]:
        """Yield the file's lines in blocks, each line keeping its '\\n'.

        `skip` and `limit` count decompressed (content) bytes: the lines from content
        byte `skip` (the start of a line) up to byte `limit` are yielded; the skipped
        bytes are read and hashed all the same (see `content_sha256`).

        Each block is read straight into a buffer of Arrow's memory pool, which its
        lines then point into: one copy of the bytes, in memory the pool reuses.
        Invalid UTF-8 is kept visible as `\\xHH` escapes (as nginx writes them) rather
        than dropped, so such lines still parse or are rejected with their text. A
        UTF-8 byte order mark (Windows tools write one) is dropped.
        """
        while skip > self.content_bytes:
            if not self._content(min(block_bytes, skip - self.content_bytes), limit):
                return
        carry, start = b"", 0
        while True:
            base = self.content_bytes - len(carry)  # the content offset of the buffer
            buffer = pa.allocate_buffer(len(carry) + block_bytes)
            view = memoryview(buffer).cast("B")
            view[:len(carry)] = carry
            read = self._content_into(view[len(carry):], limit)
            filled = len(carry) + read
            if skip == 0 and self.content_bytes == read and \
                    view[:filled][:len(codecs.BOM_UTF8)].tobytes() == codecs.BOM_UTF8:
                start = len(codecs.BOM_UTF8)  # the file's first block
            cut = _after_last_newline(view[:filled])
            if filled - max(cut, start) > MAX_LINE_BYTES:  # the last line, whole or not
                raise InputError(f"{self.path}: a line is longer than "
                                 f"{MAX_LINE_BYTES >> 20} MiB; is this a log file?")
            if read < block_bytes:  # the end of the content: every line, the last too
                if filled > start:
                    yield self._marked(buffer.slice(start, filled - start), base + start)
                return
            if cut <= start:
                carry = view[start:filled].tobytes()
            else:
                carry = view[cut:filled].tobytes()
                yield self._marked(buffer.slice(start, cut - start), base + start)
            start = 0

    def _marked(self, data: pa.Buffer, offset: int) -> pa.StringArray:
        """The lines of `data`, which starts at content `offset`, noted in `marks`."""
        lines = lines_array(data)
        if self.compression == "none":
            picks = np.arange(0, len(lines), MARK_EVERY)
            if block_data(lines).size != data.size:
                picks = picks[:1]  # invalid UTF-8 made visible: only the first is the file's
            starts = np.frombuffer(lines.buffers()[1], np.int32)[picks]
            self.marks.append((self.lines_read + picks, offset + starts.astype(np.int64)))
        self.lines_read += len(lines)
        return lines

    def seek_content(self, offset: int) -> None:
        """Go to content byte `offset` of an uncompressed file read without hashing
        (a file read again to quote lines)."""
        if self.compression != "none" or self.hashing:
            raise ValueError(f"{self.path}: only an uncompressed file read again seeks")
        self._raw.raw.seek(offset)
        self.content_bytes = offset

    def _content_into(self, view: memoryview, limit: int | None) -> int:
        """Fill `view` with the next content bytes, none past `limit`; hashed and
        counted. Fewer than asked only at the end of the content."""
        if limit is not None:
            view = view[:max(0, limit - self.content_bytes)]
        filled = 0
        try:
            while filled < len(view) and (count := self._stream.readinto(view[filled:])):
                filled += count
        except (EOFError, OSError, zlib.error, pa.ArrowException) as exc:
            raise self._corrupt(exc) from exc
        self.content_bytes += filled
        if self.hashing:
            self._content_hash.update(view[:filled])
        return filled

    def _content(self, size: int, limit: int | None) -> bytes:
        """Up to `size` more content bytes, none past `limit`; hashed and counted."""
        if limit is not None:
            size = min(size, limit - self.content_bytes)
        if size <= 0:
            return b""
        data = self._read(size)
        self.content_bytes += len(data)
        if self.hashing:
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


def holds_content(path: Path) -> bool:
    """Whether the file at `path` holds any content (decompressed) byte: a small read.
    A file that cannot be read counts as holding some (its reader says what is wrong)."""
    try:
        with LogSource.open(path, hashing=False) as source:
            return bool(source.read_content(1))
    except InputError:
        return True


def _after_last_newline(data: memoryview) -> int:
    """The index after the last newline in `data`; 0 when it has none. Lines are short,
    so the end is looked at first."""
    tail = max(0, len(data) - (1 << 16))
    at = data[tail:].tobytes().rfind(b"\n")
    if at >= 0:
        return tail + at + 1
    newlines = np.flatnonzero(np.frombuffer(data[:tail], dtype=np.uint8) == 10)
    return int(newlines[-1]) + 1 if newlines.size else 0


def lines_array(data: bytes | pa.Buffer) -> pa.StringArray:
    """Cut `data` after each newline into an Arrow string array, without copying lines.
    Invalid UTF-8 is shown as `\\xHH` escapes (see LogSource.blocks)."""
    offsets = native.line_offsets(data)  # one pass in C, where it was built and the
    if offsets is not None:              # bytes are valid UTF-8
        return _string_array(offsets, data)
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    ends = newlines + 1
    if not ends.size or ends[-1] != len(data):
        ends = np.append(ends, len(data))  # a last line with no final newline
    array = _string_array(np.concatenate(([0], ends)).astype(np.int32).tobytes(), data)
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        text = data.to_pybytes() if isinstance(data, pa.Buffer) else data
        return lines_array(text.decode("utf-8", "backslashreplace").encode("utf-8"))
    return array


def _string_array(offsets: bytes, data: bytes | pa.Buffer) -> pa.StringArray:
    return pa.StringArray.from_buffers(len(offsets) // 4 - 1, pa.py_buffer(offsets),
                                       pa.py_buffer(data))


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
