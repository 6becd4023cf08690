"""The command line's options, declared once each, and what they turn into: config
overrides, checked values, a pseudonym key, a Spark session."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from scrapewatch.cli.terminal import progress_display
from scrapewatch.config import CHARGES, PERIODS, ROUNDINGS
from scrapewatch.reporting.outputs import REPORT_OUTPUTS

if TYPE_CHECKING:
    from scrapewatch.config import Config

F = TypeVar("F", bound=Callable[..., Any])


def options(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Apply click options in the order listed (so --help lists them that way)."""
    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command
    return apply


CONFIG = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    help="TOML config file ([policy], [entity], [posts], [input], [store]).")


FORMAT = click.option(
    "--format", "log_format", default=None,
    help="Log format of every file: auto (sniff each file, the default), a name listed by "
         "`scrapewatch formats`, or a custom format: 'nginx:LOG_FORMAT', "
         "'apache:LOGFORMAT' or 'regex:REGEX' with named groups.")


REPORT_OUTPUT = options(
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


QUIET = click.option("--quiet", "-q", is_flag=True,
                     help="No progress display or notes on stderr; results still go to "
                          "stdout and errors to stderr.")


def _debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(dict)["debug"] = True


# on every command, as well as before it (see cli): `scrapewatch scan x --debug`
DEBUG = click.option("--debug", is_flag=True, expose_value=False, callback=_debug,
                     help="Show a traceback on errors.")


MEMORY_LIMIT = click.option(
    "--memory-limit", metavar="SIZE",
    help="DuckDB memory limit [512MB]; past it, work spills to the temp folder ($TMPDIR), "
         "so memory stays flat however large the input.")


# The options that set a config setting (their parameter name -> the setting's key).
SETTING_FLAGS = {
    "threshold": "policy.threshold_posts", "rate": "policy.rate_usd",
    "per_posts": "policy.per_posts", "periods": "policy.periods",
    "rounding": "policy.rounding", "charge": "policy.charge",
    "count_status": "policy.count_statuses", "timezone": "policy.timezone",
    "effective_from": "policy.effective_from", "entity": "entity.keys",
    "ipv4_prefix": "entity.ipv4_prefix", "ipv6_prefix": "entity.ipv6_prefix",
    "posts_default": "posts.default", "max_rejected_share": "input.max_rejected_share"}


def _setting(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """An option callback that checks the setting an option sets (see config.py) as soon
    as it is read, so that a bad value is a usage error naming the option."""
    from scrapewatch.config import load_config
    from scrapewatch.errors import ConfigError

    if value is not None:
        assert param.name is not None
        key = SETTING_FLAGS[param.name]
        try:
            load_config(None, overrides={key: value})
        except ConfigError as error:
            raise click.UsageError(str(error).replace(key, param.opts[0]), ctx) from None
    return value


def setting(*names: str, **kwargs: Any) -> Callable[[F], F]:
    """An option that sets the config setting SETTING_FLAGS names for it."""
    return click.option(*names, callback=_setting, **kwargs)


POLICY = options(
    setting("--threshold", help="Posts a 24-hour period may hold without violating "
                                "[policy.threshold_posts: 1000000]."),
    setting("--rate", help="USD per --per-posts posts [policy.rate_usd: 15000]."),
    setting("--per-posts", help="Posts that --rate prices [1000000]."),
    setting("--periods", type=click.Choice(PERIODS),
            help="How charged periods are chosen [greedy]."),
    setting("--rounding", type=click.Choice(ROUNDINGS),
            help="full: whole millions; prorata: to the cent; started: every started "
                 "million [full]."),
    setting("--charge", type=click.Choice(CHARGES),
            help="Charge all posts of a period, or only those over the threshold [all]."),
    setting("--timezone", help="IANA zone of calendar days, such as America/New_York [UTC]."))


# settings that decide each request's activity: a store keeps those of its first ingest
READING = options(
    setting("--count-status", help="Statuses that count: all, 2xx, 304, 200-206, "
                                   "comma-separated [2xx]."),
    setting("--effective-from", help="Ignore requests before this instant, such as "
                                     "2024-11-15 or 2024-11-15T00:00:00Z "
                                     "[2024-11-15T00:00:00Z]."),
    setting("--entity", help="Entity key order, comma-separated from api_key, user, "
                             "client_ip [api_key,user,client_ip]."),
    setting("--ipv4-prefix", help="Group IPv4 clients into networks of this prefix length "
                                  "(0 to 32) [32]."),
    setting("--ipv6-prefix", help="Group IPv6 clients into networks of this prefix length "
                                  "(0 to 128) [128]."),
    setting("--posts-default", help="Posts of a request that carries no count and that no "
                                    "path rule matches [posts.default: 0]."),
    setting("--max-rejected-share",
            help="Fail (exit 4) when more than this share of lines is rejected [0.01]."))


INPUT_FILTERS = options(
    click.option("--include", metavar="GLOB", multiple=True,
                 help="Read only the files found in directories (or by globs) that match "
                      "GLOB: '*.log' matches names; with a '/', the whole path "
                      "('*/nginx/access*'). Repeat for more [input.include]."),
    click.option("--exclude", metavar="GLOB", multiple=True,
                 help="Leave out the files found in directories (or by globs) that match "
                      "GLOB (as --include); listed as excluded. Repeat for more "
                      "[input.exclude]."),
    click.option("--strict", is_flag=True,
                 help="A file no log format fits is an error (exit 1), not skipped with a "
                      "warning [input.strict: false]."))


ALLOW_EMPTY = click.option(
    "--allow-empty", is_flag=True,
    help="Succeed with an empty report when there is no input (a directory without log "
         "files, or no line in them all) [input.allow_empty: false]; else that is an "
         "error (exit 1).")


ENGINE = options(
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


def store_option(help: str) -> Callable[[F], F]:
    """--store, which SCRAPEWATCH_STORE or the config's [store] path stand in for."""
    return click.option(
        "--store", type=click.Path(dir_okay=False, path_type=Path),
        envvar="SCRAPEWATCH_STORE",
        help=f"{help} [else SCRAPEWATCH_STORE, else path under [store] in --config].")


STORE = options(
    store_option("The store: a DuckDB database file."),
    click.option("--wait", "wait_s", type=click.FloatRange(0), default=0, show_default=True,
                 help="Seconds to wait while another process writes the store."))


def store_path(store: Path | None, config: Config) -> Path:
    """The store the command uses: --store (or SCRAPEWATCH_STORE), else the config's."""
    if store is not None:
        return store
    if config.store.path:
        return Path(config.store.path)
    raise click.UsageError("no store given: pass --store FILE, set SCRAPEWATCH_STORE, or "
                           "set path under [store] in the --config file")


def config_overrides(flags: dict[str, Any], log_format: str | None = None) -> dict[str, Any]:
    """Config overrides (`section.name` -> value) from the options given."""
    overrides = {key: flags.get(flag) for flag, key in SETTING_FLAGS.items()}
    overrides["input.format"] = log_format
    # a flag not given (or no pattern): the config's
    overrides["input.allow_empty"] = flags.get("allow_empty") or None
    overrides["input.strict"] = flags.get("strict") or None
    overrides["input.include"] = flags.get("include") or None
    overrides["input.exclude"] = flags.get("exclude") or None
    return overrides


def check_flags(overrides: dict[str, Any], memory_limit: str | None) -> None:
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


def check_engine(engine: str, master: str | None, remote: str | None,
                  memory_limit: str | None) -> None:
    """Reject options that do not apply to the engine chosen (exit 2)."""
    if engine != "spark" and (master or remote):
        raise click.UsageError("--spark-master and --spark-remote need --engine spark")
    if engine == "spark" and master and remote:
        raise click.UsageError("give --spark-master or --spark-remote, not both")
    if engine == "spark" and memory_limit:
        raise click.UsageError("--memory-limit is DuckDB's; Spark's memory is set by its own "
                               "configuration (spark.driver.memory, spark.executor.memory)")


def spark_session_for(master: str | None, remote: str | None, quiet: bool = True) -> Any:
    """A Spark session, or a clear error when PySpark is not installed."""
    from scrapewatch.errors import ConfigError

    try:
        from scrapewatch.engine.spark import spark_session
    except ImportError as exc:
        raise ConfigError("--engine spark needs PySpark: pip install 'scrapewatch[spark]' "
                          f"({exc})") from exc
    return spark_session(master, remote, progress=progress_display(quiet) is not None)


def pinned_clock() -> datetime | None:
    """The run's time from SOURCE_DATE_EPOCH when set, for reproducible reports."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return None
    try:
        return datetime.fromtimestamp(int(epoch), UTC)
    except ValueError:
        raise click.BadParameter(f"SOURCE_DATE_EPOCH={epoch!r} is not whole seconds") from None


def pseudonym_key(pseudonymise: bool, key_file: Path | None) -> bytes | None:
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


def _instant(ctx: click.Context, param: click.Parameter, value: str | None
             ) -> datetime | None:
    """An option callback: the ISO 8601 instant given, or a usage error with an example."""
    from scrapewatch.config import parse_instant

    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date or instant (UTC unless it says otherwise), "
            "such as 2025-03-01 or 2025-03-01T12:00:00Z") from None


def instant_option(name: str, help: str, **kwargs: Any) -> Callable[[F], F]:
    """An option that takes an ISO 8601 instant (a date alone: its midnight UTC)."""
    return click.option(name, metavar="INSTANT", callback=_instant, help=help, **kwargs)


WINDOW = options(
    instant_option("--since", "Only activity at or after this instant: a date "
                              "(2025-03-01, midnight UTC) or an instant "
                              "(2025-03-01T12:00:00Z, 2025-03-01T08:00:00-04:00)."),
    instant_option("--until", "Only activity before this instant (as --since)."))


def check_window(since: datetime | None, until: datetime | None) -> None:
    """Reject a window that holds no instant (exit 2)."""
    if since is not None and until is not None and since >= until:
        raise click.UsageError(f"--since ({since:%Y-%m-%dT%H:%M:%SZ}) must be before "
                               f"--until ({until:%Y-%m-%dT%H:%M:%SZ})")
