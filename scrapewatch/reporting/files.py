"""Report files under --out: report.json, entities.csv, periods.csv, their typed Parquet
twins (entities.parquet, periods.parquet: money as decimal(38,2), times as UTC
timestamps) for the next step of a pipeline, and rejects.

The files of one run are written into a new folder beside --out and swapped in whole
(`out_folder`), so a reader never sees half a file or a mix of two runs, and a symlink
planted at or in the folder is never followed.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from scrapewatch.config import ROUNDINGS
from scrapewatch.errors import OutputError
from scrapewatch.reporting.escape import for_csv, for_terminal
from scrapewatch.reporting.model import Report, finding_json, window_json

ENTITY_COLUMNS = ("entity", "entity_kind", "total_posts", "requests", "peak_24h_posts",
                  "peak_start", "peak_end", "first_crossing_at", "periods", "damages_usd",
                  "damages_full", "damages_prorata", "damages_started")
PERIOD_COLUMNS = ("entity", "entity_kind", "start", "end", "posts", "requests", "damages_usd",
                  "evidence")
REJECT_COLUMNS = ("file", "line", "reason", "text")


def write_report_json(report: Report, stream: TextIO) -> None:
    """report.json, pretty-printed, keys in contract order, its long lists (entities,
    watchlist, allowed) written an item at a time."""
    # ASCII only: a control or bidi character from a log becomes a \\u escape, harmless
    # on a terminal
    document = report.to_json(lists=False)
    marks = {key: f"@@{key}@@" for key in ("entities", "watchlist", "allowed")}
    text = json.dumps({k: marks.get(k, v) for k, v in document.items()}, indent=2,
                      ensure_ascii=True)
    items: dict[str, Iterable[dict[str, Any]]] = {
        "entities": (finding_json(f) for f in report.findings),
        "watchlist": (window_json(w) for w in report.watchlist),
        "allowed": (finding_json(f) for f in report.allowed)}
    for key, mark in marks.items():
        before, text = text.split(json.dumps(mark), 1)
        stream.write(before)
        _write_list(stream, items[key])
    stream.write(text + "\n")


def _write_list(stream: TextIO, items: Iterable[dict[str, Any]]) -> None:
    """A list at the first level of report.json, as json.dump(indent=2) writes it."""
    empty = True
    for item in items:
        stream.write("[\n    " if empty else ",\n    ")
        stream.write(_indented(item, "\n    "))
        empty = False
    stream.write("[]" if empty else "\n  ]")


def _indented(value: Any, newline: str) -> str:
    """`value` as json.dumps(value, indent=2, ensure_ascii=True) writes it at the depth
    whose line break (and indent) is `newline`; several times faster, since an indented
    json.dumps runs the pure-Python encoder (report.json may hold millions of entities)."""
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = newline + "  "
        return ("{" + inner + ("," + inner).join(
            f"{encode_basestring_ascii(k)}: {_indented(v, inner)}" for k, v in value.items())
                + newline + "}")
    if isinstance(value, list):
        if not value:
            return "[]"
        inner = newline + "  "
        return ("[" + inner + ("," + inner).join(_indented(v, inner) for v in value)
                + newline + "]")
    return json.dumps(value)  # numbers, true, false, null


def write_entities_csv(report: Report, stream: TextIO) -> None:
    """One row per flagged entity, largest damages first."""
    _write_csv(stream, ENTITY_COLUMNS, (
        [e["entity"], e["entity_kind"], e["total_posts"], e["requests"], e["peak_24h_posts"],
         e["peak_start"], e["peak_end"], e["first_crossing_at"], len(e["periods"]),
         e["damages_usd"], *e["damages_by_rounding"].values()]
        for e in map(finding_json, report.findings)))


def write_periods_csv(report: Report, stream: TextIO) -> None:
    """One row per charged period; evidence: each file (its SHA-256) and the period's
    first and last line in it, `;`-separated."""
    _write_csv(stream, PERIOD_COLUMNS, (
        [e["entity"], e["entity_kind"], p["start"], p["end"], p["posts"], p["requests"],
         p["damages_usd"], "; ".join(f"{f['file']} (sha256 {f['sha256']}) lines "
                                     f"{f['first_line']}-{f['last_line']}"
                                     for f in p["evidence"])]
        for e in map(finding_json, report.findings) for p in e["periods"]))


_TIME = pa.timestamp("s", tz="UTC")
_MONEY = pa.decimal128(38, 2)
_EVIDENCE = pa.list_(pa.struct([("file", pa.string()), ("sha256", pa.string()),
                                ("first_line", pa.int64()), ("last_line", pa.int64()),
                                ("requests", pa.int64()), ("posts", pa.int64())]))
_ENTITY_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("entity", "entity_kind")]
    + [(name, pa.int64()) for name in ("total_posts", "requests", "peak_24h_posts")]
    + [(name, _TIME) for name in ("peak_start", "peak_end", "first_crossing_at")]
    + [("periods", pa.int32()), ("damages_usd", _MONEY)]
    + [(f"damages_{r}", _MONEY) for r in ROUNDINGS])
_PERIOD_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("entity", "entity_kind")]
    + [(name, _TIME) for name in ("start", "end")]
    + [(name, pa.int64()) for name in ("posts", "requests")]
    + [("damages_usd", _MONEY), ("evidence", _EVIDENCE)])
PARQUET_ROWS = 4_096  # rows per row group: few enough that their dicts stay small


def write_entities_parquet(report: Report, stream: BinaryIO) -> None:
    """entities.csv as typed Parquet."""
    _write_parquet(stream, _ENTITY_SCHEMA, report, lambda e: [{
        **{name: e[name] for name in ("entity", "entity_kind", "total_posts", "requests",
                                      "peak_24h_posts")},
        **{name: _instant(e[name]) for name in ("peak_start", "peak_end",
                                                "first_crossing_at")},
        "periods": len(e["periods"]), "damages_usd": Decimal(e["damages_usd"]),
        **{f"damages_{r}": Decimal(e["damages_by_rounding"][r]) for r in ROUNDINGS}}])


def write_periods_parquet(report: Report, stream: BinaryIO) -> None:
    """periods.csv as typed Parquet, the evidence as a list of files."""
    names = _EVIDENCE.value_type.names
    _write_parquet(stream, _PERIOD_SCHEMA, report, lambda e: [{
        "entity": e["entity"], "entity_kind": e["entity_kind"], "start": _instant(p["start"]),
        "end": _instant(p["end"]), "posts": p["posts"], "requests": p["requests"],
        "damages_usd": Decimal(p["damages_usd"]),
        "evidence": [{k: f[k] for k in names} for f in p["evidence"]]}
        for p in e["periods"]])


def _write_parquet(stream: BinaryIO, schema: pa.Schema, report: Report,
                   rows_of: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> None:
    """A Parquet file of the rows `rows_of` makes of each finding's JSON, written a row
    group of about PARQUET_ROWS rows at a time."""
    with pq.ParquetWriter(stream, schema) as writer:
        rows: list[dict[str, Any]] = []
        for finding in report.findings:
            rows += rows_of(finding_json(finding))
            if len(rows) >= PARQUET_ROWS:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        if rows or not report.findings:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def write_rejects(rows: Iterable[tuple[str, int, str, str]], stream: TextIO) -> None:
    """Rejected lines: file, line number, reason and the line (cut)."""
    _write_csv(stream, REJECT_COLUMNS, rows)


def _write_csv(stream: TextIO, header: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([for_csv(for_terminal(cell) if isinstance(cell, str) else cell)
                      for cell in row] for row in rows)


# The files an output folder may hold: a folder holding anything else is not replaced.
OUT_FILES = frozenset({"report.json", "entities.csv", "periods.csv", "report.html",
                       "rejects", "entities.parquet", "periods.parquet", "manifest.json"})
# A temporary file that earlier versions, which wrote into the folder itself, left
# when they died writing it.
_LEFTOVER = re.compile(rf"\.(?:{'|'.join(map(re.escape, OUT_FILES))})\.[a-z0-9_]{{8}}")


class OutFolder:
    """The new output folder, written beside `out` under a hidden name; see out_folder."""

    def __init__(self, out: Path, folder: Path) -> None:
        self.out = out
        self.folder = folder
        self.paths: list[Path] = []  # the files written, by their final path

    def write(self, name: str, write: Callable[[Any], None], *, binary: bool = False
              ) -> Path:
        """Write the file `name` (one of OUT_FILES) with `write`, which gets a text
        stream (UTF-8, no newline translation) or, when `binary`, a binary one; return
        its final path, `out/name`.

        Raises:
            OutputError: naming the file and the cause, on any OSError.
        """
        if name not in OUT_FILES:
            raise ValueError(f"{name!r} is not in OUT_FILES")
        final = self.out / name
        # a new name in a folder of our own: O_EXCL | O_NOFOLLOW never opens what is there
        flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0))
        try:
            handle = os.open(self.folder / name, flags, 0o666)  # the umask applies
            with (open(handle, "wb") if binary
                  else open(handle, "w", encoding="utf-8", newline="")) as stream:
                write(stream)
                stream.flush()
                os.fsync(stream.fileno())  # complete on disk before it is swapped in
        except OSError as error:
            raise OutputError(f"cannot write {final}: {cause_of(error)}; {self.out} was left "
                              "as it was") from error
        except BaseException as error:  # a bug: still say which file it was writing
            error.add_note(f"while writing {final}")
            raise
        self.paths.append(final)
        return final


@contextlib.contextmanager
def out_folder(out: Path) -> Iterator[OutFolder]:
    """Write a whole output set aside, then swap it in for `out`: readers of `out` see
    the previous set or this one, never a mix, and a failure leaves `out` as it was.

    The set is written into a new hidden folder beside `out` (`.NAME.tmp-XXXXXXXX`, same
    parent, so renames are atomic); when the block ends without an error, `out` is
    renamed aside, the new folder renamed to `out`, and the old one removed. A failure
    removes the new folder and leaves `out` untouched. What a crash leaves:

    - while the files are written: `out` as it was, and a partial `.NAME.tmp-*` beside it;
    - after `out` is renamed aside: no `out`; the previous set complete in
      `.NAME.old-*`, the new one complete in `.NAME.tmp-*` (rename either to `out`);
    - after the new folder is renamed in: the new set in `out`, the previous one in
      `.NAME.old-*`.

    Nothing is followed out of `out`'s parent: a symbolic link at `out` is refused, one
    inside it is removed with the folder (never its target), and files are created new
    in a folder of our own. An existing `out` is replaced only when it is a folder
    holding nothing but report files (OUT_FILES); anything else is refused, never
    deleted.

    Raises:
        OutputError: when `out` is not replaceable, or the folder cannot be made or
            swapped in; and (from OutFolder.write) when a file cannot be written.
    """
    target = Path(os.path.abspath(out))
    if not target.name:
        raise OutputError(f"cannot replace {out} by a report: give a folder below it")
    _check_replaceable(out, target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = OutFolder(out, Path(tempfile.mkdtemp(dir=target.parent,
                                                       prefix=f".{target.name[:100]}.tmp-")))
    except OSError as error:
        raise OutputError(f"cannot make a folder in {target.parent} for {out}: "
                          f"{cause_of(error)}") from error
    try:
        yield staging
        _swap_in(out, target, staging.folder)
    except BaseException:
        shutil.rmtree(staging.folder, ignore_errors=True)
        raise


def _check_replaceable(out: Path, target: Path) -> None:
    """Raise OutputError unless `target` is missing or a real folder holding only report
    files (each a file or a symbolic link, which is removed, not followed)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise OutputError(f"cannot use {out} for the report: {cause_of(error)}") from error
    if stat.S_ISLNK(mode):
        raise OutputError(f"{out} is a symbolic link, which --out does not follow; give the "
                          "folder it points to, or a new path")
    if not stat.S_ISDIR(mode):
        raise OutputError(f"{out} exists and is not a folder; give a folder for the report")
    try:
        with os.scandir(target) as entries:
            foreign = sorted(e.name for e in entries
                             if (e.name not in OUT_FILES and not _LEFTOVER.fullmatch(e.name))
                             or e.is_dir(follow_symlinks=False))
    except OSError as error:
        raise OutputError(f"cannot read {out}: {cause_of(error)}") from error
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise OutputError(
            f"{out} holds {', '.join(foreign[:3])}{more}, which scrapewatch does not write; "
            "--out replaces the whole folder, so give a new or empty folder, or one holding "
            "only an earlier report")


