"""The charts of report.html, drawn as inline SVG: no script runs to draw them.

Each chart has axes with round-valued ticks, labelled, and gridlines; every point and
bar carries its exact value in a `<title>`, which a browser shows on hover. Legends sit
above the plot area, which the data never leaves, so no label covers the curve. Times
on the rolling chart are UTC; days on the daily chart are the policy timezone's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from scrapewatch.damages import Period, iso
from scrapewatch.reporting.charts import EntitySeries
from scrapewatch.reporting.escape import for_html
from scrapewatch.schema import DAY_SECONDS

WIDTH, HEIGHT = 720, 250
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 30, 42  # margins: the plot area is what they leave
PLOT_BOTTOM = HEIGHT - BOTTOM
MAX_TIME_TICKS = 7  # labels of up to 10 characters fit side by side
BAR_SLOT = 56  # the widest a day's slot gets: one day is drawn as a day, not a band
LABEL_WIDTH = 72  # the room a date label under a bar needs
HOVER_GAP = 5  # px between the curve's points that show their value on hover: circles of
# radius 4 that far apart leave no gap along the curve
_MINUTE, _HOUR = 60, 3600
_TIME_STEPS = ([m * _MINUTE for m in (1, 2, 5, 10, 15, 30)]
               + [h * _HOUR for h in (1, 2, 3, 6, 12)] + [d * DAY_SECONDS for d in (1, 2, 7, 14)])
_FONT = "font-size='11' fill='#333'"


def rolling_chart(series: EntitySeries, periods: Sequence[Period], threshold: int) -> str:
    """Posts in the 24 hours before each time, the limit and the charged periods."""
    times, rolling = series.times, series.rolling
    t0 = min([times[0], *(p.start for p in periods)])  # calendar days may start earlier
    t1 = max([times[-1], *(p.end for p in periods)])
    ticks = value_ticks(max(max(rolling), threshold))
    x = _scale(t0, t1, LEFT, WIDTH - RIGHT)
    y = _scale(0, ticks[-1], PLOT_BOTTOM, TOP)
    shades = "".join(
        f"<rect class='charged' x='{x(p.start):.1f}' y='{TOP}' "
        f"width='{max(1.0, x(p.end) - x(p.start)):.1f}' height='{PLOT_BOTTOM - TOP}' "
        f"fill='#f6c84c' fill-opacity='.35'><title>charged {iso(p.start)} to {iso(p.end)}: "
        f"{p.posts:,} posts</title></rect>" for p in periods)
    points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, rolling, strict=True))
    # the peak, and the periods' last seconds, whose values are the periods' posts
    wanted = {times[rolling.index(max(rolling))], *(p.end - 1 for p in periods)}
    hovers, last = [], -float(HOVER_GAP)
    for t, v in zip(times, rolling, strict=True):
        if x(t) - last >= HOVER_GAP or t in wanted:
            hovers.append(f"<circle class='pt' cx='{x(t):.1f}' cy='{y(v):.1f}' r='4'><title>"
                          f"{_instant(t)}: {v:,} posts</title></circle>")
            last = x(t)
    limit = y(threshold)
    legend = (f"<line x1='{LEFT}' y1='12' x2='{LEFT + 22}' y2='12' stroke='#c0392b' "
              f"stroke-dasharray='5,4'/><text class='limit-label' x='{LEFT + 28}' y='16' "
              f"{_FONT}>limit: more than {threshold:,} posts</text>"
              f"<line x1='{LEFT + 250}' y1='12' x2='{LEFT + 272}' y2='12' stroke='#1f5fa8' "
              f"stroke-width='2'/><text x='{LEFT + 278}' y='16' {_FONT}>posts in the 24 "
              f"hours before</text><rect x='{LEFT + 470}' y='6' width='16' height='12' "
              f"fill='#f6c84c' fill-opacity='.6'/><text x='{LEFT + 492}' y='16' {_FONT}>"
              "charged period</text>")
    return (f"{_open('rolling', 'posts in the 24 hours before each moment')}{legend}"
            f"{_value_axis(ticks, y)}{_time_axis(t0, t1, x)}{shades}"
            f"<line class='limit' x1='{LEFT}' y1='{limit:.1f}' x2='{WIDTH - RIGHT}' "
            f"y2='{limit:.1f}' stroke='#c0392b' stroke-dasharray='5,4'/>"
            f"<polyline points='{points}' fill='none' stroke='#1f5fa8' stroke-width='1.5'/>"
            f"{''.join(hovers)}</svg>")


def daily_chart(series: EntitySeries, zone: str) -> str:
    """Posts per calendar day in `zone`, a bar each, centred; a day's slot is at most
    BAR_SLOT wide."""
    count = len(series.days)
    slot = min((WIDTH - RIGHT - LEFT) / count, BAR_SLOT)
    first = LEFT + (WIDTH - RIGHT - LEFT - count * slot) / 2
    ticks = value_ticks(max(series.daily))
    y = _scale(0, ticks[-1], PLOT_BOTTOM, TOP)
    every = math.ceil(LABEL_WIDTH / slot)  # a date label under every `every`-th bar
    bars, labels = [], []
    for i, (day, posts) in enumerate(zip(series.days, series.daily, strict=True)):
        left, date = first + i * slot, _day(day, zone)
        bars.append(f"<rect class='day' x='{left + slot * .1:.1f}' y='{y(posts):.1f}' "
                    f"width='{slot * .8:.1f}' height='{PLOT_BOTTOM - y(posts):.1f}' "
                    f"fill='#1f5fa8'><title>{date}: {posts:,} posts</title></rect>")
        if slot >= 40 and posts:  # room for the value above the bar
            bars.append(f"<text x='{left + slot / 2:.1f}' y='{y(posts) - 3:.1f}' "
                        f"text-anchor='middle' {_FONT}>{_short(posts)}</text>")
        if i % every == 0:
            labels.append(f"<line x1='{left + slot / 2:.1f}' y1='{PLOT_BOTTOM}' "
                          f"x2='{left + slot / 2:.1f}' y2='{PLOT_BOTTOM + 4}' stroke='#888'/>"
                          f"<text class='tick' x='{left + slot / 2:.1f}' "
                          f"y='{PLOT_BOTTOM + 16}' text-anchor='middle' {_FONT}>{date}</text>")
    return (f"{_open('daily', 'posts per day')}{_value_axis(ticks, y)}"
            f"<line x1='{LEFT}' y1='{PLOT_BOTTOM}' x2='{WIDTH - RIGHT}' y2='{PLOT_BOTTOM}' "
            f"stroke='#888'/>{''.join(labels)}{''.join(bars)}</svg>")


def value_ticks(largest: float) -> list[int]:
    """Round whole numbers from 0 to at or above `largest` plus 5 %, three to six of
    them, spaced 1, 2, 2.5 or 5 times a power of ten."""
    target = largest * 1.05 / 4
    power = 10 ** max(0, math.floor(math.log10(target))) if target > 1 else 1
    step = next(int(m * power) for m in (1, 2, 2.5, 5, 10)
                if m * power >= target and float(m * power).is_integer())
    return [i * step for i in range(max(math.ceil(largest * 1.05 / step), 1) + 1)]


def time_ticks(t0: int, t1: int) -> list[int]:
    """Round instants in [t0, t1] (epoch seconds, UTC): multiples of the smallest step
    of _TIME_STEPS that gives at most MAX_TIME_TICKS of them (a doubling of 14 days
    past those)."""
    step = next((s for s in _TIME_STEPS if (t1 - t0) / s < MAX_TIME_TICKS), None)
    if step is None:
        step = 14 * DAY_SECONDS * 2 ** math.ceil(
            math.log2((t1 - t0) / (MAX_TIME_TICKS * 14 * DAY_SECONDS)))
    return list(range(-(-t0 // step) * step, t1 + 1, step))


def _open(kind: str, label: str) -> str:
    return (f"<svg class='{kind}' viewBox='0 0 {WIDTH} {HEIGHT}' width='{WIDTH}' "
            f"height='{HEIGHT}' role='img' aria-label='{label}'>")


def _value_axis(ticks: list[int], y: Callable[[float], float]) -> str:
    """A gridline and a label at each tick, and the axis line."""
    axis = f"<line x1='{LEFT}' y1='{TOP}' x2='{LEFT}' y2='{PLOT_BOTTOM}' stroke='#888'/>"
    return axis + "".join(
        f"<line x1='{LEFT}' y1='{y(v):.1f}' x2='{WIDTH - RIGHT}' y2='{y(v):.1f}' "
        f"stroke='{'#888' if v == 0 else '#e6e6e6'}'/><text class='tick' x='{LEFT - 6}' "
        f"y='{y(v) + 4:.1f}' text-anchor='end' {_FONT}>{_short(v)}</text>" for v in ticks)


def _time_axis(t0: int, t1: int, x: Callable[[float], float]) -> str:
    """A gridline and a label at each round instant: the time of day under sub-day
    steps, with the date under it where the date changes; the date under day steps."""
    ticks = time_ticks(t0, t1)
    whole_days = len(ticks) < 2 or (ticks[1] - ticks[0]) % DAY_SECONDS == 0
    parts, shown = [], ""
    for t in ticks:
        at = datetime.fromtimestamp(t, UTC)
        date = at.strftime("%Y-%m-%d")
        top, under = (date, "") if whole_days else (at.strftime("%H:%M"),
                                                      date if date != shown else "")
        shown = date
        parts.append(f"<line x1='{x(t):.1f}' y1='{TOP}' x2='{x(t):.1f}' y2='{PLOT_BOTTOM + 4}' "
                     f"stroke='#e6e6e6'/><text class='tick' x='{x(t):.1f}' "
                     f"y='{PLOT_BOTTOM + 16}' text-anchor='middle' {_FONT}>{top}</text>")
        if under:
            parts.append(f"<text x='{x(t):.1f}' y='{PLOT_BOTTOM + 30}' text-anchor='middle' "
                         f"{_FONT}>{under}</text>")
    parts.append(f"<text x='{WIDTH - RIGHT}' y='{HEIGHT - 2}' text-anchor='end' {_FONT}>"
                 "UTC</text>")
    return "".join(parts)


def _scale(low: float, high: float, start: float, end: float) -> Callable[[float], float]:
    """The linear map of [low, high] onto [start, end]."""
    span = (high - low) or 1
    return lambda v: start + (v - low) / span * (end - start)


def _instant(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _day(midnight: int, zone: str) -> str:
    """The local date that starts at `midnight` (epoch seconds) in `zone`."""
    return for_html(datetime.fromtimestamp(midnight, ZoneInfo(zone)).strftime("%Y-%m-%d"))


def _short(value: float) -> str:
    """1.5M, 250k, 900: a tick or bar value in at most five characters or so."""
    for size, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.2f}".rstrip("0").rstrip(".") + unit
    return f"{value:.0f}"
