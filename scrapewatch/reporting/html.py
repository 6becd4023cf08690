"""report.html: one self-contained page a reader can follow without the docs.

No script, font, stylesheet or image is fetched: styles are inline and charts are SVG
drawn here. Everything that comes from a log (entities, members, paths, quoted lines)
is escaped for HTML, so a user agent or key of `<script>` is shown as text, and control
and bidi characters are shown as marked escapes (`\\u202e`, `\\x00`). Charts are drawn
for the entities with the largest damages (`TOP_CHARTS`); the others are listed in the
table.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from scrapewatch.config import PERIODS, ROUNDINGS, Policy
from scrapewatch.damages import iso
from scrapewatch.reporting.charts import EntitySeries
from scrapewatch.reporting.counted import funnel_words, window_words
from scrapewatch.reporting.escape import for_html
from scrapewatch.reporting.model import Finding, PeriodFile, Report
from scrapewatch.version import __version__

TOP_CHARTS = 50  # at most report.findings.CHARTED: the entities with chart series
TABLE_ROWS = 1_000  # entities listed in a table; the other files list them all
WIDTH, HEIGHT, PAD = 720, 200, 44  # chart size and the margin for axis labels

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#1b1b1b}
body{padding:0 1em}h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}
h3{margin-top:1.6em}table{border-collapse:collapse;margin:.6em 0}
td,th{padding:.25em .7em;border-bottom:1px solid #e3e3e3;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.chosen{background:#fff3c4;font-weight:600}.note{color:#555}
.total{font-size:1.3em;font-weight:600}svg{display:block;margin:.4em 0 1em}
code{font-size:.92em;word-break:break-all}
"""

_PERIOD_WORDS = {
    "greedy": "the first 24 hours that go over the limit are charged, then the next ones "
              "from the first request after them, and so on (no post is charged twice)",
    "calendar": "each calendar day over the limit is charged",
    "max": "the set of non-overlapping 24-hour periods worth the most is charged (the most "
           "a claimant could argue)",
    "peak": "only the single worst 24-hour period is charged",
}
_ROUNDING_WORDS = {
    "full": "whole millions only (the conservative reading)",
    "prorata": "exactly, to the cent",
    "started": "every started million",
}


def write_report_html(report: Report, stream: TextIO) -> None:
    """report.html into `stream`."""
    stream.write(render_html(report))


def _window(report: Report) -> str:
    """The --since/--until window the report counted, as a paragraph (or nothing)."""
    words = window_words(report.window)
    return "" if words is None else f"<p class='note'>{_e(words)}</p>\n"


def _funnel_table(report: Report) -> str:
    """What counted, and why the rest did not (see model.Funnel)."""
    funnel = report.funnel
    if funnel is None:
        return ""
    p = report.policy
    rows = [("lines read", funnel.lines), ("rejected", funnel.rejected),
            ("blank lines and directives", funnel.not_requests), ("requests", funnel.requests),
            (f"not counted: before {p.effective_from:%Y-%m-%d %H:%M:%S} UTC (effective_from)",
             funnel.before_effective_from),
            (f"not counted: status not counted ({p.count_statuses} counts)",
             funnel.status_not_counted),
            ("not counted: outside the window, or pruned", funnel.outside_window),
            ("not counted: allow-listed entities", funnel.allow_listed),
            ("counted requests", funnel.counted_requests), ("posts they accessed", funnel.posts),
            ("counted requests that matched no posts rule", funnel.unpriced)]
    cells = "".join(f"<tr><td>{_e(what)}</td><td class='n'>{count:,}</td></tr>"
                    for what, count in rows)
    said = "".join(f"<p>{_e(line)}</p>" for line in funnel_words(funnel, p)[1:])
    return f"<h2>What counted</h2>\n{said}<table>{cells}</table>\n"


def _overview(report: Report) -> str:
    """The population counted: by status, the entities with the most posts, and the
    counted activity by hour or day."""
    overview = report.overview
    if overview is None:
        return ""
    statuses = "".join(f"<tr><td>{_e(name)}</td><td class='n'>{count:,}</td></tr>"
                       for name, count in overview.statuses.items())
    top = "".join(f"<tr><td><code>{_e(entity)}</code> ({_e(kind)})</td>"
                  f"<td class='n'>{posts:,}</td><td class='n'>{requests:,}</td></tr>"
                  for kind, entity, posts, requests in overview.top)
    when = "%Y-%m-%d %H:00" if overview.bucket == "hour" else "%Y-%m-%d"
    series = "".join(f"<tr><td>{_e(datetime.fromtimestamp(start, UTC).strftime(when))}</td>"
                     f"<td class='n'>{requests:,}</td><td class='n'>{posts:,}</td></tr>"
                     for start, requests, posts in overview.series)
    return f"""<h2>Overview</h2>
<p>Requests by status class:</p>
<table><tr><th>status</th><th class='n'>requests</th></tr>{statuses}</table>
<p>The entities with the most counted posts, whether or not they crossed the limit:</p>
<table><tr><th>entity</th><th class='n'>posts</th><th class='n'>requests</th></tr>{top}</table>
<p>Counted requests and posts by {overview.bucket} (UTC; those without any left out):</p>
<table><tr><th>{overview.bucket}</th><th class='n'>requests</th><th class='n'>posts</th></tr>
{series}</table>
"""