def _swap_in(out: Path, target: Path, new: Path) -> None:
    """Put the complete folder `new` at `target` (see out_folder for the crash windows)."""
    _check_replaceable(out, target)  # again: it may have changed while the files were written
    old = None
    try:
        _fsync(new)  # the folder's entries on disk before it is renamed in
        if os.path.lexists(target):
            os.chmod(new, stat.S_IMODE(os.lstat(target).st_mode))
            # an empty folder of a new name, replaced by `out` itself: rename never
            # follows a link and never overwrites a folder that holds anything
            old = tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name[:100]}.old-")
            os.rename(target, old)
        else:
            os.chmod(new, 0o777 & ~_umask())  # as mkdir would have made it
        os.rename(new, target)
    except OSError as error:
        if old is not None and not os.path.lexists(target):
            with contextlib.suppress(OSError):  # put the previous set back
                os.rename(old, target)
        raise OutputError(f"cannot put the report in place at {out}: {cause_of(error)}"
                          + (f"; the previous one is in {old}" if old and
                             os.path.lexists(old) else "")) from error
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)  # removes links inside, never their targets
    with contextlib.suppress(OSError):
        _fsync(target.parent)  # the renames on disk


def _fsync(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def cause_of(error: OSError) -> str:
    """An OSError's cause in words, with what to do for a full or read-only disk."""
    cause = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{cause} (free some space, or give --out on another disk)"
    if error.errno == errno.EFBIG:
        return f"{cause} (over the file size limit: see ulimit -f)"
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{cause} (give --out a folder you can write)"
    return cause


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
