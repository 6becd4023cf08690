"""What the command line shows on the terminal: progress, results, one-line errors with
DESIGN.md's exit codes, and a stdout that may close or fill."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn

import click

from scrapewatch.reporting.outputs import REPORT_OUTPUTS


class ExitCode(IntEnum):
    """DESIGN.md's exit codes."""

    OK = 0
    ERROR = 1
    USAGE = 2
    VIOLATIONS = 3
    REJECTS = 4
    CLOSED_STDOUT = 141  # what a shell shows for a Unix tool that SIGPIPE stopped


class TerminalProgress:
    """A one-line progress display on stderr, redrawn in place: the share of the file
    parsed (not read ahead), the file and its format, the lines parsed, their rate and
    the time the rest of the file should take at that rate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._label = ""
        self._size = 0
        self._started = self._drawn = 0.0

    def start_file(self, path: Path, size: int, index: int, count: int) -> None:
        from scrapewatch.reporting.escape import for_terminal

        self._label = f"[{index + 1}/{count}] {for_terminal(str(path))}"
        self._size = size
        self._started = self._clock()
        self.advance(0, 0, "", force=True)

    def advance(self, bytes_parsed: int, lines: int, fmt: str, force: bool = False) -> None:
        from scrapewatch.reporting.escape import for_terminal

        now = self._clock()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        elapsed = now - self._started
        known = self._size and bytes_parsed  # a Parquet file tells its rows, not bytes
        share = f"{min(bytes_parsed / self._size, 1):4.0%}" if known else "   -"
        shown = f" ({for_terminal(fmt)})" if fmt else ""
        text = f"{share} {self._label}{shown}: {lines:,} lines"
        if lines and elapsed > 0:
            text += f", {lines / elapsed:,.0f} lines/s"
            if known:
                left = max(self._size - bytes_parsed, 0) * elapsed / bytes_parsed
                text += f", {_duration(left)} left"
        _redraw(text)

    def finish(self) -> None:
        _redraw("")


def _duration(seconds: float) -> str:
    """`seconds` as h:mm:ss, or m:ss under an hour."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def _redraw(text: str) -> None:
    """Replace the current stderr line (carriage return, erase to the end of line)."""
    sys.stderr.write(f"\r\x1b[K{text}")
    sys.stderr.flush()


def progress_display(quiet: bool) -> TerminalProgress | None:
    return None if quiet or not sys.stderr.isatty() else TerminalProgress()


def say_written(out: Path | None, quiet: bool) -> None:
    """The run's last line on stderr, where its files went (`wrote report/: 8 files`);
    like progress, only on a terminal and not with `quiet`."""
    from scrapewatch.reporting.escape import for_terminal

    if out is not None and progress_display(quiet) is not None:
        count = sum(1 for _ in out.iterdir())
        click.echo(f"wrote {for_terminal(str(out).rstrip('/'))}/: {count} file"
                   f"{'' if count == 1 else 's'}", err=True)


WARNINGS_SHOWN = 10


def warn_unread(unread: Sequence[Any]) -> None:
    """A warning on stderr for each input set aside unread (a SkippedInput: a stray
    file no format fits, a named pipe...), the first WARNINGS_SHOWN of them."""
    from scrapewatch.reporting.escape import for_terminal

    for entry in unread[:WARNINGS_SHOWN]:
        click.echo(f"warning: not read: {for_terminal(entry.path)} "
                   f"({for_terminal(entry.reason)})", err=True)
    if len(unread) > WARNINGS_SHOWN:
        click.echo(f"warning: and {len(unread) - WARNINGS_SHOWN:,} more not read (report.json "
                   "inputs.skipped lists them all)", err=True)
    if unread:
        click.echo("warning: --exclude GLOB leaves such files out; --strict makes a file no "
                   "format fits an error", err=True)


def print_report(report: Any, output: str) -> None:
    REPORT_OUTPUTS[output](report, sys.stdout)


@contextmanager
def errors_reported(ctx: click.Context) -> Iterator[None]:
    """Turn library errors into one stderr line and DESIGN.md's exit code; a closed
    stdout into a quiet stop (see stdout_closed)."""
    from scrapewatch.errors import RejectLimitError, ScrapewatchError

    if ctx.obj and ctx.obj.get("debug"):
        yield
        return
    try:
        yield
    except BrokenPipeError:
        stdout_closed()
    except OSError as error:
        if error.filename == _STDOUT:
            stdout_closed(f"cannot write the results to stdout: {error.strerror}")
        fail(_unexpected(error), ExitCode.ERROR)
    except RejectLimitError as error:
        fail(str(error), ExitCode.REJECTS)
    except ScrapewatchError as error:
        fail(str(error), ExitCode.ERROR)
    except click.ClickException:  # a usage error found late: click says it (exit 2)
        raise
    except Exception as error:  # a bug: still one line, unless --debug
        fail(_unexpected(error), ExitCode.ERROR)


def _unexpected(error: Exception) -> str:
    """The one line for an error no library code explains: a failure of the machine
    (a full disk, a full temp folder) in words, or else a bug, to be reported."""
    import errno

    if "duckdb" in sys.modules:  # else the failure cannot be DuckDB's
        from scrapewatch.engine.duckdb import engine_error

        if (known := engine_error(error)) is not None:
            return str(known)
    if isinstance(error, OSError) and error.errno in (
            errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES):
        return (f"{error.filename}: {error.strerror}" if error.filename else
                f"{error.strerror} (run with --debug to see which file)")
    first_line = str(error).splitlines()[0] if str(error) else ""
    notes = "".join(f" ({note})" for note in getattr(error, "__notes__", []))
    return (f"unexpected {type(error).__name__}: {first_line}{notes} (run with --debug for "
            "the traceback, and please report it)")


def fail(message: str, code: ExitCode) -> NoReturn:
    from scrapewatch.reporting.escape import for_terminal

    click.echo(f"error: {for_terminal(message)}", err=True)
    sys.exit(code)


def stdout_closed(failure: str | None = None) -> NoReturn:
    """Stop when stdout cannot be written: quietly when whoever read it has gone
    (`scrapewatch scan ... | head`), as Unix tools do, with status 141, what a shell
    shows for a tool that SIGPIPE stopped (`yes | head`); else with the `failure`.
    stdout is pointed at /dev/null first, so that Python's last flush of it at exit has
    nowhere to fail."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: no file (a test runner)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if failure is not None:
        fail(failure, ExitCode.ERROR)
    sys.exit(ExitCode.CLOSED_STDOUT)


_STDOUT = "<stdout>"


class NamedStdout:
    """sys.stdout, whose failed writes say they were stdout's (an OSError from a write
    names no file): `> /full/disk/report.json` is then told apart from a bug."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        with self._named():
            return int(self._stream.write(text))

    def flush(self) -> None:
        with self._named():
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    @staticmethod
    @contextmanager
    def _named() -> Iterator[None]:
        try:
            yield
        except OSError as error:
            error.filename = error.filename or _STDOUT
            raise
