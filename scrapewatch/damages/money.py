"""The damages of one charged period, in exact whole cents: the clause's rate per
posts, under each rounding and charge, vectorised over many periods."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from scrapewatch.config import Policy
from scrapewatch.errors import ConfigError

# The most one charged period may cost: past it the policy is surely mistyped (the
# world's yearly output is about $10^14), and money stays far inside the report's
# decimal(38, 2) and the store's DECIMAL(20, 2) columns.
MAX_PERIOD_DAMAGES = Decimal(10**15)


def period_cents(posts: np.ndarray, policy: Policy, rounding: str) -> np.ndarray:
    """Damages of periods holding `posts`, in whole cents (rounded half up), exact:
    int64 where that cannot overflow, else Python integers.

    Raises:
        ConfigError: when a period would cost more than MAX_PERIOD_DAMAGES.
    """
    posts = np.asarray(posts, dtype=np.int64)
    base = posts if policy.charge == "all" else np.maximum(posts - policy.threshold_posts, 0)
    per = policy.per_posts
    if rounding == "full":
        units, per = base // per, 1
    elif rounding == "started":
        units, per = -(-base // per), 1
    else:
        units = base
    numerator, denominator = (policy.rate_usd * 100).as_integer_ratio()
    largest = int(units.max()) if units.size else 0
    if largest * 2 * numerator + 2 * denominator * per >= 2**62:
        units = units.astype(object)  # exact, slower
    cents = (2 * units * numerator + denominator * per) // (2 * denominator * per)
    if cents.size and cents.max() > MAX_PERIOD_DAMAGES * 100:
        worst = int(posts[np.argmax(cents)])
        raise ConfigError(
            f"a charged period of {worst:,} posts would cost more than "
            f"${MAX_PERIOD_DAMAGES:,} at policy.rate_usd {policy.rate_usd} per "
            f"{policy.per_posts:,} posts; check rate_usd and per_posts")
    return cents


def usd(cents: int) -> Decimal:
    """Whole cents (not negative) as dollars with two decimals, exact at any size."""
    dollars, rest = divmod(int(cents), 100)
    return Decimal(f"{dollars}.{rest:02d}")


def period_damages(posts: int, *, policy: Policy, rounding: str) -> Decimal:
    """Damages of one charged period holding `posts` posts, under `rounding`."""
    return usd(period_cents(np.array([posts]), policy, rounding)[0])


def period_values(posts: np.ndarray, policy: Policy, rounding: str) -> np.ndarray:
    """Exact integer value of periods holding `posts`, ordered as their damages are.

    full and started count millions (damages = count x rate); prorata counts cents,
    rounded half up per period as the damages are. Zero when a period does not violate.
    """
    posts = np.asarray(posts, dtype=np.int64)
    base = posts if policy.charge == "all" else np.maximum(posts - policy.threshold_posts, 0)
    if rounding == "full":
        value = base // policy.per_posts
    elif rounding == "started":
        value = -(-base // policy.per_posts)
    else:
        value = period_cents(posts, policy, rounding)
    return np.where(posts > policy.threshold_posts, value, 0)