def render_html(report: Report) -> str:
    """The whole page."""
    p = report.policy
    parts = [f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>scrapewatch report</title><style>{_CSS}</style></head><body>
<h1>Who accessed more than {p.threshold_posts:,} posts in 24 hours</h1>
<p class="note">scrapewatch {_e(__version__)}, generated
{_e(report.generated_at.strftime("%Y-%m-%d %H:%M UTC"))} from {len(report.files):,}
file(s): {report.lines:,} lines, {report.requests:,} requests, {report.rejected:,}
rejected; requests from {_e(_when(report.first_request_at))} to
{_e(_when(report.last_request_at))}.</p>
{_window(report)}<p class="total">{len(report.findings):,} entities over the limit; damages
${report.damages_usd:,.2f} in {report.periods:,} charged period(s).</p>
{_funnel_table(report)}{_overview(report)}<h2>The rule applied</h2>
{_policy_words(p)}
<h2>How much the reading of the clause matters</h2>
<p>Total damages under every way of choosing the periods (rows) and of rounding (columns);
the one this report uses is highlighted.</p>
{_sensitivity(report)}
<h2>Entities over the limit</h2>
{_findings_table(report.findings)}"""]
    for finding in report.findings[:TOP_CHARTS]:
        parts.append(_entity_section(finding, p))
    if len(report.findings) > TOP_CHARTS:
        listed = ("all " if len(report.findings) <= TABLE_ROWS
                  else f"the first {TABLE_ROWS:,} of ")
        parts.append(f"<p class='note'>Charts are drawn for the {TOP_CHARTS} entities with "
                     f"the largest damages; the table above lists {listed}"
                     f"{len(report.findings):,}.</p>")
    if report.allowed:
        parts.append(f"""<h2>Authorised: allow-listed, not charged</h2>
<p>These would have gone over the limit; the allow-list says their access is licensed.
They would owe ${sum(f.assessment.damages_usd for f in report.allowed):,.2f}.</p>
{_findings_table(report.allowed)}""")
    parts.append(f"""<h2>Watchlist</h2>
<p>Entities whose busiest 24 hours reached {p.warning_share:.0%} of the limit without going
over it.</p>
{_watchlist_table(report)}
<h2>Files read</h2>
{_files_table(report)}
</body></html>
""")
    return "".join(parts)


def _e(text: object) -> str:
    """Any text on the page: escaped for HTML, controls and bidi characters visible."""
    return for_html(text)


def _when(seconds: int | None) -> str:
    return "—" if seconds is None else iso(seconds)


def _policy_words(p: Policy) -> str:
    charge = ("all the posts of a charged period" if p.charge == "all" else
              f"the posts of a charged period beyond the first {p.threshold_posts:,}")
    return f"""<ul>
<li>An entity (the API key, else the user, else the client address of each request) goes
over the limit when some 24-hour period holds more than {p.threshold_posts:,} posts.
Exactly {p.threshold_posts:,} is not over it.</li>
<li>Charged periods: {_e(_PERIOD_WORDS[p.periods])}.</li>
<li>Damages: ${p.rate_usd:,} per {p.per_posts:,} posts, applied to {_e(charge)},
counted {_e(_ROUNDING_WORDS[p.rounding])}.</li>
<li>Requests count when their status is {_e(p.count_statuses)}; requests before
{_e(p.effective_from.strftime("%Y-%m-%d %H:%M UTC"))} do not count. Calendar days are
in {_e(p.timezone)}.</li>
<li>A log cannot show whether access was authorised: this is exposure under the clause,
not a finding of guilt.</li></ul>"""


def _sensitivity(report: Report) -> str:
    table = report.sensitivity()
    head = "".join(f"<th class='n'>{_e(r)}</th>" for r in ROUNDINGS)
    rows = []
    chosen = (report.policy.periods, report.policy.rounding)
    for mode in PERIODS:
        cells = "".join(f"<td class='n{' chosen' if (mode, r) == chosen else ''}'>"
                        f"${table[mode][r]:,.2f}</td>" for r in ROUNDINGS)
        rows.append(f"<tr><th>{_e(mode)}</th>{cells}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def _findings_table(findings: Sequence[Finding]) -> str:
    if not findings:
        return "<p>None.</p>"
    more = (f"<p class='note'>The {TABLE_ROWS:,} with the largest damages of "
            f"{len(findings):,}; entities.csv and report.json list them all.</p>"
            if len(findings) > TABLE_ROWS else "")
    rows = "".join(
        f"<tr><td><code>{_e(f.window.entity)}</code></td><td>{_e(f.window.entity_kind)}</td>"
        f"<td class='n'>{f.window.peak_24h_posts:,}</td>"
        f"<td>{_e(_when(f.window.first_crossing))}</td>"
        f"<td class='n'>{len(f.assessment.periods)}</td>"
        f"<td class='n'>${f.assessment.damages_usd:,.2f}</td></tr>"
        for f in itertools.islice(findings, TABLE_ROWS))
    return (f"{more}<table><tr><th>entity</th><th>kind</th><th class='n'>peak 24 h posts</th>"
            "<th>first over the limit</th><th class='n'>periods</th>"
            f"<th class='n'>damages</th></tr>{rows}</table>")


def _entity_section(finding: Finding, policy: Policy) -> str:
    w, a = finding.window, finding.assessment
    periods = "".join(
        f"<tr><td>{_e(iso(p.start))}</td><td>{_e(iso(p.end))}</td><td class='n'>{p.posts:,}</td>"
        f"<td class='n'>{p.requests:,}</td><td class='n'>${d:,.2f}</td></tr>"
        + (f"<tr><td colspan='5'>{_evidence(finding.evidence[i])}</td></tr>"
           if finding.evidence else "")
        for i, (p, d) in enumerate(zip(a.periods, a.period_damages, strict=True)))
    charts = ""
    if finding.series is not None:
        charts = (f"<p>Posts in the 24 hours before each moment, with the limit (dashed) and "
                  f"the charged periods (shaded):</p>"
                  f"{_rolling_chart(finding, policy.threshold_posts)}"
                  f"<p>Posts per calendar day ({_e(policy.timezone)}):</p>"
                  f"{_daily_chart(finding.series, policy.timezone)}")
    members = ("<p>Members (their requests merged into one stream): "
               + ", ".join(f"<code>{_e(m)}</code>" for m in finding.members) + ".</p>"
               if finding.members else "")
    return f"""<h3><code>{_e(w.entity)}</code> ({_e(w.entity_kind)}): ${a.damages_usd:,.2f}</h3>
{members}<p>{w.total_posts:,} posts in {w.requests:,} requests ({w.observed_posts:,} counted by the
log, the rest estimated from request paths); busiest 24 hours from
{_e(iso(w.peak_start))}: {w.peak_24h_posts:,} posts.</p>
<table><tr><th>charged from</th><th>to</th><th class='n'>posts</th><th class='n'>requests</th>
<th class='n'>damages</th></tr>{periods}</table>{charts}"""


def _evidence(files: list[PeriodFile]) -> str:
    """Where a charged period's requests are: files, line ranges, the edge lines."""
    items = []
    for f in files:
        samples = "".join(f"<br><code>{n}: {_e(text)}</code>" for n, text in f.samples)
        items.append(f"<li><code>{_e(f.path)}</code> lines {f.first_line:,} to "
                     f"{f.last_line:,}: {f.requests:,} requests, {f.posts:,} posts "
                     f"<span class='note'>(SHA-256 {_e(f.sha256[:16])}…)</span>{samples}</li>")
    return f"<ul class='note'>{''.join(items)}</ul>"


def _rolling_chart(finding: Finding, threshold: int) -> str:
    series = finding.series
    assert series is not None
    periods = finding.assessment.periods  # may start before the first request (calendar)
    t0 = min([series.times[0], *(p.start for p in periods)])
    t1 = max([series.times[-1], *(p.end for p in periods)])
    top = max(max(series.rolling), threshold) * 1.1
    x = _scale(t0, t1, PAD, WIDTH - 8)
    y = _scale(0, top, HEIGHT - 24, 8)
    shades = "".join(
        f"<rect x='{x(p.start):.1f}' y='8' width='{max(1.0, x(p.end) - x(p.start)):.1f}' "
        f"height='{HEIGHT - 32}' fill='#f6c84c' fill-opacity='.35'>"
        f"<title>charged {_e(iso(p.start))} to {_e(iso(p.end))}: {p.posts:,} posts</title></rect>"
        for p in finding.assessment.periods)
    points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in
                      zip(series.times, series.rolling, strict=True))
    limit = y(threshold)
    return f"""<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img"
aria-label="rolling 24-hour posts">{shades}
<line x1="{PAD}" y1="{limit:.1f}" x2="{WIDTH - 8}" y2="{limit:.1f}" stroke="#c0392b"
stroke-dasharray="5,4"/><polyline points="{points}" fill="none" stroke="#1f5fa8"
stroke-width="1.5"/>{_axes(top, _e(iso(t0)[:16]), _e(iso(t1)[:16]))}
<text x="{WIDTH - 10}" y="{limit - 4:.1f}" text-anchor="end" font-size="11"
fill="#c0392b">limit {threshold:,}</text></svg>"""


