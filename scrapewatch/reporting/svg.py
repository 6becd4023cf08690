"""The charts of report.html, drawn as inline SVG: no script runs to draw them.

Each chart has axes with round-valued ticks, labelled, and gridlines. Every bar and
charged period carries its exact value in a `<title>`, which a browser shows on hover,
and so do points along the curve, close enough together that one is under the pointer
anywhere on it. Legends sit above the plot area, which the data never leaves, so no
label covers the curve; a label that would run past the chart's edge is left out.
Times on the rolling chart are UTC; days on the daily chart are the policy timezone's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from scrapewatch.damages import Period, iso
from scrapewatch.reporting.charts import EntitySeries
from scrapewatch.schema import DAY_SECONDS

WIDTH, HEIGHT = 720, 250
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 30, 42  # margins: the plot area is what they leave
PLOT_BOTTOM = HEIGHT - BOTTOM
CHAR = 7.0  # the most a character of the 11-unit labels takes, to lay them out
MAX_TIME_TICKS = 7  # labels of up to 10 characters fit side by side
LABEL_WIDTH = 10 * CHAR + 2  # the room a date label needs
BAR_SLOT = LABEL_WIDTH  # the widest a day's slot gets: one day is drawn as a day
HOVER_GAP = 5  # units between the curve's points that show their value on hover:
# circles of radius 4 that far apart leave no gap along the curve
_MINUTE, _HOUR = 60, 3600
_TIME_STEPS = ([m * _MINUTE for m in (1, 2, 5, 10, 15, 30)]
               + [h * _HOUR for h in (1, 2, 3, 6, 12)] + [d * DAY_SECONDS for d in (1, 2, 7, 14)])
_MONTH_STEPS = (1, 2, 3, 6, 12, 24, 60, 120, 240, 600)
_DAY_STEPS = (1, 2, 7, 14)  # labels under every nth bar, else at the starts of months
_FONT = "font-size='11' fill='#333'"
_MARKS = {  # the legend's marks
    "limit": "<line x1='{x}' y1='12' x2='{x2}' y2='12' stroke='#c0392b' stroke-dasharray='5,4'/>",
    "curve": "<line x1='{x}' y1='12' x2='{x2}' y2='12' stroke='#1f5fa8' stroke-width='2'/>",
    "charged": "<rect x='{x}' y='6' width='22' height='12' fill='#f6c84c' fill-opacity='.6'/>"}
_ROLLING_LEGEND = (("curve", "posts in the 24 hours before"), ("charged", "charged period"))


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
    return (f"{_open('rolling', 'posts in the 24 hours before each moment')}"
            f"{_legend(threshold, 'limit: more than {} posts', _ROLLING_LEGEND)}"
            f"{_value_axis(ticks, y)}{_time_axis(t0, t1, x)}{shades}{_limit_line(y(threshold))}"
            f"<polyline points='{points}' fill='none' stroke='#1f5fa8' stroke-width='1.5'/>"
            f"{''.join(hovers)}</svg>")


def _legend(threshold: int, limit_words: str, others: Sequence[tuple[str, str]] = ()) -> str:
    """A legend above the plot, one item after the other: the limit (`limit_words`
    with the threshold in it, in short, 1T, when in full the legend would not fit), then
    the `others` (mark of _MARKS, words)."""
    for limit in (f"{threshold:,}", _short(threshold)):
        items = [("limit", limit_words.format(limit)), *others]
        if LEFT + sum(28 + len(text) * CHAR + 18 for _, text in items) - 18 <= WIDTH - 2:
            break
    parts, x = [], LEFT
    for mark, text in items:
        kind = " class='limit-label'" if mark == "limit" else ""
        parts.append(_MARKS[mark].format(x=x, x2=x + 22)
                     + f"<text{kind} x='{x + 28}' y='16' {_FONT}>{text}</text>")
        x += 28 + round(len(text) * CHAR) + 18
    return "".join(parts)


def _limit_line(y: float) -> str:
    return (f"<line class='limit' x1='{LEFT}' y1='{y:.1f}' x2='{WIDTH - RIGHT}' "
            f"y2='{y:.1f}' stroke='#c0392b' stroke-dasharray='5,4'/>")


def daily_chart(series: EntitySeries, zone: str, threshold: int | None = None) -> str:
    """Posts per calendar day in `zone`, a bar each, centred; a day's slot is at most
    BAR_SLOT wide. With a `threshold` (when calendar days are what is charged), its
    limit line too."""
    count = len(series.days)
    slot = min((WIDTH - RIGHT - LEFT) / count, BAR_SLOT)
    first = LEFT + (WIDTH - RIGHT - LEFT - count * slot) / 2
    ticks = value_ticks(max([*series.daily, threshold or 0]))
    y = _scale(0, ticks[-1], PLOT_BOTTOM, TOP)
    limit = ("" if threshold is None else _legend(threshold, "limit: more than {} posts in "
                                                  "a calendar day") + _limit_line(y(threshold)))
    dates = [datetime.fromtimestamp(day, ZoneInfo(zone)).date() for day in series.days]
    labelled = set(_labelled_days(dates, slot))
    bars, labels = [], []
    for i, (day, posts) in enumerate(zip(dates, series.daily, strict=True)):
        left, middle = first + i * slot, first + (i + .5) * slot
        bars.append(f"<rect class='day' x='{left + slot * .1:.1f}' y='{y(posts):.1f}' "
                    f"width='{slot * .8:.1f}' height='{PLOT_BOTTOM - y(posts):.1f}' "
                    f"fill='#1f5fa8'><title>{day}: {posts:,} posts</title></rect>")
        value = next((v for v in (f"{posts:,}", _short(posts)) if len(v) * CHAR <= slot), "")
        if posts and value:  # the value above the bar, exact where it fits
            bars.append(f"<text x='{middle:.1f}' y='{y(posts) - 3:.1f}' "
                        f"text-anchor='middle' {_FONT}>{value}</text>")
        if i in labelled:
            labels.append(f"<line x1='{middle:.1f}' y1='{PLOT_BOTTOM}' x2='{middle:.1f}' "
                          f"y2='{PLOT_BOTTOM + 4}' stroke='#888'/>"
                          + _label(middle, PLOT_BOTTOM + 18, str(day)))
    return (f"{_open('daily', 'posts per day')}{_value_axis(ticks, y)}"
            f"<line x1='{LEFT}' y1='{PLOT_BOTTOM}' x2='{WIDTH - RIGHT}' y2='{PLOT_BOTTOM}' "
            f"stroke='#888'/>{''.join(labels)}{''.join(bars)}{limit}</svg>")


def _labelled_days(dates: list[date], slot: float) -> list[int]:
    """The bars (of consecutive days `dates`, `slot` apart) that get a date label: every
    day, or every 2nd, 7th or 14th from the first, or else the first day of every 1, 2,
    3, 6, 12 or more months: the first choice that leaves room for each label."""
    every = next((n for n in _DAY_STEPS if n * slot >= LABEL_WIDTH), None)
    if every is not None:
        return list(range(0, len(dates), every))
    months = next((n for n in _MONTH_STEPS if n * 28 * slot >= LABEL_WIDTH), None)
    return [] if months is None else [
        i for i, d in enumerate(dates) if d.day == 1 and (d.year * 12 + d.month - 1) % months == 0]


def value_ticks(largest: float) -> list[int]:
    """Round whole numbers from 0 to at or above `largest` plus 5 %, three to five of
    them, spaced 1, 2, 2.5 or 5 times a power of ten."""
    target = largest * 1.05 / 4
    power = 10 ** max(0, math.floor(math.log10(target))) if target > 1 else 1
    step = next(int(m * power) for m in (1, 2, 2.5, 5, 10)
                if m * power >= target and float(m * power).is_integer())
    return [i * step for i in range(max(math.ceil(largest * 1.05 / step), 1) + 1)]


def time_ticks(t0: int, t1: int) -> list[tuple[int, str, str]]:
    """Round instants in [t0, t1] (epoch seconds, UTC), at most MAX_TIME_TICKS of them,
    each with its label and the line under it: the time of day, with the date under it
    where the date changes; the date (day steps); the month (month steps); the year.
    The steps are the smallest of _TIME_STEPS, else of _MONTH_STEPS, that keep to
    MAX_TIME_TICKS."""
    span = t1 - t0
    step = next((s for s in _TIME_STEPS if span // s < MAX_TIME_TICKS), None)
    if step is not None:
        instants = range(-(-t0 // step) * step, t1 + 1, step)
        ticks, shown = [], ""
        for t in instants:
            day = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")
            if step % DAY_SECONDS == 0:
                ticks.append((t, day, ""))
            else:
                ticks.append((t, datetime.fromtimestamp(t, UTC).strftime("%H:%M"),
                              day if day != shown else ""))
            shown = day
        return ticks
    # months counted as year * 12 + month - 1: from the one after t0's to t1's
    first, last = datetime.fromtimestamp(t0, UTC), datetime.fromtimestamp(t1, UTC)
    after, until = first.year * 12 + first.month, last.year * 12 + last.month - 1
    for months in _MONTH_STEPS:
        starts = [datetime(m // 12, m % 12 + 1, 1, tzinfo=UTC)
                  for m in range(after, until + 1) if m % months == 0]
        if len(starts) <= MAX_TIME_TICKS:
            shape = "%Y" if months >= 12 else "%Y-%m"
            return [(int(d.timestamp()), d.strftime(shape), "") for d in starts]
    return []


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
    """A gridline and a label (see time_ticks) at each round instant (UTC, as the
    chart's caption says)."""
    parts = []
    for t, label, under in time_ticks(t0, t1):
        parts.append(f"<line x1='{x(t):.1f}' y1='{TOP}' x2='{x(t):.1f}' y2='{PLOT_BOTTOM + 4}' "
                     f"stroke='#e6e6e6'/>" + _label(x(t), PLOT_BOTTOM + 18, label)
                     + _label(x(t), PLOT_BOTTOM + 32, under, tick=False))
    return "".join(parts)


def _label(middle: float, baseline: float, text: str, *, tick: bool = True) -> str:
    """A label centred under an axis point; nothing when it would run past the chart's
    right edge (the gridline alone shows that point)."""
    if not text or middle + len(text) * CHAR / 2 > WIDTH:
        return ""
    kind = " class='tick'" if tick else ""
    return (f"<text{kind} x='{middle:.1f}' y='{baseline}' text-anchor='middle' "
            f"{_FONT}>{text}</text>")


def _scale(low: float, high: float, start: float, end: float) -> Callable[[float], float]:
    """The linear map of [low, high] onto [start, end]."""
    span = (high - low) or 1
    return lambda v: start + (v - low) / span * (end - start)


def _instant(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(value: float) -> str:
    """1.5M, 250k, 900: a value to three significant digits, in at most five characters
    or so."""
    rounded = float(f"{value:.3g}")
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if rounded >= size:
            return f"{rounded / size:g}{unit}"
    return f"{rounded:g}"
