"""Config: defaults, the TOML file, flags on top, and errors that name the key."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from scrapewatch.config import Policy, load_config
from scrapewatch.damages.money import period_damages
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
    ("[policy]\nthreshold_posts = 'many'\n", "policy.threshold_posts must be a whole number, "
                                             "such as 1000000; got 'many'"),
    ("[policy]\neffective_from = 'yesterday'\n",
     "policy.effective_from must be an ISO 8601 date or instant, such as 2024-11-15 or "
     "2024-11-15T00:00:00Z; got 'yesterday'"),
    ("[policy]\ntimezone = 'Mars/Olympus'\n", "unknown policy.timezone 'Mars/Olympus'"),
    ("[policy]\ncount_statuses = '2x'\n", "count_statuses part '2x'"),
    ("[entity]\nkeys = ['ip']\n", "invalid entity.keys entry 'ip'; valid: api_key, user, "
                                  "client_ip, such as api_key,client_ip"),
    ("[entity]\nipv4_prefix = 33\n", "entity.ipv4_prefix must be a whole number from 0 to 32; "
                                    "got 33"),
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
    with pytest.raises(ConfigError, match=r"policy\.rate_usd must be a number, such as 15000 "
                                          r"or 0\.8; got 'abc'"):
        load_config(overrides={"policy.rate_usd": "abc"})
    assert load_config(overrides={"entity.keys": "user, client_ip"}).entity.keys == (
        "user", "client_ip")


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")


RATE = "a number from 0 to 1,000,000,000 with at most 6 decimal places"
SHARE = "a number from 0 to 1 with at most 6 decimal places"
POSTS = "a whole number from 0 to 1,000,000,000,000"


@pytest.mark.parametrize(("text", "message"), [
    ('[policy]\nrate_usd = "1e400"\n', f"policy.rate_usd must be {RATE}; got '1e400'"),
    ('[policy]\nrate_usd = "1e30"\n', f"policy.rate_usd must be {RATE}; got '1e30'"),
    ('[policy]\nrate_usd = "1e-400"\n', f"policy.rate_usd must be {RATE}; got '1e-400'"),
    ('[policy]\nrate_usd = "0.0000001"\n', f"policy.rate_usd must be {RATE}; got '0.0000001'"),
    ('[policy]\nrate_usd = "NaN"\n', f"policy.rate_usd must be {RATE}; got 'NaN'"),
    ("[policy]\nrate_usd = inf\n", f"policy.rate_usd must be {RATE}; got inf"),
    ('[policy]\nrate_usd = "-Infinity"\n', f"policy.rate_usd must be {RATE}; got '-Infinity'"),
    ("[policy]\nrate_usd = -1\n", f"policy.rate_usd must be {RATE}; got -1"),
    ("[policy]\nper_posts = 0\n",
     "policy.per_posts must be a whole number from 1 to 1,000,000,000,000; got 0"),
    ("[policy]\nthreshold_posts = -1\n", f"policy.threshold_posts must be {POSTS}; got -1"),
    ("[policy]\nthreshold_posts = 9223372036854775807\n",
     f"policy.threshold_posts must be {POSTS}; got 9223372036854775807"),
    ('[policy]\nthreshold_posts = "99999999999999999999999999"\n',
     f"policy.threshold_posts must be {POSTS}; got '99999999999999999999999999'"),
    ("[policy]\nwarning_share = 1.5\n", f"policy.warning_share must be {SHARE}; got 1.5"),
    ('[policy]\nwarning_share = "NaN"\n', f"policy.warning_share must be {SHARE}; got 'NaN'"),
    ('[input]\nmax_rejected_share = "1e400"\n',
     f"input.max_rejected_share must be {SHARE}; got '1e400'"),
    ("[entity]\nipv6_prefix = -1\n",
     "entity.ipv6_prefix must be a whole number from 0 to 128; got -1"),
    ("[posts]\ndefault = 99999999999999999999\n",
     "posts.default must be a whole number from 0 to 1,000,000,000; got 99999999999999999999"),
    ("[[posts.rules]]\npath = '^/x'\nposts = 10000000000\n",
     "posts.rules\\[0\\].posts must be a whole number from 0 to 1,000,000,000; got 10000000000"),
    ("[[posts.rules]]\npath = '^/x'\nparam = 'n'\nparam_max = 10000000000\n",
     "posts.rules\\[0\\].param_max must be a whole number from 0 to 1,000,000,000; "
     "got 10000000000"),
])
def test_numbers_out_of_range_name_the_key_and_the_range(tmp_path: Path, text: str,
                                                        message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}$"):
        load_config(write(tmp_path, text))


def test_numbers_at_the_ends_of_their_ranges_are_accepted() -> None:
    config = load_config(overrides={
        "policy.rate_usd": "1000000000", "policy.per_posts": 10**12,
        "policy.threshold_posts": 10**12, "policy.warning_share": "0.000001",
        "input.max_rejected_share": "1", "posts.default": 1_000_000_000})
    assert (config.policy.rate_usd, config.policy.per_posts) == (Decimal(10**9), 10**12)
    assert load_config(overrides={"policy.rate_usd": "0.000001"}).policy.rate_usd == Decimal(
        "0.000001")
    assert load_config(overrides={"policy.rate_usd": "12.5000000000"}).policy.rate_usd == (
        Decimal("12.5"))  # trailing zeros are no decimal places


@pytest.mark.parametrize(("rounding", "damages"), [
    ("full", "1000000000000.00"), ("started", "1001000000000.00"),
    ("prorata", "1000000001000.00")])
def test_damages_at_the_largest_rate_are_exact(rounding: str, damages: str) -> None:
    policy = load_config(overrides={"policy.rate_usd": "1000000000"}).policy
    assert str(period_damages(1_000_000_001, policy=policy, rounding=rounding)) == damages


def test_prorata_damages_round_half_up_exactly_at_any_rate() -> None:
    # 0.000001 USD a post: 5,000 posts are half a cent, rounded up
    policy = load_config(overrides={"policy.rate_usd": "0.000001", "policy.per_posts": 1}).policy
    assert str(period_damages(5_000, policy=policy, rounding="prorata")) == "0.01"
    assert str(period_damages(4_999, policy=policy, rounding="prorata")) == "0.00"
    # 2**62 posts at 999,999.999999 USD a trillion: 4,611,686,018,422.775...
    policy = Policy(rate_usd=Decimal("999999.999999"), per_posts=10**12)
    assert str(period_damages(2**62, policy=policy, rounding="prorata")) == "4611686018422.78"


def test_a_period_costing_more_than_a_quadrillion_dollars_is_refused() -> None:
    policy = load_config(overrides={"policy.rate_usd": "1000000000",
                                    "policy.per_posts": 1}).policy
    assert str(period_damages(1_000_000, policy=policy, rounding="full")) == (
        "1000000000000000.00")
    with pytest.raises(ConfigError, match=r"^a charged period of 1,000,001 posts would cost "
                       r"more than \$1,000,000,000,000,000 at policy.rate_usd 1000000000 per "
                       r"1 posts; check rate_usd and per_posts$"):
        period_damages(1_000_001, policy=policy, rounding="full")
