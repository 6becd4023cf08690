"""Frozen configuration: defaults, then a TOML file, then command-line flags.

Every setting is declared once, here, as a dataclass field with its type, default and
help text (`metadata["help"]`); the loader, the unknown-key check and the README table
all read those declarations.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scrapewatch.errors import ConfigError
from scrapewatch.posts import BUILTIN_RULES, PostsRule, parse_status_set

PERIODS = ("greedy", "calendar", "max", "peak")
ROUNDINGS = ("full", "prorata", "started")
CHARGES = ("all", "excess")
ENTITY_KEYS = ("api_key", "user", "client_ip")
FIELD_NAMES = ("ts", "client_ip", "method", "path", "query", "status", "bytes",
               "referer", "user_agent", "api_key", "user", "posts", "xff")

# The ranges of the numeric settings. Inside them every sum, product and comparison the
# policy makes is exact: post counts stay far inside 64-bit integers, and money (at most
# 19 digits of posts times 16 of rate) inside Decimal's precision and numpy's int64.
MAX_POSTS = 10**12  # a threshold or per_posts: a million times the clause's million
MAX_REQUEST_POSTS = 1_000_000_000  # posts of one request, as a log's posts field allows
MAX_RATE_USD = Decimal(10**9)
PLACES = 6  # decimal places of a rate or a share (a millionth)


def _setting(default: Any, help: str, **checks: Any) -> Any:
    """A dataclass field carrying its help text and optional checks: `choices`, and for
    numbers `low` and `high` (inclusive) and, for Decimals, `places`."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help, **checks})
    return field(default=default, metadata={"help": help, **checks})


@dataclass(frozen=True)
class Policy:
    """The damages policy of DESIGN.md, every name unchanged."""

    threshold_posts: int = _setting(
        1_000_000, "A 24-hour period violates when it holds more than this many posts.",
        low=0, high=MAX_POSTS)
    rate_usd: Decimal = _setting(Decimal("15000"), "US dollars charged per `per_posts` posts.",
                                 low=0, high=MAX_RATE_USD, places=PLACES)
    per_posts: int = _setting(1_000_000, "The number of posts that `rate_usd` prices.",
                              low=1, high=MAX_POSTS)
    periods: str = _setting(
        "greedy", "How charged 24-hour periods are chosen.", choices=PERIODS)
    rounding: str = _setting(
        "full", "full: whole millions only; prorata: exact to the cent; started: every "
        "started million.", choices=ROUNDINGS)
    charge: str = _setting(
        "all", "all: charge every post of a period; excess: only those above the threshold.",
        choices=CHARGES)
    count_statuses: str = _setting(
        "2xx", "HTTP statuses whose requests count: `all`, classes like `2xx` and codes or "
        "ranges like `200-206`, comma-separated.")
    timezone: str = _setting("UTC", "IANA time zone of calendar days (periods = calendar).")
    effective_from: datetime = _setting(
        datetime(2024, 11, 15, tzinfo=UTC),
        "Requests before this instant are not counted (the clause's effective date).")
    warning_share: Decimal = _setting(
        Decimal("0.8"), "Entities whose peak reaches this share of the threshold, without "
        "passing it, are on the watchlist.", low=0, high=1, places=PLACES)

    @property
    def watch_level(self) -> int:
        """The fewest posts in 24 hours that put an entity on the watchlist."""
        return math.ceil(self.warning_share * self.threshold_posts)


@dataclass(frozen=True)
class EntityConfig:
    """Which field identifies the party that accessed posts."""

    keys: tuple[str, ...] = _setting(
        ENTITY_KEYS, "Entity key order: the first non-empty field wins.")
    ipv4_prefix: int = _setting(32, "Group IPv4 clients by this prefix length (e.g. 24).",
                                low=0, high=32)
    ipv6_prefix: int = _setting(128, "Group IPv6 clients by this prefix length (e.g. 64).",
                                low=0, high=128)
    allow: tuple[str, ...] = _setting(
        (), "Authorised entities, kept out of the findings and listed apart: keys or users "
            "(`api_key:x`, `user:x` or `x`) and IP addresses or CIDR networks.")
    organisations: str = _setting(
        "", "A CSV file merging keys, users and address ranges into organisations "
            "(header key,cidr,org): each organisation is one entity, its members listed.")
    trusted_proxies: tuple[str, ...] = _setting(
        (), "Proxies (addresses or CIDR networks) whose X-Forwarded-For is believed: a "
            "request from one has as client the last address in that header that is not "
            "a trusted proxy.")


@dataclass(frozen=True)
class PostsConfig:
    """How many posts a request accessed when the log carries no count."""

    default: int = _setting(0, "Posts of a request that no rule matches.",
                            low=0, high=MAX_REQUEST_POSTS)
    rules: tuple[PostsRule, ...] = _setting(
        BUILTIN_RULES, "Path rules, first match wins; see the README for the built-in set.")


