"""Input files: path expansion, transparent decompression, hashing and line blocks.

A file is read once, in large blocks: the raw bytes feed the SHA-256 (so the report can
prove which file it read), the decompressed bytes are cut at newlines into Arrow string
arrays. No Python object is made per line.
"""

from __future__ import annotations

import codecs
import errno
import glob
import gzip
import hashlib
import io
import os
import re
import stat
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from queue import Full, Queue
from typing import IO, Any, TypeVar

import numpy as np
import pyarrow as pa

from scrapewatch.errors import EmptyInputError, InputError
from scrapewatch.reading.formats import native
from scrapewatch.reading.formats.base import block_data

T = TypeVar("T")
BLOCK_BYTES = 16 << 20
MAX_LINE_BYTES = 64 << 20  # a longer "line" is not a log line: stop rather than hold it all
MARK_EVERY = 2048  # lines between two marks of where a line starts (see LogSource.marks)
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class SkippedInput:
    """A path found among the inputs and not read: not a regular file."""

    path: str
    reason: str


@dataclass(frozen=True)
class DuplicateInput:
    """An input set aside because `duplicate_of`, listed or read before it, is the same
    file (`same file`: a symlink, a hard link, another path) or holds the same content
    (`same content`: a copy, compressed or not)."""

    path: str
    duplicate_of: str
    reason: str


@dataclass(frozen=True)
class Inputs:
    """The files to read, in the order given, each once; and what was set aside."""

    files: list[Path]
    duplicates: list[DuplicateInput]
    skipped: list[SkippedInput]


def is_uri(name: str) -> bool:
    """Whether `name` is a URI (s3a://b/k, dbfs:/x, file:///x) rather than a local path,
    which only the Spark engine reads."""
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]+:/", name) is not None


def list_inputs(paths: Sequence[str], *, allow_empty: bool = False) -> Inputs:
    """The regular files named by `paths`: files as given, directories recursively
    (following symlinks), globs expanded.

    Hidden files and folders (a name starting with '.') inside directories are left
    out. The files keep the order given, each directory's files sorted before its
    subdirectories. A file reached again by another path (a symlink, a hard link,
    `a/../x.log`) is listed as a duplicate of the first; anything that is not a regular
    file (a named pipe, socket or device, a broken symlink, a symlink loop) is listed
    as skipped and never opened.

    Raises:
        InputError: for a path that does not exist or is not a regular file or
            directory, or a glob that matches nothing.
        EmptyInputError: for a directory (or glob) holding no regular file, unless
            `allow_empty`.
    """
    listing = _Listing()
    for given in paths:
        path = Path(given)
        listing.given = given
        try:
            status = os.stat(path)
        except OSError as exc:
            if not (_GLOB_CHARS & set(given)) or not isinstance(exc, FileNotFoundError):
                raise InputError(f"{given}: {_not_found(path, exc)}") from None
            found = listing.add_glob(given)
        else:
            if stat.S_ISDIR(status.st_mode):
                found = listing.add_directory(path, status)
            elif stat.S_ISREG(status.st_mode):
                found = listing.add_file(path, status)
            else:
                raise InputError(f"{given}: not a regular file ({_kind(status.st_mode)}); "
                                 "scrapewatch reads regular files only: copy it into a file")
        if not found and not allow_empty:
            raise EmptyInputError(f"no input: {given} holds no log file"
                                  f"{listing.skipped_under(given)}; pass --allow-empty "
                                  "(input.allow_empty) if that is expected")
    return Inputs(list(listing.files), listing.duplicates, listing.skipped)