def _daily_chart(series: EntitySeries, zone: str) -> str:
    top = max(max(series.daily), 1) * 1.1
    slot = (WIDTH - 8 - PAD) / len(series.days)
    y = _scale(0, top, HEIGHT - 24, 8)
    bars = "".join(
        f"<rect x='{PAD + i * slot + 1:.1f}' y='{y(v):.1f}' width='{max(1.0, slot - 2):.1f}' "
        f"height='{HEIGHT - 24 - y(v):.1f}' fill='#1f5fa8'><title>"
        f"{_e(_day(d, zone))}: {v:,} posts</title></rect>"
        for i, (d, v) in enumerate(zip(series.days, series.daily, strict=True)))
    first, last = _day(series.days[0], zone), _day(series.days[-1], zone)
    return f"""<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img"
aria-label="posts per day">{bars}{_axes(top, first, last)}</svg>"""


def _day(midnight: int, zone: str) -> str:
    """The local date that starts at `midnight` (epoch seconds) in `zone`."""
    return datetime.fromtimestamp(midnight, ZoneInfo(zone)).strftime("%Y-%m-%d")


def _axes(top: float, left: str, right: str) -> str:
    return (f"<line x1='{PAD}' y1='{HEIGHT - 24}' x2='{WIDTH - 8}' y2='{HEIGHT - 24}' "
            f"stroke='#888'/><line x1='{PAD}' y1='8' x2='{PAD}' y2='{HEIGHT - 24}' "
            f"stroke='#888'/><text x='{PAD - 4}' y='16' text-anchor='end' font-size='11'>"
            f"{_short(top)}</text><text x='{PAD - 4}' y='{HEIGHT - 24}' text-anchor='end' "
            f"font-size='11'>0</text><text x='{PAD}' y='{HEIGHT - 6}' font-size='11'>{left}"
            f"</text><text x='{WIDTH - 8}' y='{HEIGHT - 6}' text-anchor='end' "
            f"font-size='11'>{right}</text>")


