"""The command line: the only module that imports click, prints or exits.

Each command parses its options, makes one library call and renders the result.
Heavy modules (duckdb, pyarrow, numpy) are imported inside commands so that
`scrapewatch --help` stays instant.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar, cast

import click

from scrapewatch.config import CHARGES, PERIODS, ROUNDINGS
from scrapewatch.reading.formats import native
from scrapewatch.reporting.outputs import REPORT_OUTPUTS, ROWS_OUTPUTS
from scrapewatch.version import __version__


class ExitCode(IntEnum):
    """DESIGN.md's exit codes."""

    OK = 0
    ERROR = 1
    USAGE = 2
    VIOLATIONS = 3
    REJECTS = 4
    CLOSED_STDOUT = 141  # what a shell shows for a Unix tool that SIGPIPE stopped


F = TypeVar("F", bound=Callable[..., Any])


class TerminalProgress:
    """A one-line progress display on stderr: file, format, bytes and lines, redrawn in
    place."""

    def __init__(self) -> None:
        self._label = ""
        self._size = 0
        self._drawn = 0.0

    def start_file(self, path: Path, size: int, index: int, count: int) -> None:
        from scrapewatch.reporting.escape import for_terminal

        self._label = f"[{index + 1}/{count}] {for_terminal(str(path))}"
        self._size = size
        self.advance(0, 0, "", force=True)

    def advance(self, bytes_read: int, lines: int, fmt: str, force: bool = False) -> None:
        from scrapewatch.reporting.escape import for_terminal

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
@click.version_option(__version__, prog_name="scrapewatch", message=(
    "%(prog)s, version %(version)s\nnative reader (lines; fields of common, combined, "
    "vhost_combined, ALB, ELB, CSV, TSV, CloudFront and flat JSON lines): " + (
        "built" if native.built() else
        "not built (no C compiler at install time): numpy and DuckDB do it, more slowly")))
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Find who accessed more than 1,000,000 posts in any 24-hour period, and what the
    liquidated-damages clause says they owe.

    Exit codes: 0 success, 1 error, 2 usage error, 3 violations found with
    --fail-on-violation, 4 too many rejected lines.
    """
    ctx.obj = {"debug": debug}


def _options(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Apply click options in the order listed (so --help lists them that way)."""
    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command
    return apply


_CONFIG = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    help="TOML config file ([policy], [entity], [posts], [input]).")
_FORMAT = click.option(
    "--format", "log_format", default=None,
    help="Log format of every file: auto (sniff each file, the default), a name listed by "
         "`scrapewatch formats`, or a custom format: 'nginx:LOG_FORMAT', "
         "'apache:LOGFORMAT' or 'regex:REGEX' with named groups.")
_REPORT_OUTPUT = _options(
    click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                 help="Write report.json, report.html, entities.csv, periods.csv and rejects "
                      "here."),
    click.option("--output", type=click.Choice(list(REPORT_OUTPUTS)), default="table",
                 show_default=True, help="What to print on stdout: a table, report.json, "
                                         "or entities.csv."),
    click.option("--fail-on-violation", is_flag=True,
                 help="Exit with code 3 when any entity crossed the threshold."),
    click.option("--pseudonymise", is_flag=True,
                 help="Show entities as keyed hashes (anon-...) in every output, and "
                      "rejected lines without their text, so the report can be shared; "
                      "the same key gives the same pseudonyms."),
    click.option("--pseudonym-key", "pseudonym_key_file", metavar="FILE",
                 type=click.Path(dir_okay=False, exists=True, path_type=Path),
                 help="The key for --pseudonymise (at least 16 bytes); else the "
                      "SCRAPEWATCH_PSEUDONYM_KEY environment variable."))
_QUIET = click.option("--quiet", "-q", is_flag=True, help="No progress display on stderr.")
_MEMORY_LIMIT = click.option(
    "--memory-limit", metavar="SIZE",
    help="DuckDB memory limit [512MB]; past it, work spills to the temp folder ($TMPDIR), "
         "so memory stays flat however large the input.")


