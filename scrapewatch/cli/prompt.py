"""The `sql` command's statements, typed at a prompt or piped in, and its results."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from scrapewatch.reporting.outputs import ROWS_OUTPUTS


def statements(interactive: bool) -> Iterator[str]:
    """Statements read from stdin, each ending with ';': typed at a prompt (on a
    terminal, with readline history where there is readline), or piped in."""
    try:
        import readline
    except ImportError:  # pragma: no cover - Windows
        readline = None  # type: ignore[assignment]
    history = Path.home() / ".scrapewatch_history"
    if readline is not None and history.exists():
        readline.read_history_file(history)
    text = ""
    try:
        while True:
            line = input(("sql> " if not text else "...> ") if interactive else "")
            if not text and line.strip() in (".quit", ".exit"):
                break
            text += line + "\n"
            if text.strip().endswith(";"):
                yield text
                text = ""
    except EOFError:
        pass
    finally:
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(history)


def write_result(table: Any, output: str, out_file: Path | None) -> None:
    """A query's result in the form `output` (see ROWS_OUTPUTS), on stdout or into
    `out_file`."""
    names = table.column_names
    if output in ("json", "parquet") and len(set(names)) < len(names):
        raise click.UsageError(f"--output {output} needs distinct column names; "
                               f"give them with AS ({', '.join(names)})")
    write, binary = ROWS_OUTPUTS[output]
    if out_file is None:
        write(table, sys.stdout)
        return
    try:
        with out_file.open("wb") if binary else out_file.open("w", encoding="utf-8") as stream:
            write(table, stream)
    except OSError as error:
        from scrapewatch.errors import OutputError
        from scrapewatch.reporting.files import cause_of

        raise OutputError(f"cannot write {out_file}: {cause_of(error)}") from None