class _Listing:
    """Files found so far, known by device and inode, and what was set aside."""

    def __init__(self) -> None:
        self.files: dict[Path, None] = {}
        self.seen: set[Path] = set()
        self.first: dict[tuple[int, int], Path] = {}
        self.duplicates: list[DuplicateInput] = []
        self.skipped: list[SkippedInput] = []
        self._skipped_paths: set[str] = set()
        self._skipped_from: dict[str, list[SkippedInput]] = {}
        self.given = ""  # the input being listed, which skipped paths are reported under

    def add_file(self, path: Path, status: os.stat_result) -> int:
        """List a regular file, or, when reached before by another path, its duplicate."""
        if path not in self.seen:  # the very same path again says nothing new
            self.seen.add(path)
            first = self.first.setdefault((status.st_dev, status.st_ino), path)
            if first == path:
                self.files[path] = None
            else:
                self.duplicates.append(DuplicateInput(str(path), str(first), "same file"))
        return 1

    def skip(self, path: Path, reason: str) -> None:
        entry = SkippedInput(str(path), reason)
        if entry.path not in self._skipped_paths:  # e.g. a folder given twice
            self._skipped_paths.add(entry.path)
            self.skipped.append(entry)
        self._skipped_from.setdefault(self.given, []).append(entry)

    def skipped_under(self, given: str) -> str:
        """What `given` held that was skipped, for an error message: ' (skipped: ...)'."""
        entries = self._skipped_from.get(given, [])
        if not entries:
            return ""
        shown = ", ".join(f"{e.path}: {e.reason}" for e in entries[:3])
        more = f" and {len(entries) - 3} more" if len(entries) > 3 else ""
        return f" (skipped: {shown}{more})"

    def add_glob(self, pattern: str) -> int:
        """List the files `pattern` matches, and those under the directories it matches
        (as a shell would give them)."""
        matches = sorted(Path(m) for m in glob.glob(pattern, recursive=True))
        if not matches:
            raise InputError(f"no file matches {pattern!r}")
        found = 0
        for match in matches:
            count, folder_status = self._add_entry(match)
            found += count if folder_status is None else self.add_directory(match,
                                                                            folder_status)
        return found

    def add_directory(self, top: Path, status: os.stat_result) -> int:
        """List the files under `top`, depth first, each folder's files before its
        subfolders; a folder reached again is a duplicate, or, inside itself, a loop."""
        found = 0
        first = {_identity(status): top}
        pending: list[tuple[Path, tuple[tuple[int, int], ...]]] = [(top, (_identity(status),))]
        while pending:
            folder, ancestors = pending.pop()
            try:
                with os.scandir(folder) as entries:
                    names = sorted(e.name for e in entries if not e.name.startswith("."))
            except OSError as exc:
                self.skip(folder, f"cannot read the directory ({exc.strerror})")
                continue
            folders = []
            for name in names:
                count, folder_status = self._add_entry(folder / name)
                found += count
                if folder_status is not None:
                    folders.append((folder / name, _identity(folder_status)))
            walk: list[tuple[Path, tuple[tuple[int, int], ...]]] = []
            for path, identity in folders:
                if identity in ancestors:
                    self.skip(path, f"a directory symlink loop (back to {first[identity]})")
                elif identity in first:
                    self.duplicates.append(DuplicateInput(str(path), str(first[identity]),
                                                          "same directory"))
                else:
                    first[identity] = path
                    walk.append((path, (*ancestors, identity)))
            pending += reversed(walk)  # popped in name order
        return found

    def _add_entry(self, path: Path) -> tuple[int, os.stat_result | None]:
        """List `path` found in a folder or by a glob: (files listed, its status when it
        is a directory)."""
        try:
            status = os.stat(path)  # follows symlinks: a symlink counts as what it names
        except OSError as exc:
            self.skip(path, _not_found(path, exc))
            return 0, None
        if stat.S_ISDIR(status.st_mode):
            return 0, status
        if stat.S_ISREG(status.st_mode):
            return self.add_file(path, status), None
        self.skip(path, f"{_kind(status.st_mode)}, not a regular file")
        return 0, None


def _identity(status: os.stat_result) -> tuple[int, int]:
    return status.st_dev, status.st_ino


def _not_found(path: Path, error: OSError) -> str:
    """Why `path` cannot be listed: missing, a broken symlink or loop, unreadable."""
    if error.errno == errno.ELOOP:
        return "a symlink loop"
    if isinstance(error, FileNotFoundError):
        if os.path.islink(path):
            return f"a broken symlink to {os.readlink(path)}"
        return "no such file or directory"
    return f"cannot read ({error.strerror})"


def _kind(mode: int) -> str:
    """What a path that is not a regular file or directory is, in words."""
    kinds = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "a special file")


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
                raise InputError(f"{path}: not a regular file ({_kind(status.st_mode)}); "
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
        """The SHA-256 of the whole raw file; call after the blocks are consumed."""
        if self.hashing and not self._raw.hashing:
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