def _number(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """An option callback that checks a number setting against its range (declared in
    config.py) as soon as it is read, so that the error names the option."""
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        from scrapewatch.config import load_config
        from scrapewatch.errors import ConfigError

        if value is not None:
            try:
                load_config(None, overrides={key: value})
            except ConfigError as error:
                raise click.BadParameter(str(error)) from None
        return value
    return check


_POLICY = _options(
    click.option("--threshold", type=int, callback=_number("policy.threshold_posts"),
                 help="Posts a 24-hour period may hold without violating "
                      "[policy.threshold_posts: 1000000]."),
    click.option("--rate", callback=_number("policy.rate_usd"),
                 help="USD per --per-posts posts [policy.rate_usd: 15000]."),
    click.option("--per-posts", type=int, callback=_number("policy.per_posts"),
                 help="Posts that --rate prices [1000000]."),
    click.option("--periods", type=click.Choice(PERIODS),
                 help="How charged periods are chosen [greedy]."),
    click.option("--rounding", type=click.Choice(ROUNDINGS),
                 help="full: whole millions; prorata: to the cent; started: every started "
                      "million [full]."),
    click.option("--charge", type=click.Choice(CHARGES),
                 help="Charge all posts of a period, or only those over the threshold [all]."),
    click.option("--timezone", help="IANA zone of calendar days [UTC]."))
# settings that decide each request's activity: a store keeps those of its first ingest
_READING = _options(
    click.option("--count-status", help="Statuses that count: all, 2xx, 304, 200-206, "
                                        "comma-separated [2xx]."),
    click.option("--effective-from", help="Ignore requests before this instant "
                                          "[2024-11-15T00:00:00Z]."),
    click.option("--entity", help="Entity key order, comma-separated from api_key, user, "
                                  "client_ip [api_key,user,client_ip]."),
    click.option("--ipv4-prefix", type=click.IntRange(0, 32),
                 help="Group IPv4 clients into networks of this prefix length [32]."),
    click.option("--ipv6-prefix", type=click.IntRange(0, 128),
                 help="Group IPv6 clients into networks of this prefix length [128]."),
    click.option("--max-rejected-share", callback=_number("input.max_rejected_share"),
                 help="Fail (exit 4) when more than this share of lines is rejected [0.01]."))
_ALLOW_EMPTY = click.option(
    "--allow-empty", is_flag=True,
    help="Succeed with an empty report when there is no input (a directory without log "
         "files, or no line in them all) [input.allow_empty: false]; else that is an "
         "error (exit 1).")
_ENGINE = _options(
    click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb",
                 show_default=True,
                 help="Where the logs are parsed and detection runs: DuckDB in this process, or "
                      "Apache Spark, one task per file on its executors (needs "
                      "`pip install 'scrapewatch[spark]'` and Java 17+); same report."),
    click.option("--spark-master", metavar="URL",
                 help="With --engine spark: the cluster manager (local[N], yarn, "
                      "k8s://https://host:port, spark://host:port) [local[*], or "
                      "spark-submit's --master under spark-submit]."),
    click.option("--spark-remote", metavar="URL",
                 help="With --engine spark: a Spark Connect server (sc://host:15002) to run "
                      "on instead of --spark-master."))
_STORE = _options(
    click.option("--store", type=click.Path(dir_okay=False, path_type=Path), required=True,
                 help="The store: a DuckDB database file."),
    click.option("--wait", "wait_s", type=click.FloatRange(0), default=0, show_default=True,
                 help="Seconds to wait while another process writes the store."))


