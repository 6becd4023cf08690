"""What the HTML report draws of a flagged entity, computed once from its activity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scrapewatch.config import Policy
from scrapewatch.damages import Activities, Activity, Period, day_bounds
from scrapewatch.schema import DAY_SECONDS

SAMPLES = 240  # points of the rolling 24-hour line


@dataclass(frozen=True)
class EntitySeries:
    """An entity's rolling 24-hour posts and its posts per calendar day.

    Attributes:
        times, rolling: at each time t (epoch seconds), the posts in (t - 24 h, t]:
            evenly spaced samples, the busiest active seconds and the last second of
            every charged period, whose value is the period's posts.
        days, daily: each local midnight (policy timezone) with the posts of that day.
    """

    times: list[int]
    rolling: list[int]
    days: list[int]
    daily: list[int]


def entity_series(activity: Activity, policy: Policy, periods: Sequence[Period]
                  ) -> EntitySeries:
    """The series of one entity's activity (sorted seconds with their posts) and its
    charged periods."""
    acts = Activities.of(activity)

    def posts_between(start: np.ndarray, end: np.ndarray) -> np.ndarray:
        return acts.posts_between(np.zeros(len(start), dtype=np.int64), start, end)

    first, last = int(activity.sec[0]), int(activity.sec[-1])
    samples = np.linspace(first, last + DAY_SECONDS, SAMPLES).astype(np.int64)
    # the trailing window peaks at an active second: keep the highest of them
    ends = activity.sec
    trailing = posts_between(ends - DAY_SECONDS + 1, ends + 1)
    top = ends[np.argsort(trailing)[-16:]]
    charged = [p.end - 1 for p in periods]
    times = np.unique(np.concatenate((samples, top, charged, [first - 1])))
    rolling = posts_between(times - DAY_SECONDS + 1, times + 1)
    bounds = day_bounds(policy.timezone, first, last)
    daily = posts_between(bounds[:-1], bounds[1:])
    return EntitySeries([int(t) for t in times], [int(v) for v in rolling],
                        [int(d) for d in bounds[:-1]], [int(v) for v in daily])
