"""report.html: one self-contained page a reader can follow without the docs, on a
screen of any width and on paper.

Nothing is fetched: styles and the one script are inline, and a Content-Security-Policy
lets no other script run and nothing load. Charts are SVG drawn here (reporting/svg.py),
so they show with scripts off. The script only sorts the tables whose headers are
clicked. Everything that comes from a log (entities, members, paths, quoted lines) is
escaped for HTML, so a user agent or key of `<script>` is shown as text, and control and
bidi characters are shown as marked escapes (`\\u202e`, `\\x00`). Charts are drawn for
the entities with the largest damages (`TOP_CHARTS`); the others are listed in the
table.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from scrapewatch.config import PERIODS, ROUNDINGS, Policy
from scrapewatch.damages import iso
from scrapewatch.reporting.counted import funnel_words, plural, window_words
from scrapewatch.reporting.escape import for_html
from scrapewatch.reporting.model import Finding, PeriodFile, Report
from scrapewatch.reporting.svg import daily_chart, rolling_chart
from scrapewatch.version import __version__

TOP_CHARTS = 50  # at most report.findings.CHARTED: the entities with chart series
TABLE_ROWS = 1_000  # entities listed in a table; the other files list them all

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#1b1b1b}
body{padding:0 1em}h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}
h3{margin-top:1.6em}table{border-collapse:collapse;margin:.6em 0}
td,th{padding:.25em .7em;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.chosen{background:#fff3c4;font-weight:600}.note{color:#555}
.total{font-size:1.3em;font-weight:600}code{font-size:.92em;word-break:break-all}
svg{display:block;margin:.4em 0 1em;max-width:100%;height:auto}
.pt{fill:transparent}.pt:hover{fill:#1f5fa8}.scroll{overflow-x:auto}
.sortable th{cursor:pointer;white-space:nowrap}.sortable th:hover{background:#f2f2f2}
th[aria-sort=ascending]::after{content:" \\25b2"}th[aria-sort=descending]::after{content:" \\25bc"}
.scroll td>code{word-break:normal}.quote{margin:.2em 0 .2em 1em}
.at{color:#1b1b1b;font-weight:600;margin-right:.5em}
@media print{
@page{margin:14mm}
body{max-width:none;margin:0;padding:0;font-size:10pt}
h2,h3{break-after:avoid}tr,svg,.quote{break-inside:avoid}
.scroll{overflow:visible}.scroll td>code{word-break:break-all}
.sortable th{cursor:auto;white-space:normal}th[aria-sort]::after{content:none}
.chosen,svg{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""
# Sorts a table.sortable by the column whose header is clicked (or given Enter or
# Space), up then down: a column of numbers (td.n) by amount ($ and thousands
# separators ignored, cells without a number after them going up), any other by text,
# with runs of digits by their value (192.0.2.9 before 192.0.2.10).
_SORT_SCRIPT = """
for (const table of document.querySelectorAll("table.sortable")) {
  const heads = [...table.tHead.rows[0].cells];
  heads.forEach((th, column) => {
    th.tabIndex = 0;
    th.title = "Sort by this column";
    const sort = () => {
      const up = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(h => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      const body = table.tBodies[0];
      const rows = [...body.rows].map(row => [sortKey(row.cells[column]), row]);
      rows.sort((a, b) => (up ? 1 : -1) * compare(a[0], b[0]));
      body.append(...rows.map(pair => pair[1]));
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", event => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
    });
  });
}
function sortKey(cell) {
  const text = cell ? cell.textContent.trim() : "";
  if (!cell || !cell.classList.contains("n")) return text;
  const number = text.replace(/[$,\\s]/g, "");
  return /^-?\\d+(\\.\\d+)?$/.test(number) ? Number(number) : text;
}
function compare(a, b) {
  if (typeof a !== typeof b) return typeof a === "number" ? -1 : 1;
  return typeof a === "number" ? a - b : a.localeCompare(b, undefined, {numeric: true});
}
"""
# Only the script above may run, and nothing may load: a planted script that escaping
# missed would still not run.
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
        "script-src 'sha256-"
        + base64.b64encode(hashlib.sha256(_SORT_SCRIPT.encode()).digest()).decode() + "'")

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
    table = _table("<th>step</th><th class='n'>count</th>", cells, sortable=False)
    return f"<h2>What counted</h2>\n{said}{table}\n"


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
{_table("<th>status</th><th class='n'>requests</th>", statuses)}
<p>The entities with the most counted posts, whether or not they crossed the limit:</p>
{_table("<th>entity</th><th class='n'>posts</th><th class='n'>requests</th>", top)}
<p>Counted requests and posts by {overview.bucket} (UTC; those without any left out):</p>
{_table(f"<th>{overview.bucket}</th><th class='n'>requests</th><th class='n'>posts</th>",
        series)}
"""


