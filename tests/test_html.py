"""report.html: self-contained, readable, escaped, charts drawn, bounded in size."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from datetime import date, timedelta
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from conftest import ROOT

from scrapewatch.config import load_config
from scrapewatch.pipeline import scan
from scrapewatch.reporting import html as report_html
from scrapewatch.reporting import svg
from scrapewatch.reporting.escape import for_html
from scrapewatch.reporting.html import render_html
from scrapewatch.reporting.terminal import render_table

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def test_sample_report_shows_the_case(tmp_path: Path) -> None:
    report = scan([str(ROOT / "sample_logs")], config=load_config(), out=tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert page == render_html(report)
    assert "$60,000.00 in 3 charged periods" in page
    assert "$15,000 per 1,000,000 posts" in page
    # every periods mode by every rounding, the chosen one highlighted
    assert page.count("<td class='n chosen'>$60,000.00</td>") == 1
    assert len(re.findall(r"<tr><th>(greedy|calendar|max|peak)</th>", page)) == 4
    # two charts per flagged entity; each charged period shaded on its entity's chart
    assert page.count("<svg") == 4
    assert page.count("fill-opacity='.35'") == 3
    assert page.count("<line class='limit'") == 2
    assert "k-research-lab" in page  # the watchlist
    for sha in (f["sha256"] for f in report.to_json()["inputs"]["files"]):
        assert sha in page


def test_nothing_is_fetched_and_nothing_runs(tmp_path: Path) -> None:
    log = tmp_path / "hostile.jsonl"
    log.write_text("".join(json.dumps({"ts": f"2025-03-01T10:{m:02d}:00Z", "api_key": HOSTILE,
                                       "path": "/x", "posts": 600_000}) + "\n"
                           for m in range(2)))
    page = render_html(scan([str(log)], config=load_config()))
    assert page.count("<script") == 1 and "<img" not in page  # the sort script, no other
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror" in page
    assert not re.search(r"""<[^>]*\s(src|href)\s*=|@import|url\(""", page)  # no fetching tag
    # and only that script may run, by its hash; nothing may load
    [script] = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert (f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            f"style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
            f"script-src 'sha256-{digest}'\">") in page


def test_many_flagged_entities_keep_the_page_small(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_html, "TOP_CHARTS", 3)
    log = tmp_path / "many.jsonl"
    log.write_text("".join(json.dumps({"ts": f"2025-03-0{1 + d}T10:00:00Z", "api_key": f"k{i}",
                                       "path": "/x", "posts": 1_000_001}) + "\n"
                           for i in range(40) for d in range(2)))
    report = scan([str(log)], config=load_config())
    page = render_html(report)
    assert len(report.findings) == 40
    assert page.count("<svg") == 6  # charts for the top 3 only
    assert page.count("<tr><td><code>k") == 40 + 10  # every one in the table; the top ten
    assert "Charts are drawn for the 3 entities with the largest damages" in page


def _marked(escapes: str) -> str:
    """How report.html shows a run of control or bidi characters: as escapes, marked."""
    return f"<span style='color:#a8071a;background:#fde2e4'>{escapes}</span>"


RLO, NUL, ESC, NUL_ESC, BEL, RLI = (_marked(e) for e in (
    r"\u202e", r"\x00", r"\x1b", r"\x00\x1b", r"\x07", r"\u2067"))


def test_control_and_bidi_characters_are_shown_as_marked_escapes() -> None:
    assert for_html("yek\u202e-live\x00<b>") == f"yek{RLO}-live{NUL}&lt;b&gt;"
    assert for_html("\x1b[31m\u2066\u2067\u2068\u2069\u200e\u200f\u061c\x7f\x9b") == (
        ESC + "[31m" + _marked(r"\u2066\u2067\u2068\u2069\u200e\u200f\u061c\x7f\x9b"))
    assert for_html("café, Ünïcode, 中文, русский, עברית") == "café, Ünïcode, 中文, русский, עברית"


# Characters that make a page show what the log does not hold: U+202E turns `yek-live` into
# `evil-key`, the others are bidi isolates and marks, NUL, ESC, BEL and a C1 control.
HIDDEN = ("\u202e", "\u2066", "\u2067", "\u200f", "\x00", "\x1b", "\x07", "\x9b")


def test_log_text_with_controls_and_bidi_reaches_the_page_escaped(tmp_path: Path) -> None:
    """Entities, members, quoted lines and file names from a hostile log: every control
    and bidi character is shown as a marked escape, none reaches the page raw, and the
    rest of the text (accents, CJK) is as the log has it."""
    user_agent = "curl\x00\x1b[31m\u202e\u2066\x9b ünï 中文"
    users = ("yek\u202e-live\x00\x1b", "kcab\u202e-door\x1b]0;x\x07")
    log = tmp_path / "a\u202egol.\x1b[0m.log"
    log.write_text("".join(
        f'192.0.2.1 - {user} [01/Mar/2025:{10 + n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d} '
        f'+0000] "GET /2/tweets/search/all?max_results=500 HTTP/1.1" 200 5 "-" '
        f'"{user_agent}"\n' for user in users for n in range(2001)), encoding="utf-8")
    mapping = tmp_path / "orgs.csv"
    mapping.write_text(f"key,cidr,org\n{users[1]},,org\u2067x\n", encoding="utf-8")
    report = scan([str(log)], config=load_config(overrides={
        "entity.organisations": str(mapping)}))
    assert sorted(f.window.entity for f in report.findings) == ["org\u2067x", users[0]]
    page = render_html(report)
    entity = f"yek{RLO}-live{NUL_ESC}"
    assert page.count(f"<code>{entity}</code>") == 3  # the table, the heading, the top
    assert f"<h3><code>org{RLI}x</code> (org)" in page
    assert ("Members (their requests merged into one stream): <code>user:kcab"
            f"{RLO}-door{ESC}]0;x{BEL}</code>.") in page
    path = f"{tmp_path}/a{RLO}gol.{ESC}[0m.log"
    assert f"<tr><td><code>{path}</code></td><td>combined</td>" in page  # files read
    assert page.count(f"<li><code>{path}</code> lines ") == 2  # evidence of each period
    marks = _marked(r"\u202e\u2066\x9b")
    quoted = f"&quot;curl{NUL_ESC}[31m{marks} ünï 中文&quot;</code>"
    assert page.count(quoted) == 4  # the first and last line of each period
    assert page.count("<span class='at'>line 1, counted at 2025-03-01T10:00:00Z (UTC):</span>"
                      f"<code>192.0.2.1 - {entity} [01/Mar/2025:10:00:00") == 1
    for character in HIDDEN:
        assert character not in page, repr(character)


def _report_of(tmp_path: Path, lines: list[dict[str, object]], **overrides: object) -> str:
    log = tmp_path / "x.jsonl"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return render_html(scan([str(log)], config=load_config(overrides=overrides)))


def test_days_are_local_and_periods_stay_on_the_chart(tmp_path: Path) -> None:
    page = _report_of(tmp_path, [{"ts": "2025-03-01T20:00:00Z", "api_key": "k", "path": "/x",
                                  "posts": 1_500_000}],
                      **{"policy.timezone": "Asia/Tokyo", "policy.periods": "calendar"})
    assert "<title>2025-03-02: 1,500,000 posts</title>" in page  # 05:00 in Tokyo
    xs = [float(x) for x in re.findall(r"<rect class='charged' x='([-0-9.]+)'", page)]
    assert xs and min(xs) >= svg.LEFT  # the day began before the request


def test_every_charged_period_reaches_its_posts_on_the_line(tmp_path: Path) -> None:
    bursts = [("2025-03-01", 5_000_000), ("2025-03-20", 1_200_000), ("2025-04-25", 1_100_000)]
    lines = [{"ts": f"{day}T{h:02d}:00:00Z", "api_key": "k", "path": "/x", "posts": posts // 4}
             for day, posts in bursts for h in range(4)]
    log = tmp_path / "x.jsonl"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = scan([str(log)], config=load_config())
    [finding] = report.findings
    series = finding.series
    assert series is not None
    drawn = dict(zip(series.times, series.rolling, strict=True))
    assert [drawn[p.end - 1] for p in finding.assessment.periods] == [
        p.posts for p in finding.assessment.periods]


@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_edge_lines_are_found_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            chunk: int) -> None:
    import gzip

    from scrapewatch.reading.sources import LogSource
    from scrapewatch.reporting import evidence

    monkeypatch.setattr(evidence, "CHUNK_BYTES", chunk)
    text = "".join(f"line {n} {'x' * (n % 5)}\r\n" for n in range(1, 40)) + "last, no newline"
    for name, data in (("a.log", text.encode()), ("a.log.gz", gzip.compress(text.encode()))):
        (tmp_path / name).write_bytes(data)
        with LogSource.open(tmp_path / name, hashing=False) as source:
            found = dict(evidence._lines_at(source, np.array([1, 9, 39, 40]), NO_MARKS,
                                            NO_MARKS))
        assert found == {1: "line 1 x", 9: "line 9 xxxx", 39: "line 39 xxxx",
                         40: "last, no newline"}, name


NO_MARKS = np.zeros(0, np.int64)


def test_edge_lines_are_read_from_the_marks_before_them(tmp_path: Path) -> None:
    from scrapewatch.reading import sources
    from scrapewatch.reading.sources import LogSource
    from scrapewatch.reporting import evidence

    path = tmp_path / "a.log"
    path.write_text("".join(f"line {n} {'x' * (n % 50)}\n" for n in range(1, 200_001))
                    + "last, no newline")
    with LogSource.open(path) as source:
        for _ in source.blocks():
            pass
    marked = np.concatenate([numbers for numbers, _ in source.marks]) + 1
    offsets = np.concatenate([at for _, at in source.marks])
    assert len(marked) == 200_001 // sources.MARK_EVERY + 1
    wanted = np.array([1, 2, 2048, 2049, 2050, 99_999, 150_000, 200_000, 200_001])
    with LogSource.open(path, hashing=False) as source:
        jumped = list(evidence._lines_at(source, wanted, marked, offsets))
        read = source.bytes_read
    with LogSource.open(path, hashing=False) as source:
        assert jumped == list(evidence._lines_at(source, wanted, NO_MARKS, NO_MARKS))
    assert dict(jumped)[150_000] == "line 150000 " and dict(jumped)[200_001] == \
        "last, no newline"
    # one chunk from the start and one from each of three marks, of a 7.4 MB file
    assert read <= 4 * evidence.CHUNK_BYTES < path.stat().st_size


def _charts(page: str) -> list[ElementTree.Element]:
    """Every chart of a page, parsed (its SVG is well-formed XML)."""
    return [ElementTree.fromstring(chart) for chart in re.findall(r"<svg.*?</svg>", page,
                                                                  re.DOTALL)]


def _texts(chart: ElementTree.Element, kind: str | None = None) -> list[str]:
    return [t.text or "" for t in chart.iter("text") if kind is None or t.get("class") == kind]


def _points(chart: ElementTree.Element) -> list[tuple[float, float]]:
    """The points of a chart's curve."""
    polyline = chart.find("polyline")
    assert polyline is not None
    return [(float(x), float(y)) for x, y in (p.split(",") for p in
                                              polyline.get("points", "").split())]


def _titles(chart: ElementTree.Element, tag: str) -> list[str]:
    return [e.findtext("title") or "" for e in chart.iter(tag) if e.find("title") is not None]


def test_charts_have_round_ticks_gridlines_and_hover_values() -> None:
    report = scan([str(ROOT / "sample_logs")], config=load_config())
    rolling, daily = _charts(render_html(report))[:2]  # k-acme-scraper's
    # values on the left, every 12 hours (UTC) below, the date under each new day
    assert _texts(rolling, "tick") == ["0", "1M", "2M", "3M", "12:00", "00:00", "12:00",
                                       "00:00", "12:00", "00:00", "12:00"]
    assert [t for t in _texts(rolling) if t.startswith("2025")] == [
        "2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06"]
    lines = [(line.get("x1"), line.get("y1"), line.get("x2"), line.get("y2"))
             for line in rolling.iter("line") if line.get("stroke") == "#e6e6e6"]
    assert len(lines) == 3 + 7  # a gridline at each tick but the 0 axis line
    for label in (t for t in rolling.iter("text") if t.get("class") == "tick"
                  and t.get("text-anchor") == "end"):
        level = f"{float(label.get('y', '')) - 4:.1f}"
        assert any(y1 == y2 == level for _, y1, _, y2 in lines) or label.text == "0"
    # a point with its exact value under the pointer anywhere along the curve (circles of
    # radius 4), the peak and the periods' last seconds among them
    points = [float(x) for x, _ in _points(rolling)]
    hover_xs = [float(c.get("cx", "")) for c in rolling.iter("circle")]
    assert {c.get("r") for c in rolling.iter("circle")} == {"4"}
    assert len(points) > len(hover_xs) > 100
    assert all(b - a <= 8 for a, b in itertools.pairwise([points[0], *hover_xs, points[-1]]))
    hovers = _titles(rolling, "circle")
    assert "2025-03-03 13:56:24 UTC: 2,500,000 posts" in hovers  # the first peak
    # the last second of each charged period: the 24 hours up to it hold its posts
    assert {"2025-03-04 07:59:59 UTC: 2,500,000 posts",
            "2025-03-06 11:59:59 UTC: 1,200,000 posts"} <= set(hovers)
    assert _titles(rolling, "rect") == [
        "charged 2025-03-03T08:00:00Z to 2025-03-04T08:00:00Z: 2,500,000 posts",
        "charged 2025-03-05T12:00:00Z to 2025-03-06T12:00:00Z: 1,200,000 posts"]
    assert _titles(daily, "rect") == ["2025-03-03: 2,500,000 posts", "2025-03-04: 0 posts",
                                      "2025-03-05: 1,200,000 posts"]
    assert _texts(daily, "tick") == ["0", "1M", "2M", "3M", "2025-03-03", "2025-03-04",
                                     "2025-03-05"]


@pytest.mark.parametrize(("largest", "ticks"), [
    (1, [0, 1, 2]), (9, [0, 5, 10]), (1_000, [0, 500, 1_000, 1_500]),
    (1_000_000, [0, 500_000, 1_000_000, 1_500_000]),
    (2_500_000, [0, 1_000_000, 2_000_000, 3_000_000]),
    (6_616_813, [0, 2_000_000, 4_000_000, 6_000_000, 8_000_000])])
def test_value_ticks_are_round_and_reach_past_the_largest(largest: int,
                                                          ticks: list[int]) -> None:
    assert svg.value_ticks(largest) == ticks


@pytest.mark.parametrize(("span", "labels"), [
    (3_600, ["12:30", "12:40", "12:50", "13:00", "13:10", "13:20"]),
    (2 * 86_400, ["00:00", "12:00", "00:00", "12:00"]),
    (30 * 86_400, ["2025-03-06", "2025-03-13", "2025-03-20", "2025-03-27"]),
    (100 * 86_400, ["2025-04", "2025-05", "2025-06"]),
    (400 * 86_400, ["2025-05", "2025-07", "2025-09", "2025-11", "2026-01", "2026-03"]),
    (4_000 * 86_400, ["2026", "2028", "2030", "2032", "2034", "2036"])])
def test_time_ticks_are_round_instants(span: int, labels: list[str]) -> None:
    start = 1_740_830_400 + 1_234  # 2025-03-01T12:20:34Z
    ticks = svg.time_ticks(start, start + span)
    assert [label for _, label, _ in ticks] == labels
    assert all(start <= t <= start + span for t, _, _ in ticks)
    if span == 2 * 86_400:  # the date under the first time of each day
        assert [under for _, _, under in ticks] == ["2025-03-02", "", "2025-03-03", ""]


@pytest.mark.parametrize(("value", "short"), [
    (0, "0"), (999, "999"), (2_500, "2.5k"), (999_999, "1M"), (1_050_500, "1.05M"),
    (12_345_678, "12.3M"), (1_500_000_000, "1.5B"), (10**12, "1T")])
def test_short_values_round_before_they_take_a_unit(value: int, short: str) -> None:
    assert svg._short(value) == short


def test_every_day_of_a_short_run_is_labelled_and_long_runs_at_month_starts() -> None:
    days = [date(2025, 3, 1) + timedelta(days=n) for n in range(800)]
    assert svg._labelled_days(days[:6], svg.BAR_SLOT) == [0, 1, 2, 3, 4, 5]
    assert svg._labelled_days(days[:60], 648 / 60) == list(range(0, 60, 7))
    assert [str(days[i]) for i in svg._labelled_days(days, 648 / 800)] == [
        "2025-07-01", "2026-01-01", "2026-07-01", "2027-01-01"]


@pytest.mark.parametrize("periods", ["calendar", "greedy"])
def test_the_daily_chart_has_the_limit_when_calendar_days_are_charged(
        tmp_path: Path, periods: str) -> None:
    page = _report_of(tmp_path, [{"ts": f"2025-03-0{d}T10:00:00Z", "api_key": "k",
                                  "path": "/x", "posts": posts}
                                 for d, posts in ((1, 1_200_000), (2, 900_000))],
                      **{"policy.periods": periods})
    daily = _charts(page)[1]
    limits = [line for line in daily.iter("line") if line.get("class") == "limit"]
    if periods == "greedy":  # 24-hour periods from any second: days do not show them
        assert not limits and "limit" not in "".join(_texts(daily))
        return
    [limit] = limits  # at 1M of a 0 to 1.5M axis of 4 ticks
    assert _texts(daily, "tick")[:4] == ["0", "500k", "1M", "1.5M"]
    assert float(limit.get("y1", "")) == pytest.approx(
        svg.PLOT_BOTTOM - (svg.PLOT_BOTTOM - svg.TOP) * 2 / 3, abs=.1)
    assert "limit: more than 1,000,000 posts in a calendar day" in _texts(daily)


def test_the_legend_fits_a_large_limit(tmp_path: Path) -> None:
    page = _report_of(tmp_path, [{"ts": f"2025-03-01T1{h}:00:00Z", "api_key": "k", "path": "/x",
                                  "posts": 500_000_000} for h in range(3)],
                      **{"policy.threshold_posts": 1_000_000_000})
    texts = _charts(page)[0].findall("text")[:3]
    assert [t.text for t in texts] == [
        "limit: more than 1B posts", "posts in the 24 hours before", "charged period"]
    ends = [float(t.get("x", "")) + len(t.text or "") * svg.CHAR for t in texts]
    assert all(end < float(after.get("x", "")) - 28
               for end, after in zip(ends[:-1], texts[1:], strict=True))
    assert ends[-1] <= svg.WIDTH


def test_a_single_day_is_drawn_as_a_day(tmp_path: Path) -> None:
    page = _report_of(tmp_path, [{"ts": "2025-03-01T10:00:00Z", "api_key": "k", "path": "/x",
                                  "posts": 1_500_000}])
    daily = _charts(page)[1]
    [bar] = [r for r in daily.iter("rect") if r.get("class") == "day"]
    assert float(bar.get("width", "")) == pytest.approx(svg.BAR_SLOT * .8, abs=.1)
    middle = float(bar.get("x", "")) + float(bar.get("width", "")) / 2
    assert middle == pytest.approx((svg.LEFT + svg.WIDTH - svg.RIGHT) / 2, abs=.1)
    # the value axis, the day under its bar, its exact value above it
    assert _texts(daily) == ["0", "500k", "1M", "1.5M", "2M", "2025-03-01", "1,500,000"]


def test_the_limit_label_is_clear_of_the_curve(tmp_path: Path) -> None:
    """A day just over the limit: the curve runs right above the limit line, where a
    label on the line would sit."""
    page = _report_of(tmp_path, [{"ts": "2025-03-01T10:00:00Z", "api_key": "k", "path": "/x",
                                  "posts": 1_050_000}])
    rolling = _charts(page)[0]
    [label] = [t for t in rolling.iter("text") if "limit" in (t.text or "")]
    # its box: at most 7 units a character wide, 12 tall above the baseline
    x, y, width = float(label.get("x", "")), float(label.get("y", "")), 7 * len(label.text or "")
    left = x - width if label.get("text-anchor") == "end" else x
    points = _points(rolling)
    assert points and not [(px, py) for px, py in points
                           if left <= px <= left + width and y - 12 <= py <= y + 2]


def test_quoted_lines_show_the_utc_instant_next_to_the_local_one(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("".join(
        f'192.0.2.1 - - [01/Mar/2025:11:{n // 60:02d}:{n % 60:02d} +0100] "GET '
        f'/2/tweets/search/all?max_results=500 HTTP/1.1" 200 5 "-" "curl"\n'
        for n in range(2001)))
    report = scan([str(log)], config=load_config())
    page = render_html(report)
    for line, utc, local in ((1, "10:00:00", "11:00:00"), (2001, "10:33:20", "11:33:20")):
        assert (f"<span class='at'>line {line:,}, counted at 2025-03-01T{utc}Z (UTC):</span>"
                f"<code>192.0.2.1 - - [01/Mar/2025:{local} +0100] &quot;GET") in page
    [period] = report.to_json()["entities"][0]["periods"]
    assert [(s["line"], s["at"]) for s in period["evidence"][0]["samples"]] == [
        (1, "2025-03-01T10:00:00Z"), (2001, "2025-03-01T10:33:20Z")]


def test_counts_of_one_are_singular(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    log.write_text(json.dumps({"ts": "2025-03-01T10:00:00Z", "api_key": "k", "path": "/x",
                               "posts": 1_500_000}) + "\n")
    report = scan([str(log)], config=load_config())
    page = " ".join(render_html(report).split())
    assert "from 1 file: 1 line, 1 request, 0 rejected;" in page
    assert "1 entity over the limit; damages $15,000.00 in 1 charged period.</p>" in page
    assert "<p>1,500,000 posts in 1 request (" in page
    assert "lines 1 to 1: 1 request, 1,500,000 posts" in page
    assert render_table(report).startswith("Read 1 file: 1 line, 1 request, 0 rejected.\n")


def test_tables_whose_order_is_not_their_meaning_are_sortable() -> None:
    page = render_html(scan([str(ROOT / "sample_logs")], config=load_config()))
    heads = re.findall(r"<table( class='sortable')?><thead><tr>(.*?)</tr></thead><tbody>", page)
    assert [(bool(sortable), re.findall(r"<th[^>]*>(.*?)</th>", head))
            for sortable, head in heads] == [
        (False, ["step", "count"]), (True, ["status", "requests"]),
        (True, ["entity", "posts", "requests"]), (True, ["hour", "requests", "posts"]),
        (False, ["", "full", "prorata", "started"]),
        (True, ["entity", "kind", "peak 24 h posts", "first over the limit", "periods",
                "damages"]),
        (False, ["period", "charged from", "to", "posts", "requests", "damages"]),
        (False, ["period", "charged from", "to", "posts", "requests", "damages"]),
        (True, ["entity", "kind", "peak 24 h posts", "from"]),
        (True, ["file", "format", "lines", "rejected", "SHA-256"])]
    assert page.count("<table") == len(heads)


def test_the_page_has_a_print_stylesheet() -> None:
    page = render_html(scan([str(ROOT / "sample_logs")], config=load_config()))
    rules = re.search(r"@media print\{(.*?)\n\}", page, re.DOTALL)
    assert rules is not None
    for rule in ("body{max-width:none;", "tr,svg,.quote{break-inside:avoid}",
                 ".scroll{overflow:visible}.scroll td>code{word-break:break-all}",
                 "h2,h3{break-after:avoid}"):
        assert rule in rules[1]