@dataclass(frozen=True)
class InputConfig:
    """How log files are read."""

    format: str = _setting("auto", "Log format of every file, or `auto` to sniff each one.")
    max_rejected_share: Decimal = _setting(
        Decimal("0.01"), "Fail the run (exit 4) when more than this share of lines is rejected.",
        low=0, high=1, places=PLACES)
    fields: dict[str, str] = _setting(
        {}, "JSON lines field mapping: request field -> JSON key (dots for nesting).")
    allow_empty: bool = _setting(
        False, "Let a run with no input (a directory without log files, or no line in "
               "them all) succeed with an empty report, instead of failing (exit 1).")
    include: tuple[str, ...] = _setting(
        (), "Read only the files found in directories (or by globs) that match one of "
            "these patterns (`*.log`; with a `/`, the whole path: `*/nginx/access*`).")
    exclude: tuple[str, ...] = _setting(
        (), "Leave out the files found in directories (or by globs) that match one of "
            "these patterns (as `include`); listed as excluded in report.json.")
    strict: bool = _setting(
        False, "A file no log format fits is an error (exit 1), instead of being skipped "
               "with a warning and listed in report.json.")


@dataclass(frozen=True)
class StoreConfig:
    """Where the store is, for the commands that use one."""

    path: str = _setting(
        "", "The store's file, when neither --store nor SCRAPEWATCH_STORE gives one "
            "(relative to the working directory).")


@dataclass(frozen=True)
class Config:
    """Everything a run needs to know, by config file section."""

    policy: Policy = field(default_factory=Policy)
    entity: EntityConfig = field(default_factory=EntityConfig)
    posts: PostsConfig = field(default_factory=PostsConfig)
    input: InputConfig = field(default_factory=InputConfig)
    store: StoreConfig = field(default_factory=StoreConfig)


def config_json(config: Config) -> dict[str, Any]:
    """The whole config as JSON values (Decimals and instants as strings), as a run
    manifest records it: with it and the inputs, anyone can re-run and get the same
    numbers (where the store is does not change them)."""
    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%dT%H:%M:%SZ")
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value
    return {name: plain(dataclasses.asdict(getattr(config, name)))
            for name in ("policy", "entity", "posts", "input")}


_SECTION_TYPES = {"policy": Policy, "entity": EntityConfig, "posts": PostsConfig,
                  "input": InputConfig, "store": StoreConfig}


