"""The command line: the only module that imports click, prints or exits.

Each command parses its options, makes one library call and renders the result.
Heavy modules (duckdb, pyarrow, numpy) are imported inside commands so that
`scrapewatch --help` stays instant.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn

import click

from scrapewatch import __version__


class ExitCode(IntEnum):
    """DESIGN.md's exit codes."""

    OK = 0
    ERROR = 1
    USAGE = 2
    VIOLATIONS = 3
    REJECTS = 4


PERIODS = ("greedy", "calendar", "max", "peak")
ROUNDINGS = ("full", "prorata", "started")


class TerminalProgress:
    """A one-line progress display on stderr: file, format, bytes and lines, redrawn in
    place."""

    def __init__(self) -> None:
        self._label = ""
        self._size = 0
        self._drawn = 0.0

    def start_file(self, path: Path, size: int, index: int, count: int) -> None:
        from scrapewatch.report.escape import for_terminal

        self._label = f"[{index + 1}/{count}] {for_terminal(str(path))}"
        self._size = size
        self.advance(0, 0, "", force=True)

    def advance(self, bytes_read: int, lines: int, fmt: str, force: bool = False) -> None:
        from scrapewatch.report.escape import for_terminal

        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        share = f"{bytes_read / self._size:4.0%}" if self._size else "   -"
        shown = f" ({for_terminal(fmt)})" if fmt else ""
        _redraw(f"{share} {self._label}{shown}: {bytes_read / 1e6:,.1f} MB, {lines:,} lines")

    def finish(self) -> None:
        _redraw("")


