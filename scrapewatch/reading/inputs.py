"""The inputs of a run: the files that paths, directories and globs name, each once,
and what was set aside (a second path to the same file, a FIFO or a socket, a file the
--include and --exclude patterns leave out)."""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scrapewatch.config import InputConfig
from scrapewatch.errors import EmptyInputError, InputError

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class SkippedInput:
    """A path found among the inputs and not read, and why: not a regular file, no log
    format fits it, or (excluded) the --include and --exclude patterns leave it out."""

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
    excluded: list[SkippedInput] = field(default_factory=list)


def is_uri(name: str) -> bool:
    """Whether `name` is a URI (s3a://b/k, dbfs:/x, file:///x) rather than a local path,
    which only the Spark engine reads."""
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]+:/", name) is not None


def list_inputs(paths: Sequence[str], settings: InputConfig | None = None, *,
                allow_empty: bool = False, include: Sequence[str] = (),
                exclude: Sequence[str] = ()) -> Inputs:
    """The regular files named by `paths`: files as given, directories recursively
    (following symlinks), globs expanded; of the files found in directories and by
    globs, only those that match a pattern of `include` (when any) and none of
    `exclude` (see `left_out`), the others listed as excluded. `settings` (a config's
    [input]) gives `allow_empty`, `include` and `exclude` when given.

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
    if settings is not None:
        allow_empty = settings.allow_empty
        include, exclude = settings.include, settings.exclude
    listing = _Listing(tuple(include), tuple(exclude))
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
                raise InputError(f"{given}: not a regular file ({file_kind(status.st_mode)}); "
                                 "scrapewatch reads regular files only: copy it into a file")
        if not found and not allow_empty:
            raise EmptyInputError(f"no input: {given} holds no log file"
                                  f"{listing.skipped_under(given)}; pass --allow-empty "
                                  "(input.allow_empty) if that is expected")
    return Inputs(list(listing.files), listing.duplicates, listing.skipped, listing.excluded)


def left_out(path: Path, include: Sequence[str], exclude: Sequence[str]) -> str | None:
    """Why the patterns leave out the file at `path`, or None when they keep it. A
    pattern (shell-style: `*`, `?`, `[ab]`) matches the file's name, or, when it holds a
    `/`, its whole path as found (`*` then spans folders too)."""
    def matches(pattern: str) -> bool:
        return fnmatch.fnmatchcase(str(path) if "/" in pattern else path.name, pattern)

    if include and not any(map(matches, include)):
        return f"excluded: matches no --include ({', '.join(map(repr, include))})"
    hit = next(filter(matches, exclude), None)
    return None if hit is None else f"excluded by --exclude {hit!r}"


class _Listing:
    """Files found so far, known by device and inode, and what was set aside."""

    def __init__(self, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> None:
        self.include, self.exclude = include, exclude
        self.excluded: list[SkippedInput] = []
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

    def skip(self, path: Path, reason: str, *, excluded: bool = False) -> None:
        entry = SkippedInput(str(path), reason)
        if entry.path not in self._skipped_paths:  # e.g. a folder given twice
            self._skipped_paths.add(entry.path)
            (self.excluded if excluded else self.skipped).append(entry)
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
            if (reason := left_out(path, self.include, self.exclude)) is not None:
                self.skip(path, reason, excluded=True)
                return 0, None
            return self.add_file(path, status), None
        self.skip(path, f"{file_kind(status.st_mode)}, not a regular file")
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


def file_kind(mode: int) -> str:
    """What a path that is not a regular file or directory is, in words."""
    kinds = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "a special file")
