"""What loading a file found (its counts, and why it may not have been read), and what
hears of a load's progress: the types the load (read.py) returns and the engines, the
store and the report read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Protocol

# (bytes of the file parsed so far, lines so far, the file's format): Progress.advance
Advance = Callable[[int, int, str], None]


class Progress(Protocol):
    """Receives progress of long work; the CLI draws it, tests may ignore it."""

    def start_file(self, path: Path, size: int, index: int, count: int) -> None: ...

    def advance(self, bytes_parsed: int, lines: int, fmt: str) -> None:
        """`lines` parsed so far, in format `fmt`, up to byte `bytes_parsed` of the
        file (of its compressed bytes, for a compressed file)."""

    def finish(self) -> None: ...


@dataclass(frozen=True)
class Counts:
    """What of a file's requests counted, and why the others did not: `early` before
    policy.effective_from, `uncounted` (from then on) of a status not counted; of those
    counted, their posts in all, and `unpriced` that no logged count or path rule gave
    posts to (they have posts.default). And the requests by status class (`other`: no
    status, or none from 200 to 599)."""

    early: int = 0
    uncounted: int = 0
    counted_posts: int = 0
    unpriced: int = 0
    status_2xx: int = 0
    status_3xx: int = 0
    status_4xx: int = 0
    status_5xx: int = 0
    status_other: int = 0

    def statuses(self) -> dict[str, int]:
        """The requests by status class: 2xx, 3xx, 4xx, 5xx, other."""
        return {name.removeprefix("status_"): getattr(self, name)
                for name in ("status_2xx", "status_3xx", "status_4xx", "status_5xx",
                             "status_other")}

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class FileLoad:
    """What loading one file found."""

    format: str | None  # None for an empty file
    lines: int
    requests: int
    rejected: int
    sha256: str
    first_request: int | None  # epoch seconds
    last_request: int | None
    content_sha256: str = ""  # of the decompressed bytes up to the limit read to
    content_bytes: int = 0
    counts: Counts = field(default_factory=Counts)  # what counted, and why not


UNREAD = FileLoad(None, 0, 0, 0, "", None, None)  # the load of a file set aside unread


@dataclass(frozen=True)
class LoadedFile:
    """One input file as loaded: how the report names it, its size, what the load found,
    and the SHA-256 that tells its copies: of its content, the bytes a compressed file
    decompresses to (all of which the read went through), the bytes of a plain one (a
    binary format such as Parquet is read by its own reader, which the content hash does
    not see)."""

    path: str
    size: int
    load: FileLoad
    content_sha256: str
    skipped: str | None = None  # why it was not read: no format fits it (see load_path)