def _redraw(text: str) -> None:
    """Replace the current stderr line (carriage return, erase to the end of line)."""
    sys.stderr.write(f"\r\x1b[K{text}")
    sys.stderr.flush()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scrapewatch")
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Find who accessed more than 1,000,000 posts in any 24-hour period, and what the
    liquidated-damages clause says they owe.

    Exit codes: 0 success, 1 error, 2 usage error, 3 violations found with
    --fail-on-violation, 4 too many rejected lines.
    """
    ctx.obj = {"debug": debug}


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML config file ([policy], [entity], [posts], [input]).")
@click.option("--format", "log_format", default=None,
              help="Log format of every file: auto (sniff each file, the default), a "
                   "name listed by `scrapewatch formats`, or a custom format: "
                   "'nginx:LOG_FORMAT', 'apache:LOGFORMAT' or 'regex:REGEX' with named "
                   "groups.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write report.json, entities.csv, periods.csv and rejects here.")
@click.option("--output", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="What to print on stdout: a table, report.json, "
                                      "or entities.csv.")
@click.option("--fail-on-violation", is_flag=True,
              help="Exit with code 3 when any entity crossed the threshold.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display on stderr.")
@click.option("--memory-limit", metavar="SIZE",
              help="DuckDB memory limit [512MB]; past it, work spills to the temp folder "
                   "($TMPDIR), so memory stays flat however large the input.")
@click.option("--threshold", type=int, help="Posts a 24-hour period may hold without "
                                            "violating [policy.threshold_posts: 1000000].")
@click.option("--rate", help="USD per --per-posts posts [policy.rate_usd: 15000].")
@click.option("--per-posts", type=int, help="Posts that --rate prices [1000000].")
@click.option("--periods", type=click.Choice(PERIODS),
              help="How charged periods are chosen [greedy].")
@click.option("--rounding", type=click.Choice(ROUNDINGS),
              help="full: whole millions; prorata: to the cent; started: every started "
                   "million [full].")
@click.option("--charge", type=click.Choice(["all", "excess"]),
              help="Charge all posts of a period, or only those over the threshold [all].")
@click.option("--count-status", help="Statuses that count: all, 2xx, 304, 200-206, "
                                     "comma-separated [2xx].")
@click.option("--timezone", help="IANA zone of calendar days [UTC].")
@click.option("--effective-from", help="Ignore requests before this instant "
                                       "[2024-11-15T00:00:00Z].")
@click.option("--entity", help="Entity key order, comma-separated from api_key, user, "
                               "client_ip [api_key,user,client_ip].")
@click.option("--ipv4-prefix", type=click.IntRange(0, 32),
              help="Group IPv4 clients into networks of this prefix length [32].")
@click.option("--ipv6-prefix", type=click.IntRange(0, 128),
              help="Group IPv6 clients into networks of this prefix length [128].")
@click.option("--max-rejected-share", help="Fail (exit 4) when more than this share of "
                                           "lines is rejected [0.01].")
@click.pass_context
def scan(ctx: click.Context, /, paths: tuple[str, ...], config_path: Path | None,
         log_format: str | None, out: Path | None, output: str, fail_on_violation: bool,
         quiet: bool, memory_limit: str | None, **flags: Any) -> None:
    """Scan log files, directories (recursively) and globs; plain, .gz or .zst.

    Prints the flagged entities with their damages; --out writes the full report.
    """
    from scrapewatch.config import load_config
    from scrapewatch.pipeline import scan as run_scan
    from scrapewatch.report.files import write_entities_csv, write_report_json
    from scrapewatch.report.terminal import render_table

    overrides = {"policy.threshold_posts": flags["threshold"], "policy.rate_usd": flags["rate"],
                 "policy.per_posts": flags["per_posts"], "policy.periods": flags["periods"],
                 "policy.rounding": flags["rounding"], "policy.charge": flags["charge"],
                 "policy.count_statuses": flags["count_status"],
                 "policy.timezone": flags["timezone"],
                 "policy.effective_from": flags["effective_from"],
                 "entity.keys": flags["entity"], "entity.ipv4_prefix": flags["ipv4_prefix"],
                 "entity.ipv6_prefix": flags["ipv6_prefix"], "input.format": log_format,
                 "input.max_rejected_share": flags["max_rejected_share"]}
    _check_flags(overrides, memory_limit)
    now = _pinned_clock()
    show_progress = not quiet and sys.stderr.isatty()
    with _errors_reported(ctx):
        config = load_config(config_path, overrides=overrides)
        report = run_scan(paths, config=config, out=out, memory_limit=memory_limit, now=now,
                          progress=TerminalProgress() if show_progress else None)
        if output == "json":
            write_report_json(report, sys.stdout)
        elif output == "csv":
            write_entities_csv(report, sys.stdout)
        else:
            click.echo(render_table(report), nl=False)
    if fail_on_violation and report.findings:
        ctx.exit(ExitCode.VIOLATIONS)


@cli.command()
def formats() -> None:
    """List the log formats --format takes, each with an example line.

    Custom formats are given as 'nginx:LOG_FORMAT' (the string of an nginx log_format
    directive), 'apache:LOGFORMAT' (the string of an Apache LogFormat directive) or
    'regex:REGEX' (an RE2 regex with named groups: time and one of client, user or
    api_key, and any of request, method, path, query, status, bytes, referer,
    user_agent, posts).
    """
    from scrapewatch.ingest.formats import FORMATS

    for fmt in FORMATS.values():
        example = fmt.example.replace("\n", "\n         ")  # csv's header and a record
        click.echo(f"{fmt.name}\n    {fmt.description}\n    e.g. {example}")


@contextmanager
def _errors_reported(ctx: click.Context) -> Iterator[None]:
    """Turn library errors into one stderr line and DESIGN.md's exit code."""
    from scrapewatch.errors import RejectLimitError, ScrapewatchError

    if ctx.obj and ctx.obj.get("debug"):
        yield
        return
    try:
        yield
    except RejectLimitError as error:
        _fail(str(error), ExitCode.REJECTS)
    except ScrapewatchError as error:
        _fail(str(error), ExitCode.ERROR)
    except Exception as error:  # a bug or an engine failure: still one line, unless --debug
        first_line = str(error).splitlines()[0] if str(error) else ""
        _fail(f"unexpected {type(error).__name__}: {first_line} (run with --debug for the "
              "traceback, and please report it)", ExitCode.ERROR)


def _fail(message: str, code: ExitCode) -> NoReturn:
    from scrapewatch.report.escape import for_terminal

    click.echo(f"error: {for_terminal(message)}", err=True)
    sys.exit(code)


def _check_flags(overrides: dict[str, Any], memory_limit: str | None) -> None:
    """Reject bad option values as usage errors (exit 2), before any work."""
    from scrapewatch.config import load_config
    from scrapewatch.errors import ScrapewatchError
    from scrapewatch.ingest.formats import get_format

    try:
        load_config(None, overrides=overrides)
        if overrides["input.format"] not in (None, "auto"):
            get_format(overrides["input.format"])
    except ScrapewatchError as error:
        raise click.UsageError(str(error)) from None
    if memory_limit and not _MEMORY.fullmatch(memory_limit.strip()):
        raise click.BadParameter(f"{memory_limit!r} is not a size such as 512MB or 2GB",
                                 param_hint="--memory-limit")


_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?\s*(B|[KMGT]i?B)", re.IGNORECASE)


def _pinned_clock() -> datetime | None:
    """The run's time from SOURCE_DATE_EPOCH when set, for reproducible reports."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return None
    try:
        return datetime.fromtimestamp(int(epoch), UTC)
    except ValueError:
        raise click.BadParameter(f"SOURCE_DATE_EPOCH={epoch!r} is not whole seconds") from None


def main() -> None:
    """Console entry point."""
    cli(prog_name="scrapewatch")