def load_config(path: Path | None = None, *, overrides: dict[str, Any] | None = None) -> Config:
    """Build the run's config: defaults, then the TOML file at `path`, then `overrides`.

    Args:
        path: A TOML file with `[policy]`, `[entity]`, `[posts]`, `[input]` and `[store]`
            sections.
        overrides: Values from command-line flags, keyed `section.name`; None values are ignored.

    Raises:
        ConfigError: on a file that cannot be read, an unknown key or an invalid value.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    _check_keys(raw, _SECTION_TYPES, "")
    for key, value in (overrides or {}).items():
        if value is not None:
            section, name = key.split(".")
            raw.setdefault(section, {})[name] = value
    return Config(**{name: _build_section(kind, raw.get(name, {}), name)
                     for name, kind in _SECTION_TYPES.items()})


def _check_keys(table: dict[str, Any], known: Any, where: str) -> None:
    """Raise ConfigError naming the first key of `table` not in `known`."""
    for key in table:
        if key not in known:
            hint = difflib.get_close_matches(key, list(known), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            valid = ", ".join(known)
            raise ConfigError(f"unknown config key {where}{key!r}{suggestion}; valid: {valid}")


def _build_section(kind: type, table: Any, name: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"config [{name}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    _check_keys(table, fields, f"{name}.")
    values = {key: _coerce(fields[key], value, f"{name}.{key}") for key, value in table.items()}
    try:
        section = kind(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config [{name}]: {exc}") from exc
    _validate(section, name)
    return section


def _coerce(spec: dataclasses.Field[Any], value: Any, key: str) -> Any:
    """Turn a TOML or flag value into the field's declared type, or raise ConfigError."""
    kind = spec.type
    try:
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise ValueError
            result: Any = int(str(value).replace("_", ""))
        elif kind == "Decimal":
            if isinstance(value, bool):
                raise ValueError
            result = Decimal(str(value))  # NaN and Infinity are refused by the range
        elif kind == "datetime":
            result = parse_instant(value)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ValueError
            result = value
        elif kind == "str":
            if not isinstance(value, str):
                raise ValueError
            result = value
        elif kind == "tuple[str, ...]":
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
                raise ValueError
            result = tuple(i.strip() for i in items)
        elif kind == "tuple[PostsRule, ...]":
            result = tuple(_posts_rule(item, f"{key}[{n}]") for n, item in enumerate(value))
        elif kind == "dict[str, str]":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ValueError
            result = dict(value)
        else:  # pragma: no cover - a field type this loader does not know
            raise TypeError(f"no coercion for {kind}")
    except (ValueError, InvalidOperation) as exc:
        raise ConfigError(f"{key} must be {_EXPECTED.get(str(kind), str(kind))}; "
                          f"got {value!r}") from exc
    _check_range(spec, result, value, key)
    choices = spec.metadata.get("choices")
    if choices and result not in choices:
        hint = difflib.get_close_matches(str(result), choices, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(f"invalid {key} {result!r}{suggestion}; valid: {', '.join(choices)}")
    return result


# What a value of each setting type is, with an example, for the error that refuses one.
_EXPECTED = {
    "int": "a whole number, such as 1000000",
    "Decimal": "a number, such as 15000 or 0.8",
    "datetime": "an ISO 8601 date or instant, such as 2024-11-15 or 2024-11-15T00:00:00Z",
    "bool": "true or false",
    "str": "a string",
    "tuple[str, ...]": "a list of strings, or one comma-separated string",
    "dict[str, str]": "a table of strings",
}


def _check_range(spec: dataclasses.Field[Any], result: Any, value: Any, key: str) -> None:
    """Raise ConfigError naming `key` and its range when a number is outside it (or,
    for a Decimal, not finite or with more decimal places than allowed)."""
    low, high = spec.metadata.get("low"), spec.metadata.get("high")
    if low is None or high is None:
        return
    if isinstance(result, Decimal):
        places = spec.metadata["places"]
        wanted = f"a number from {low:,} to {high:,} with at most {places} decimal places"
        fits = result.is_finite() and low <= result <= high and _places(result) <= places
    else:
        wanted = f"a whole number from {low:,} to {high:,}"
        fits = low <= result <= high
    if not fits:
        raise ConfigError(f"{key} must be {wanted}; got {value!r}")


def _places(number: Decimal) -> int:
    """Decimal places of a finite `number`, trailing zeros aside (read from its digits:
    any Decimal arithmetic would round a long number first)."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if not any(digits):
        return 0
    trailing = len(digits) - len(bytes(digits).rstrip(b"\0"))
    return max(0, -exponent - trailing)


def _posts_rule(item: Any, key: str) -> PostsRule:
    if not isinstance(item, dict):
        raise ConfigError(f"{key} must be a table")
    fields = {f.name for f in dataclasses.fields(PostsRule)}
    _check_keys(item, fields, f"{key}.")
    for name in ("posts", "param_default", "param_max"):
        count = item.get(name)
        if isinstance(count, int) and not isinstance(count, bool) and not (
                0 <= count <= MAX_REQUEST_POSTS):
            raise ConfigError(f"{key}.{name} must be a whole number from 0 to "
                              f"{MAX_REQUEST_POSTS:,}; got {count!r}")
    try:
        return PostsRule(**item)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: {exc}") from exc


def parse_instant(value: Any) -> datetime:
    """An ISO-8601 instant (a date alone means midnight UTC; no offset means UTC)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        import datetime as _dt

        if not isinstance(value, _dt.date):
            raise ValueError(f"not a date or time: {value!r}")
        parsed = datetime(value.year, value.month, value.day)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _validate(section: Any, name: str) -> None:
    """Cross-field checks that a type alone cannot express."""
    # number ranges are checked as each value is read (_check_range)
    if isinstance(section, Policy):
        try:
            parse_status_set(section.count_statuses)
        except ValueError as exc:
            raise ConfigError(f"policy.count_statuses: {exc}") from exc
        try:
            ZoneInfo(section.timezone)
        except ValueError as exc:
            raise ConfigError(f"policy.timezone: {exc}") from exc
        except ZoneInfoNotFoundError as exc:
            raise ConfigError(
                f"unknown policy.timezone {section.timezone!r}: use an IANA name such as "
                "'UTC' or 'America/New_York'") from exc
    elif isinstance(section, EntityConfig):
        bad = [k for k in section.keys if k not in ENTITY_KEYS]
        if bad or not section.keys:
            raise ConfigError(f"invalid entity.keys entry {bad[0] if bad else ''!r}; "
                              f"valid: {', '.join(ENTITY_KEYS)}, such as api_key,client_ip")
        from scrapewatch.allow import AllowList

        AllowList.parse(section.allow)  # raises ConfigError on a bad entry, before any work
        if section.organisations:
            from scrapewatch.organisations import Organisations

            Organisations.load(Path(section.organisations))
        for proxy in section.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ConfigError(f"entity.trusted_proxies: {proxy!r} is not an address or "
                                  "a CIDR network such as 10.0.0.0/8") from None
    elif isinstance(section, InputConfig):
        bad = [k for k in section.fields if k not in FIELD_NAMES]
        if bad:
            raise ConfigError(f"unknown field {bad[0]!r} in input.fields; "
                              f"valid: {', '.join(FIELD_NAMES)}")
