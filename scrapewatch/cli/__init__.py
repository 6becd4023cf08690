"""The command line's commands. This package is the only one that imports click,
prints or exits: options.py declares the options, terminal.py draws progress and
turns errors into one line and an exit code, prompt.py is the `sql` prompt.

Each command parses its options, makes one library call and renders the result.
Heavy modules (duckdb, pyarrow, numpy) are imported inside commands so that
`scrapewatch --help` stays instant.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, cast

import click

from scrapewatch.cli.options import (
    ALLOW_EMPTY,
    CONFIG,
    DEBUG,
    ENGINE,
    FORMAT,
    INPUT_FILTERS,
    MEMORY_LIMIT,
    POLICY,
    QUIET,
    READING,
    REPORT_OUTPUT,
    STORE,
    WINDOW,
    check_engine,
    check_flags,
    check_window,
    config_overrides,
    instant_option,
    options,
    pinned_clock,
    pseudonym_key,
    spark_session_for,
    store_option,
    store_path,
)
from scrapewatch.cli.prompt import statements, write_result
from scrapewatch.cli.terminal import (
    ExitCode,
    NamedStdout,
    errors_reported,
    fail,
    print_report,
    progress_display,
    say_written,
    stdout_closed,
    warn_unread,
)
from scrapewatch.reading.formats import native
from scrapewatch.reporting.counted import plural
from scrapewatch.reporting.outputs import ROWS_OUTPUTS
from scrapewatch.version import __version__


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


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@options(CONFIG, FORMAT, INPUT_FILTERS, ALLOW_EMPTY, WINDOW, REPORT_OUTPUT, QUIET,
         MEMORY_LIMIT, ENGINE, POLICY, READING, DEBUG)
@click.pass_context
def scan(ctx: click.Context, /, paths: tuple[str, ...], config_path: Path | None,
         log_format: str | None, since: datetime | None, until: datetime | None,
         out: Path | None, output: str, fail_on_violation: bool,
         pseudonymise: bool, pseudonym_key_file: Path | None, quiet: bool,
         memory_limit: str | None, engine: str, spark_master: str | None,
         spark_remote: str | None,
         **flags: Any) -> None:
    """Scan log files, directories (recursively) and globs; plain, .gz or .zst.

    Prints the flagged entities with their damages; --out writes the full report.
    --since and --until count only the activity inside that window. With --engine
    spark, each file is loaded by a task on Spark's executors, with the same parse, and
    detection runs on Spark; the report is the same.
    """
    from scrapewatch.config import load_config
    from scrapewatch.pipeline import scan as run_scan

    overrides = config_overrides(flags, log_format)
    check_flags(overrides, memory_limit)
    check_engine(engine, spark_master, spark_remote, memory_limit)
    check_window(since, until)
    now = pinned_clock()
    key = pseudonym_key(pseudonymise, pseudonym_key_file)
    with errors_reported(ctx):
        config = load_config(config_path, overrides=overrides)
        spark = None
        if engine == "spark":
            from scrapewatch.reading.inputs import is_uri, list_inputs

            # a missing path is told before Spark's JVM takes seconds to start
            list_inputs([p for p in paths if not is_uri(p)], config.input)
            spark = spark_session_for(spark_master, spark_remote, quiet)
        report = run_scan(paths, config=config, out=out, memory_limit=memory_limit, now=now,
                          progress=progress_display(quiet), pseudonym_key=key, spark=spark,
                          since=since, until=until)
        warn_unread(report.skipped)
        print_report(report, output)
    say_written(out, quiet)
    if fail_on_violation and report.findings:
        ctx.exit(ExitCode.VIOLATIONS)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@options(STORE, CONFIG, FORMAT, INPUT_FILTERS, ALLOW_EMPTY, READING)
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
@options(QUIET, MEMORY_LIMIT, DEBUG)
@click.pass_context
def ingest(ctx: click.Context, /, paths: tuple[str, ...], store: Path | None, wait_s: float,
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

    overrides = config_overrides(flags, log_format)
    check_flags(overrides, memory_limit)
    key = pseudonym_key(pseudonymise, pseudonym_key_file)
    with errors_reported(ctx):
        config = load_config(config_path, overrides=overrides)
        summary = run_ingest(store_path(store, config), paths, config=config,
                             keep_requests=keep_requests,
                             wait_s=wait_s, progress=progress_display(quiet),
                             memory_limit=memory_limit, now=pinned_clock(), pseudonym_key=key)
        if output == "json":
            click.echo(json.dumps(summary.to_json(), indent=2, ensure_ascii=True))
        else:
            click.echo(summary.render(), nl=False)
        warn_unread(summary.unread)
    if summary.failed:
        fail(f"{plural(len(summary.failed), 'file')} could not be read; see the summary",
              ExitCode.ERROR)
    if fail_on_violation and summary.report.findings:
        ctx.exit(ExitCode.VIOLATIONS)


@cli.command()
@options(STORE, CONFIG, WINDOW, REPORT_OUTPUT, QUIET, MEMORY_LIMIT, ENGINE, POLICY, READING,
         DEBUG)
@click.pass_context
def report(ctx: click.Context, /, store: Path | None, wait_s: float,
           config_path: Path | None,
           since: datetime | None, until: datetime | None, out: Path | None, output: str,
           fail_on_violation: bool, pseudonymise: bool, pseudonym_key_file: Path | None,
           quiet: bool, memory_limit: str | None, engine: str, spark_master: str | None,
           spark_remote: str | None, **flags: Any) -> None:
    """Detect violations and total the damages over a store, as scan does over files.

    The policy may differ from the ingests'; the settings that decide each request's
    activity (entity, posts rules, --count-status, --effective-from) must not. With
    --engine spark, the store's activity goes to Spark as Parquet (in the temp folder,
    which the executors must see) and detection runs there.
    """
    from scrapewatch.config import load_config
    from scrapewatch.store import report as run_report

    overrides = config_overrides(flags)
    check_flags(overrides, memory_limit)
    check_engine(engine, spark_master, spark_remote, None)
    check_window(since, until)
    key = pseudonym_key(pseudonymise, pseudonym_key_file)
    with errors_reported(ctx):
        config = load_config(config_path, overrides=overrides)
        result = run_report(store_path(store, config), config=config, out=out,
                            now=pinned_clock(),
                            wait_s=wait_s, memory_limit=memory_limit, pseudonym_key=key,
                            spark=spark_session_for(spark_master, spark_remote, quiet)
                            if engine == "spark" else None,
                            since=since, until=until)
        print_report(result, output)
    say_written(out, quiet)
    if fail_on_violation and result.findings:
        ctx.exit(ExitCode.VIOLATIONS)


@cli.command()
@options(STORE, CONFIG)
@instant_option("--before", "Drop activity before this instant (as report's --since).",
                required=True)
@options(QUIET, DEBUG)
@click.pass_context
def prune(ctx: click.Context, /, store: Path | None, wait_s: float,
          config_path: Path | None, before: datetime, quiet: bool) -> None:
    """Drop a store's activity (and kept requests) older than --before.

    The manifest stays, so the files it came from are not ingested again.
    """
    from scrapewatch.config import load_config
    from scrapewatch.store import prune as run_prune

    with errors_reported(ctx):
        dropped = run_prune(store_path(store, load_config(config_path)), before=before,
                            wait_s=wait_s)
    click.echo(f"Dropped {dropped:,} activity rows before {before.isoformat()}.")


@cli.command()
@click.argument("statement", required=False)
@options(store_option("The store: a DuckDB database file (opened read-only)."), CONFIG)
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
@options(QUIET, DEBUG)
@click.pass_context
def sql(ctx: click.Context, /, statement: str | None, store: Path | None,
        config_path: Path | None, output: str,
        out_file: Path | None, allow_files: Path | None, quiet: bool) -> None:
    """Run SQL on a store, or, with no STATEMENT, open a prompt (end a statement with
    ';'; .tables, .schema NAME, .help; tab completion; history kept in
    ~/.scrapewatch_history; leave with .quit or Ctrl-D).
    Statements piped in run in turn; the first that fails ends the run (exit 1).

    Views: files, manifest, activity, requests (with ingest --keep-requests), rejects,
    runs, findings, periods. The SQL sees the store only: it reads and writes no other
    file (but in the --allow-files folder), cannot ATTACH, INSTALL or LOAD, and cannot
    change settings. The store is a plain DuckDB file: the duckdb CLI and Python
    package open it too.
    """
    from scrapewatch.config import load_config
    from scrapewatch.reporting.escape import for_terminal
    from scrapewatch.store import VIEWS, query

    if output == "parquet" and out_file is None:
        raise click.UsageError("--output parquet needs --out FILE")
    with errors_reported(ctx):
        store = store_path(store, load_config(config_path))
        if statement is not None:
            write_result(query(store, statement, allow_files=allow_files), output, out_file)
            return
        interactive = sys.stdin.isatty()
        if interactive and not quiet:
            click.echo(f"Views: {', '.join(VIEWS)} (.tables says what each holds; .help "
                       "lists the commands)", err=True)
        for text in statements(interactive, VIEWS):
            try:
                write_result(query(store, text, allow_files=allow_files), "table", None)
            except Exception as error:
                if not interactive:  # a script (a nightly job's queries): stop, exit 1
                    raise
                click.echo(f"error: {for_terminal(str(error))}", err=True)  # prompt goes on


@cli.command()
@click.argument("folder", type=click.Path(path_type=Path))
@options(QUIET, DEBUG)
@click.pass_context
def verify(ctx: click.Context, /, folder: Path, quiet: bool) -> None:
    """Check an --out FOLDER against its manifest.json: every file it lists has the
    same size and SHA-256, and no other file is there.

    Prints each file with what is wrong with it, if anything (with -q, only those);
    exits 1 when any file changed, is missing or is not in the manifest.
    """
    from scrapewatch.reporting.custody import MANIFEST
    from scrapewatch.reporting.custody import verify as run_verify
    from scrapewatch.reporting.escape import for_terminal

    with errors_reported(ctx):
        checks = run_verify(folder)
    for check in checks:
        if not (quiet and check.ok):
            click.echo(f"{check.status:10} {for_terminal(check.name)}"
                       + (f": {check.detail}" if check.detail else ""))
    wrong = [check for check in checks if not check.ok]
    shown = for_terminal(str(folder))
    if wrong:
        differ = "differs" if len(wrong) == 1 else "differ"
        fail(f"{shown}: {len(wrong):,} of {plural(len(checks), 'file')} {differ} from {MANIFEST}",
             ExitCode.ERROR)
    click.echo(f"verified {shown}: {plural(len(checks), 'file')} as {MANIFEST} lists them",
               err=True)


@cli.command()
@options(QUIET, DEBUG)
def formats(quiet: bool) -> None:
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


def main() -> None:
    """Console entry point. Results still buffered for stdout are flushed here, where a
    reader that has gone (`| head`) or a full disk (`> /full/disk/report.json`) can be
    told apart from success, rather than in Python's own flush at exit."""
    sys.stdout = cast(TextIO, NamedStdout(sys.stdout))
    try:
        cli(prog_name="scrapewatch")
    except SystemExit as done:
        code = done.code
    else:  # pragma: no cover - click always exits
        code = 0
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_closed()
    except OSError as error:
        stdout_closed(f"cannot write the results to stdout: {error.strerror}")
    sys.exit(code)