def _overrides(flags: dict[str, Any], log_format: str | None = None) -> dict[str, Any]:
    """Config overrides (`section.name` -> value) from the options given."""
    names = {"threshold": "policy.threshold_posts", "rate": "policy.rate_usd",
             "per_posts": "policy.per_posts", "periods": "policy.periods",
             "rounding": "policy.rounding", "charge": "policy.charge",
             "count_status": "policy.count_statuses", "timezone": "policy.timezone",
             "effective_from": "policy.effective_from", "entity": "entity.keys",
             "ipv4_prefix": "entity.ipv4_prefix", "ipv6_prefix": "entity.ipv6_prefix",
             "max_rejected_share": "input.max_rejected_share"}
    overrides = {key: flags.get(flag) for flag, key in names.items()}
    overrides["input.format"] = log_format
    overrides["input.allow_empty"] = flags.get("allow_empty") or None  # not given: the config's
    return overrides


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@_options(_CONFIG, _FORMAT, _ALLOW_EMPTY, _REPORT_OUTPUT, _QUIET, _MEMORY_LIMIT, _ENGINE,
          _POLICY, _READING)
@click.pass_context
def scan(ctx: click.Context, /, paths: tuple[str, ...], config_path: Path | None,
         log_format: str | None, out: Path | None, output: str, fail_on_violation: bool,
         pseudonymise: bool, pseudonym_key_file: Path | None, quiet: bool,
         memory_limit: str | None, engine: str, spark_master: str | None,
         spark_remote: str | None,
         **flags: Any) -> None:
    """Scan log files, directories (recursively) and globs; plain, .gz or .zst.

    Prints the flagged entities with their damages; --out writes the full report.
    With --engine spark, each file is loaded by a task on Spark's executors, with the
    same parse, and detection runs on Spark; the report is the same.
    """
    from scrapewatch.config import load_config
    from scrapewatch.pipeline import scan as run_scan

    overrides = _overrides(flags, log_format)
    _check_flags(overrides, memory_limit)
    _check_engine(engine, spark_master, spark_remote, memory_limit)
    now = _pinned_clock()
    key = _pseudonym_key(pseudonymise, pseudonym_key_file)
    with _errors_reported(ctx):
        config = load_config(config_path, overrides=overrides)
        spark = _spark(spark_master, spark_remote, quiet) if engine == "spark" else None
        report = run_scan(paths, config=config, out=out, memory_limit=memory_limit, now=now,
                          progress=_progress(quiet), pseudonym_key=key, spark=spark)
        _print_report(report, output)
    if fail_on_violation and report.findings:
        ctx.exit(ExitCode.VIOLATIONS)


def _check_engine(engine: str, master: str | None, remote: str | None,
                  memory_limit: str | None) -> None:
    """Reject options that do not apply to the engine chosen (exit 2)."""
    if engine != "spark" and (master or remote):
        raise click.UsageError("--spark-master and --spark-remote need --engine spark")
    if engine == "spark" and master and remote:
        raise click.UsageError("give --spark-master or --spark-remote, not both")
    if engine == "spark" and memory_limit:
        raise click.UsageError("--memory-limit is DuckDB's; Spark's memory is set by its own "
                               "configuration (spark.driver.memory, spark.executor.memory)")


def _spark(master: str | None, remote: str | None, quiet: bool = True) -> Any:
    """A Spark session, or a clear error when PySpark is not installed."""
    from scrapewatch.errors import ConfigError

    try:
        from scrapewatch.engine.spark import spark_session
    except ImportError as exc:
        raise ConfigError("--engine spark needs PySpark: pip install 'scrapewatch[spark]' "
                          f"({exc})") from exc
    return spark_session(master, remote, progress=_progress(quiet) is not None)


def _progress(quiet: bool) -> TerminalProgress | None:
    return None if quiet or not sys.stderr.isatty() else TerminalProgress()


def _print_report(report: Any, output: str) -> None:
    REPORT_OUTPUTS[output](report, sys.stdout)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@_options(_STORE, _CONFIG, _FORMAT, _ALLOW_EMPTY, _READING)
