"""Config: defaults, the TOML file, flags on top, and errors that name the key."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from scrapewatch.config import load_config
from scrapewatch.errors import ConfigError
from scrapewatch.posts import BUILTIN_RULES, PostsRule


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scrapewatch.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = load_config()
    p = config.policy
    assert (p.threshold_posts, p.rate_usd, p.per_posts, p.periods, p.rounding, p.charge,
            p.count_statuses, p.timezone) == (1_000_000, Decimal("15000"), 1_000_000, "greedy",
                                              "full", "all", "2xx", "UTC")
    assert p.effective_from == datetime(2024, 11, 15, tzinfo=UTC)
    assert config.entity.keys == ("api_key", "user", "client_ip")
    assert config.posts.rules == BUILTIN_RULES and config.posts.default == 0


def test_file_then_flags(tmp_path: Path) -> None:
    path = write(tmp_path, """
[policy]
threshold_posts = 2_000_000
periods = "calendar"
rate_usd = "12.5"
effective_from = 2025-01-01T00:00:00Z
[entity]
keys = ["client_ip"]
ipv4_prefix = 24
[posts]
default = 1
[[posts.rules]]
path = '^/2/tweets/search/(recent|all)$'
param = "max_results"
param_default = 10
[[posts.rules]]
path = '^/2/tweets$'
list_param = "ids"
""")
    config = load_config(path, overrides={"policy.periods": "max", "policy.rounding": None})
    p = config.policy
    assert (p.threshold_posts, p.periods, p.rate_usd, p.rounding) == (
        2_000_000, "max", Decimal("12.5"), "full")
    assert p.effective_from == datetime(2025, 1, 1, tzinfo=UTC)
    assert (config.entity.keys, config.entity.ipv4_prefix) == (("client_ip",), 24)
    assert config.posts.rules == (
        PostsRule(path="^/2/tweets/search/(recent|all)$", param="max_results", param_default=10),
        PostsRule(path="^/2/tweets$", list_param="ids"))


@pytest.mark.parametrize(("text", "message"), [
    ("[policy]\nthreshhold_posts = 1\n", "unknown config key policy.'threshhold_posts' "
                                         "\\(did you mean 'threshold_posts'\\?\\)"),
    ("[polcy]\n", "unknown config key 'polcy' \\(did you mean 'policy'\\?\\)"),
    ("[policy]\nperiods = 'greedyy'\n", "invalid policy.periods 'greedyy' \\(did you mean "
                                        "'greedy'\\?\\)"),
    ("[policy]\nthreshold_posts = 'many'\n", "invalid value for policy.threshold_posts"),
    ("[policy]\ntimezone = 'Mars/Olympus'\n", "unknown policy.timezone 'Mars/Olympus'"),
    ("[policy]\ncount_statuses = '2x'\n", "count_statuses part '2x'"),
    ("[entity]\nkeys = ['ip']\n", "invalid entity key 'ip'"),
    ("[entity]\nipv4_prefix = 33\n", "ipv4_prefix must be 0-32"),
    ("[[posts.rules]]\npath = '^/x'\n", "needs exactly one of"),
    ("[[posts.rules]]\npath = '^/x'\nposts = 1\nparms = 2\n", "unknown config key "
                                                             "posts.rules\\[0\\].'parms'"),
    ("[input.fields]\nstamp = 'x'\n", "unknown field 'stamp' in input.fields"),
    ("[policy\n", "is not valid TOML"),
])
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_flag_values_are_checked_like_file_values() -> None:
    with pytest.raises(ConfigError, match=r"invalid value for policy\.rate_usd: 'abc'"):
        load_config(overrides={"policy.rate_usd": "abc"})
    assert load_config(overrides={"entity.keys": "user, client_ip"}).entity.keys == (
        "user", "client_ip")


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")