def _scale(low: float, high: float, start: float, end: float) -> Callable[[float], float]:
    """The linear map of [low, high] onto [start, end]."""
    span = (high - low) or 1
    return lambda v: start + (v - low) / span * (end - start)


def _short(value: float) -> str:
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


def _watchlist_table(report: Report) -> str:
    if not report.watchlist:
        return "<p>None.</p>"
    more = (f"<p class='note'>The {TABLE_ROWS:,} highest of {len(report.watchlist):,}; "
            "report.json lists them all.</p>" if len(report.watchlist) > TABLE_ROWS else "")
    rows = "".join(f"<tr><td><code>{_e(w.entity)}</code></td><td>{_e(w.entity_kind)}</td>"
                   f"<td class='n'>{w.peak_24h_posts:,}</td><td>{_e(iso(w.peak_start))}</td></tr>"
                   for w in itertools.islice(report.watchlist, TABLE_ROWS))
    return (f"{more}<table><tr><th>entity</th><th>kind</th><th class='n'>peak 24 h posts</th>"
            f"<th>from</th></tr>{rows}</table>")


def _files_table(report: Report) -> str:
    rows = "".join(f"<tr><td><code>{_e(f.path)}</code></td><td>{_e(f.format or '—')}</td>"
                   f"<td class='n'>{f.lines:,}</td><td class='n'>{f.rejected:,}</td>"
                   f"<td><code>{_e(f.sha256)}</code></td></tr>" for f in report.files)
    return ("<table><tr><th>file</th><th>format</th><th class='n'>lines</th>"
            f"<th class='n'>rejected</th><th>SHA-256</th></tr>{rows}</table>"
            + _set_aside_table(report))


def _set_aside_table(report: Report) -> str:
    """The inputs not read: duplicates of a file read, paths that are not files or that
    no format fits, and files the --include and --exclude patterns left out."""
    rows = [(d.path, f"{d.reason} as {d.duplicate_of}") for d in report.duplicates]
    rows += [(s.path, s.reason) for s in report.skipped + report.excluded]
    if not rows:
        return ""
    cells = "".join(f"<tr><td><code>{_e(path)}</code></td><td>{_e(why)}</td></tr>"
                    for path, why in rows)
    return ("<p>Not read (each input counts once; only regular files in a log format are "
            "read, of those --include and --exclude keep):</p>"
            f"<table><tr><th>path</th><th>why</th></tr>{cells}</table>")
