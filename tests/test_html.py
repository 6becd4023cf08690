"""report.html: self-contained, readable, escaped, charts drawn, bounded in size."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from scrapewatch.config import load_config
from scrapewatch.pipeline import scan
from scrapewatch.reporting import html as report_html
from scrapewatch.reporting.escape import for_html
from scrapewatch.reporting.html import render_html

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def test_sample_report_shows_the_case(tmp_path: Path) -> None:
    report = scan([str(ROOT / "sample_logs")], config=load_config(), out=tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert page == render_html(report)
    assert "$60,000.00 in 3 charged period(s)" in page
    assert "$15,000 per 1,000,000 posts" in page
    # every periods mode by every rounding, the chosen one highlighted
    assert page.count("<td class='n chosen'>$60,000.00</td>") == 1
    assert len(re.findall(r"<tr><th>(greedy|calendar|max|peak)</th>", page)) == 4
    # two charts per flagged entity; each charged period shaded on its entity's chart
    assert page.count("<svg") == 4
    assert page.count("fill-opacity='.35'") == 3
    assert page.count('stroke-dasharray="5,4"') == 2  # the limit line
    assert "k-research-lab" in page  # the watchlist
    for sha in (f["sha256"] for f in report.to_json()["inputs"]["files"]):
        assert sha in page


def test_nothing_is_fetched_and_nothing_runs(tmp_path: Path) -> None:
    log = tmp_path / "hostile.jsonl"
    log.write_text("".join(json.dumps({"ts": f"2025-03-01T10:{m:02d}:00Z", "api_key": HOSTILE,
                                       "path": "/x", "posts": 600_000}) + "\n"
                           for m in range(2)))
    page = render_html(scan([str(log)], config=load_config()))
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror" in page
    assert not re.search(r"""<[^>]*\s(src|href)\s*=|@import|url\(""", page)  # no fetching tag


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
    assert page.count(f"<br><code>1: 192.0.2.1 - {entity} [01/Mar/2025:10:00:00") == 1
    for character in HIDDEN:
        assert character not in page, repr(character)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_a_real_browser_draws_the_charts_and_runs_nothing(tmp_path: Path) -> None:
    log = tmp_path / "hostile.jsonl"
    planted = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='x'\">"
    log.write_text("".join(json.dumps({"ts": f"2025-03-01T1{h}:00:00Z", "api_key": planted,
                                       "path": "/x", "posts": 400_000,
                                       "user_agent": planted}) + "\n" for h in range(4)))
    scan([str(log)], config=load_config(), out=tmp_path / "r")
    page = (tmp_path / "r" / "report.html").as_uri()
    browser = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
               f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", page], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "<title>scrapewatch report</title>" in dom  # no planted script ran
    assert dom.count("<svg") == 2 and "<polyline" in dom and "<img" not in dom
    shot = tmp_path / "report.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1000,1600", page],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000  # drawn: text, tables and charts


def _report_of(tmp_path: Path, lines: list[dict[str, object]], **overrides: object) -> str:
    log = tmp_path / "x.jsonl"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return render_html(scan([str(log)], config=load_config(overrides=overrides)))


def test_days_are_local_and_periods_stay_on_the_chart(tmp_path: Path) -> None:
    page = _report_of(tmp_path, [{"ts": "2025-03-01T20:00:00Z", "api_key": "k", "path": "/x",
                                  "posts": 1_500_000}],
                      **{"policy.timezone": "Asia/Tokyo", "policy.periods": "calendar"})
    assert "<title>2025-03-02: 1,500,000 posts</title>" in page  # 05:00 in Tokyo
    xs = [float(x) for x in re.findall(r"<rect x='([-0-9.]+)' y='8'", page)]
    assert xs and min(xs) >= report_html.PAD  # the day began before the request


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
