"""The `sql` command's statements, typed at a prompt or piped in, and its results."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from scrapewatch.reporting.escape import for_terminal
from scrapewatch.reporting.outputs import ROWS_OUTPUTS

HISTORY = ".scrapewatch_history"  # in the home folder, kept across sessions
HISTORY_LENGTH = 1000
HELP = """\
End a statement with ';' (it may span lines). Commands, on a line of their own:
  .tables        the views of the store, and what each holds
  .schema NAME   the columns of a view (or table) and their types
  .help          this help
  .quit, .exit   leave (so does Ctrl-D)
Tab completes the names of views and of SQL keywords; history is kept in
~/.scrapewatch_history."""
KEYWORDS = ("SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "JOIN",
            "COUNT", "DISTINCT", "DESCRIBE", "WITH", "AS", "AND", "OR", "NOT", "DESC")


def statements(interactive: bool, views: dict[str, str]) -> Iterator[str]:
    """Statements read from stdin, each ending with ';': typed at a prompt (on a
    terminal, with history kept across sessions and tab completion where there is
    readline, and the dot commands of HELP), or piped in. `views`: the store's views,
    by name, with what each holds (.tables, completion)."""
    readline = _readline(views) if interactive else None  # a script leaves no history
    text = ""
    try:
        while True:
            line = input(("sql> " if not text else "...> ") if interactive else "")
            if not text and line.strip().startswith("."):
                command, _, argument = line.strip().partition(" ")
                if command in (".quit", ".exit"):
                    break
                if readline is not None:
                    readline.add_history(line.strip())
                if (sql := _dot_command(command, argument.strip(), views)) is not None:
                    yield sql
                continue
            text += line + "\n"
            if text.strip().endswith(";"):
                if readline is not None:  # one line: the history file keeps one a line
                    readline.add_history(" ".join(part.strip() for part in text.split("\n")
                                                  if part.strip()))
                yield text
                text = ""
    except EOFError:
        pass
    finally:
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(Path.home() / HISTORY)


def _dot_command(command: str, argument: str, views: dict[str, str]) -> str | None:
    """What a dot command prints (on stdout) or, for .schema, the SQL that answers it."""
    usage = ""
    if command == ".tables":
        width = max(map(len, views))
        click.echo("\n".join(f"{name:{width}}  {what}" for name, what in views.items()))
    elif command == ".schema" and argument:
        from scrapewatch.sql import quote_ident

        try:
            return f"DESCRIBE {quote_ident(argument.rstrip(';'))};"
        except ValueError:
            usage = f"{argument!r} is not a view's name"
    elif command == ".help":
        click.echo(HELP)
    elif command == ".schema":
        usage = ".schema needs a name: .schema files"
    else:
        usage = f"unknown command {command}"
    if usage:
        click.echo(f"error: {for_terminal(usage)}; .help lists the commands", err=True)
    return None


def _readline(views: dict[str, str]) -> Any:
    """The readline module set up for the prompt (history, completion), or None."""
    try:
        import readline
    except ImportError:  # pragma: no cover - Windows
        return None
    readline.set_auto_history(False)  # a statement of several lines is one entry
    readline.set_history_length(HISTORY_LENGTH)
    readline.clear_history()  # this session's history is the file's, whatever ran before
    with contextlib.suppress(OSError):
        readline.read_history_file(Path.home() / HISTORY)
    readline.set_completer(completer([*views, *KEYWORDS]))
    readline.set_completer_delims(" \t\n,;()=<>'\"")
    readline.parse_and_bind("tab: complete")
    return readline


def completer(words: list[str]) -> Callable[[str, int], str | None]:
    """A readline completer over `words` (view names, keywords): the `state`th word
    that starts with `text`, in either letter case."""
    def complete(text: str, state: int) -> str | None:
        matches = [w if not text or text[0].isupper() or w.islower() else w.lower()
                   for w in words if w.lower().startswith(text.lower())]
        return matches[state] if state < len(matches) else None
    return complete


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