@click.option("--keep-requests", is_flag=True,
              help="Also keep every parsed request (file, line, entity, posts) for "
                   "drill-down; the store grows with the logs.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="The run summary on stdout: a table or JSON.")
@click.option("--fail-on-violation", is_flag=True,
              help="Exit with code 3 when the store, after this ingest, holds a violation.")
@click.option("--pseudonymise", is_flag=True,
              help="Show the entities of the summary as keyed hashes (see scan).")
@click.option("--pseudonym-key", "pseudonym_key_file", metavar="FILE",
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The key for --pseudonymise; else SCRAPEWATCH_PSEUDONYM_KEY.")
@_options(_QUIET, _MEMORY_LIMIT)
@click.pass_context
def ingest(ctx: click.Context, /, paths: tuple[str, ...], store: Path, wait_s: float,
           config_path: Path | None, log_format: str | None, keep_requests: bool, output: str,
           fail_on_violation: bool, pseudonymise: bool, pseudonym_key_file: Path | None,
           quiet: bool, memory_limit: str | None, **flags: Any) -> None:
    """Add log files to a store, creating it on first use.

    A file whose content the store holds adds nothing; a file that extends content
    the store holds (a log still being appended to, or rotated and compressed) adds
    only its new lines. Each file is one transaction; a file that cannot be read is
    reported as failed (exit 1) and the others still go in. Then detection runs over
    the whole store; the summary gives files added, skipped and failed, rejects and
    findings.
    """
    import json

    from scrapewatch.config import load_config
    from scrapewatch.store import ingest as run_ingest

    overrides = _overrides(flags, log_format)
    _check_flags(overrides, memory_limit)
    key = _pseudonym_key(pseudonymise, pseudonym_key_file)
    with _errors_reported(ctx):
        config = load_config(config_path, overrides=overrides)
        summary = run_ingest(store, paths, config=config, keep_requests=keep_requests,
                             wait_s=wait_s, progress=_progress(quiet),
                             memory_limit=memory_limit, now=_pinned_clock(), pseudonym_key=key)
        if output == "json":
            click.echo(json.dumps(summary.to_json(), indent=2, ensure_ascii=True))
        else:
            click.echo(summary.render(), nl=False)
    if summary.failed:
        _fail(f"{len(summary.failed)} file(s) could not be read; see the summary",
              ExitCode.ERROR)
    if fail_on_violation and summary.report.findings:
        ctx.exit(ExitCode.VIOLATIONS)


@cli.command()
@_options(_STORE, _CONFIG)
@click.option("--since", help="Only activity at or after this instant (ISO 8601).")
@click.option("--until", help="Only activity before this instant (ISO 8601).")
@_options(_REPORT_OUTPUT, _MEMORY_LIMIT, _ENGINE, _POLICY, _READING)
@click.pass_context
def report(ctx: click.Context, /, store: Path, wait_s: float, config_path: Path | None,
           since: str | None, until: str | None, out: Path | None, output: str,
           fail_on_violation: bool, pseudonymise: bool, pseudonym_key_file: Path | None,
           memory_limit: str | None, engine: str, spark_master: str | None,
           spark_remote: str | None, **flags: Any) -> None:
    """Detect violations and total the damages over a store, as scan does over files.

    The policy may differ from the ingests'; the settings that decide each request's
    activity (entity, posts rules, --count-status, --effective-from) must not. With
    --engine spark, the store's activity goes to Spark as Parquet (in the temp folder,
    which the executors must see) and detection runs there.
    """
    from scrapewatch.config import load_config
    from scrapewatch.store import report as run_report

    overrides = _overrides(flags)
    _check_flags(overrides, memory_limit)
    _check_engine(engine, spark_master, spark_remote, None)
    key = _pseudonym_key(pseudonymise, pseudonym_key_file)
    with _errors_reported(ctx):
        config = load_config(config_path, overrides=overrides)
        result = run_report(store, config=config, out=out, now=_pinned_clock(),
                            wait_s=wait_s, memory_limit=memory_limit, pseudonym_key=key,
                            spark=_spark(spark_master, spark_remote)
                            if engine == "spark" else None,
                            since=_instant(since, "--since") if since else None,
                            until=_instant(until, "--until") if until else None)
        _print_report(result, output)
    if fail_on_violation and result.findings:
        ctx.exit(ExitCode.VIOLATIONS)


@cli.command()
@_options(_STORE)
@click.option("--before", required=True, help="Drop activity before this instant (ISO 8601).")
@click.pass_context
def prune(ctx: click.Context, /, store: Path, wait_s: float, before: str) -> None:
    """Drop a store's activity (and kept requests) older than --before.

    The manifest stays, so the files it came from are not ingested again.
    """
    from scrapewatch.store import prune as run_prune

    cutoff = _instant(before, "--before")
    with _errors_reported(ctx):
        dropped = run_prune(store, before=cutoff, wait_s=wait_s)
    click.echo(f"Dropped {dropped:,} activity rows before {cutoff.isoformat()}.")


@cli.command()
@click.argument("statement", required=False)
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The store: a DuckDB database file (opened read-only).")
@click.option("--output", type=click.Choice(list(ROWS_OUTPUTS)),
              default="table", show_default=True,
              help="How to write the result: a table, CSV, JSON lines or Parquet.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the result to this file instead of stdout (needed for parquet).")
@click.option("--allow-files", metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Let the SQL read and write files in this folder (and its subfolders): "
                   "COPY ... TO, read_csv, read_parquet, glob. Without it, the SQL sees the "
                   "store only.")
@click.pass_context
def sql(ctx: click.Context, /, statement: str | None, store: Path, output: str,
        out_file: Path | None, allow_files: Path | None) -> None:
    """Run SQL on a store, or, with no STATEMENT, open a prompt (history kept in
    ~/.scrapewatch_history; end a statement with ';', leave with .quit or Ctrl-D).
    Statements piped in run in turn; the first that fails ends the run (exit 1).

    Views: files, manifest, activity, requests (with ingest --keep-requests), rejects,
    runs, findings, periods. The SQL sees the store only: it reads and writes no other
    file (but in the --allow-files folder), cannot ATTACH, INSTALL or LOAD, and cannot
    change settings. The store is a plain DuckDB file: the duckdb CLI and Python
    package open it too.
    """
    from scrapewatch.reporting.escape import for_terminal
    from scrapewatch.store import VIEWS, query

    if output == "parquet" and out_file is None:
        raise click.UsageError("--output parquet needs --out FILE")
    with _errors_reported(ctx):
        if statement is not None:
            _write_result(query(store, statement, allow_files=allow_files), output, out_file)
            return
        interactive = sys.stdin.isatty()
        if interactive:
            click.echo("Views: " + "; ".join(f"{name} ({what})" for name, what in VIEWS.items()),
                       err=True)
        for text in _statements(interactive):
            try:
                _write_result(query(store, text, allow_files=allow_files), "table", None)
            except Exception as error:
                if not interactive:  # a script (a nightly job's queries): stop, exit 1
                    raise
                click.echo(f"error: {for_terminal(str(error))}", err=True)  # prompt goes on


def _statements(interactive: bool) -> Iterator[str]:
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


def _write_result(table: Any, output: str, out_file: Path | None) -> None:
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


def _pseudonym_key(pseudonymise: bool, key_file: Path | None) -> bytes | None:
    """The pseudonym key, from --pseudonym-key FILE or SCRAPEWATCH_PSEUDONYM_KEY."""
    if not pseudonymise:
        if key_file is not None:
            raise click.UsageError("--pseudonym-key is for --pseudonymise")
        return None
    key = (key_file.read_bytes().strip() if key_file is not None
           else os.environ.get("SCRAPEWATCH_PSEUDONYM_KEY", "").encode())
    if len(key) < 16:
        raise click.UsageError("--pseudonymise needs a key of at least 16 bytes: "
                               "--pseudonym-key FILE or SCRAPEWATCH_PSEUDONYM_KEY")
    return key


def _instant(value: str, option: str) -> datetime:
    from scrapewatch.config import parse_instant

    try:
        return parse_instant(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or instant",
                                 param_hint=option) from None


@cli.command()
def formats() -> None:
    """List the log formats --format takes, each with an example line.

    Custom formats are given as 'nginx:LOG_FORMAT' (the string of an nginx log_format
    directive), 'apache:LOGFORMAT' (the string of an Apache LogFormat directive) or
    'regex:REGEX' (an RE2 regex with named groups: time and one of client, user or
    api_key, and any of request, method, path, query, status, bytes, referer,
    user_agent, posts).
    """
    from scrapewatch.reading.formats import FORMATS

    for fmt in FORMATS.values():
        example = fmt.example.replace("\n", "\n         ")  # csv's header and a record
        click.echo(f"{fmt.name}\n    {fmt.description}\n    e.g. {example}")


@contextmanager
def _errors_reported(ctx: click.Context) -> Iterator[None]:
    """Turn library errors into one stderr line and DESIGN.md's exit code; a closed
    stdout into a quiet stop (see _stdout_closed)."""
    from scrapewatch.errors import RejectLimitError, ScrapewatchError

    if ctx.obj and ctx.obj.get("debug"):
        yield
        return
    try:
        yield
    except BrokenPipeError:
        _stdout_closed()
    except OSError as error:
        if error.filename == _STDOUT:
            _stdout_closed(f"cannot write the results to stdout: {error.strerror}")
        _fail(_unexpected(error), ExitCode.ERROR)
    except RejectLimitError as error:
        _fail(str(error), ExitCode.REJECTS)
    except ScrapewatchError as error:
        _fail(str(error), ExitCode.ERROR)
    except Exception as error:  # a bug: still one line, unless --debug
        _fail(_unexpected(error), ExitCode.ERROR)


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


def _fail(message: str, code: ExitCode) -> NoReturn:
    from scrapewatch.reporting.escape import for_terminal

    click.echo(f"error: {for_terminal(message)}", err=True)
    sys.exit(code)


def _stdout_closed(failure: str | None = None) -> NoReturn:
    """Stop when stdout cannot be written: quietly when whoever read it has gone
    (`scrapewatch scan ... | head`), as Unix tools do, with status 141, what a shell
    shows for a tool that SIGPIPE stopped (`yes | head`); else with the `failure`.
    stdout is pointed at /dev/null first, so that Python's last flush of it at exit has
    nowhere to fail."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: no file (a test runner)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if failure is not None:
        _fail(failure, ExitCode.ERROR)
    sys.exit(ExitCode.CLOSED_STDOUT)


def _check_flags(overrides: dict[str, Any], memory_limit: str | None) -> None:
    """Reject bad option values as usage errors (exit 2), before any work."""
    from scrapewatch.config import load_config
    from scrapewatch.errors import ScrapewatchError
    from scrapewatch.reading.formats import get_format

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


_STDOUT = "<stdout>"


class _Results:
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


def main() -> None:
    """Console entry point. Results still buffered for stdout are flushed here, where a
    reader that has gone (`| head`) or a full disk (`> /full/disk/report.json`) can be
    told apart from success, rather than in Python's own flush at exit."""
    sys.stdout = cast(TextIO, _Results(sys.stdout))
    try:
        cli(prog_name="scrapewatch")
    except SystemExit as done:
        code = done.code
    else:  # pragma: no cover - click always exits
        code = 0
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_closed()
    except OSError as error:
        _stdout_closed(f"cannot write the results to stdout: {error.strerror}")
    sys.exit(code)