def render_html(report: Report) -> str:
    """The whole page."""
    p = report.policy
    parts = [f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>scrapewatch report</title><style>{_CSS}</style></head><body>
<h1>Who accessed more than {p.threshold_posts:,} posts in 24 hours</h1>
<p class="note">scrapewatch {_e(__version__)}, generated
{_e(report.generated_at.strftime("%Y-%m-%d %H:%M UTC"))} from
{plural(len(report.files), "file")}: {plural(report.lines, "line")},
{plural(report.requests, "request")}, {report.rejected:,} rejected; requests from
{_e(_when(report.first_request_at))} to {_e(_when(report.last_request_at))}.</p>
{_window(report)}<p class="total">{plural(len(report.findings), "entity")} over the limit;
damages ${report.damages_usd:,.2f} in {plural(report.periods, "charged period")}.</p>
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
<script>{_SORT_SCRIPT}</script>
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
    return _table(f"<th></th>{head}", "".join(rows), sortable=False)


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
    return more + _table("<th>entity</th><th>kind</th><th class='n'>peak 24 h posts</th>"
                         "<th>first over the limit</th><th class='n'>periods</th>"
                         "<th class='n'>damages</th>", rows)


def _entity_section(finding: Finding, policy: Policy) -> str:
    w, a = finding.window, finding.assessment
    periods = "".join(
        f"<tr><td class='n'>{i}</td><td>{_e(iso(p.start))}</td><td>{_e(iso(p.end))}</td>"
        f"<td class='n'>{p.posts:,}</td><td class='n'>{p.requests:,}</td>"
        f"<td class='n'>${d:,.2f}</td></tr>"
        for i, (p, d) in enumerate(zip(a.periods, a.period_damages, strict=True), 1))
    evidence = "".join(
        f"<p>Where the requests of period {i} are:</p>{_evidence(files)}"
        for i, files in enumerate(finding.evidence or [], 1) if files)
    charts = ""
    if finding.series is not None:
        series = finding.series
        calendar_limit = policy.threshold_posts if policy.periods == "calendar" else None
        charts = (f"<p>Posts in the 24 hours before each moment (UTC), with the limit "
                  f"(dashed) and the charged periods (shaded); point at the curve for the "
                  f"posts in the 24 hours up to that second:</p>"
                  f"{rolling_chart(series, a.periods, policy.threshold_posts)}"
                  f"<p>Posts per calendar day ({_e(policy.timezone)}):</p>"
                  f"{daily_chart(series, policy.timezone, calendar_limit)}")
    members = ("<p>Members (their requests merged into one stream): "
               + ", ".join(f"<code>{_e(m)}</code>" for m in finding.members) + ".</p>"
               if finding.members else "")
    return f"""<h3><code>{_e(w.entity)}</code> ({_e(w.entity_kind)}): ${a.damages_usd:,.2f}</h3>
{members}<p>{plural(w.total_posts, "post")} in {plural(w.requests, "request")}
({w.observed_posts:,} counted by the log, the rest estimated from request paths); busiest
24 hours from {_e(iso(w.peak_start))}: {plural(w.peak_24h_posts, "post")}.</p>
{_table("<th class='n'>period</th><th>charged from</th><th>to</th><th class='n'>posts</th>"
        "<th class='n'>requests</th><th class='n'>damages</th>", periods, sortable=False)}
{evidence}{charts}"""


def _evidence(files: list[PeriodFile]) -> str:
    """Where a charged period's requests are: files, line ranges, the edge lines."""
    items = []
    for f in files:
        quotes = "".join(f"<div class='quote'><span class='at'>line {n:,}, counted at "
                         f"{_e(iso(at))} (UTC):</span><code>{_e(text)}</code></div>"
                         for n, text, at in f.samples)
        items.append(f"<li><code>{_e(f.path)}</code> lines {f.first_line:,} to "
                     f"{f.last_line:,}: {plural(f.requests, 'request')}, "
                     f"{plural(f.posts, 'post')} <span class='note'>(SHA-256 "
                     f"{_e(f.sha256[:16])}…)</span>{quotes}</li>")
    return f"<ul class='note'>{''.join(items)}</ul>"


def _watchlist_table(report: Report) -> str:
    if not report.watchlist:
        return "<p>None.</p>"
    more = (f"<p class='note'>The {TABLE_ROWS:,} highest of {len(report.watchlist):,}; "
            "report.json lists them all.</p>" if len(report.watchlist) > TABLE_ROWS else "")
    rows = "".join(f"<tr><td><code>{_e(w.entity)}</code></td><td>{_e(w.entity_kind)}</td>"
                   f"<td class='n'>{w.peak_24h_posts:,}</td><td>{_e(iso(w.peak_start))}</td></tr>"
                   for w in itertools.islice(report.watchlist, TABLE_ROWS))
    return more + _table("<th>entity</th><th>kind</th><th class='n'>peak 24 h posts</th>"
                         "<th>from</th>", rows)


def _files_table(report: Report) -> str:
    rows = "".join(f"<tr><td><code>{_e(f.path)}</code></td><td>{_e(f.format or '—')}</td>"
                   f"<td class='n'>{f.lines:,}</td><td class='n'>{f.rejected:,}</td>"
                   f"<td><code>{_e(f.sha256)}</code></td></tr>" for f in report.files)
    return _table("<th>file</th><th>format</th><th class='n'>lines</th>"
                  "<th class='n'>rejected</th><th>SHA-256</th>", rows) + _set_aside_table(report)


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
            + _table("<th>path</th><th>why</th>", cells))


def _table(head: str, rows: str, *, sortable: bool = True) -> str:
    """A table of header cells `head` and body rows `rows`, in a box that scrolls
    sideways on a narrow screen. A sortable one sorts by a column whose header is
    clicked (_SORT_SCRIPT); tables whose order is their meaning are not."""
    kind = " class='sortable'" if sortable else ""
    return (f"<div class='scroll'><table{kind}><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")
