"""report.html in a real browser (headless Chromium): nothing planted runs, the tables
sort, the page fits a desktop and a phone screen, and it prints cleanly.

The screenshots and the printed PDF are kept in $SCRAPEWATCH_SCREENSHOTS when it is
set (a folder), else in pytest's temporary folder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from browser import CHROMIUM, Browser, png_size

from scrapewatch.config import load_config
from scrapewatch.pipeline import scan

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

PLANTED = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='x'\">"
# entity -> posts, one 24 hours each: prorata damages $18,000.00, $142,500.00, $30,000.00
POSTS = {PLANTED: 1_200_000, "k-big": 9_500_000, "k-mid": 2_000_000}
SCREENS = {"desktop": (1280, 900), "phone": (390, 844)}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of a report.html with three flagged entities, one with a planted script
    for a name."""
    folder = tmp_path_factory.mktemp("report")
    log = folder / "api.jsonl"
    log.write_text("".join(
        json.dumps({"ts": f"2025-03-0{day}T1{hour}:00:00Z", "api_key": key, "path": "/x",
                    "posts": posts // 4, "user_agent": PLANTED}) + "\n"
        for day, (key, posts) in enumerate(POSTS.items(), 1) for hour in range(4)))
    scan([str(log)], config=load_config(overrides={"policy.rounding": "prorata"}),
         out=folder / "out")
    return (folder / "out" / "report.html").as_uri()


def _edge_cases() -> list[dict[str, object]]:
    """Charts that are hard to label: activity ending at midnight (a tick at the right
    edge), within one minute, over 800 days, and across a change to daylight time."""
    day = 86_400
    lines = [(1_740_830_400 + h * 7_200, "k-edge", 200_000) for h in range(7)]  # to 00:00
    lines += [(1_740_830_400 + s, "k-minute", 400_000) for s in (0, 20, 40)]
    lines += [(1_672_574_400 + d * day, "k-long", 1_000) for d in range(800)]
    lines += [(1_672_574_400 + 800 * day + h * 3_600, "k-long", 300_000) for h in range(4)]
    lines += [(1_741_219_200 + h * 10_800, "k-dst", 150_000) for h in range(48)]
    return [{"ts": datetime.fromtimestamp(at, UTC).isoformat(), "api_key": key, "path": "/x",
             "posts": posts} for at, key, posts in lines]


@pytest.fixture(scope="module")
def hard_pages(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The URLs of report.html for the edge cases, under calendar days in New York, and
    for a limit of a billion posts."""
    folder = tmp_path_factory.mktemp("hard")
    pages = []
    for name, lines, overrides in (
            ("edges", _edge_cases(), {"policy.timezone": "America/New_York",
                                            "policy.periods": "calendar"}),
            ("billion", [{"ts": f"2025-03-01T1{h}:00:00Z", "api_key": "k", "path": "/x",
                          "posts": 500_000_000} for h in range(3)],
             {"policy.threshold_posts": 1_000_000_000})):
        log = folder / f"{name}.jsonl"
        log.write_text("".join(json.dumps(line) + "\n" for line in lines))
        scan([str(log)], config=load_config(overrides=overrides), out=folder / name)
        pages.append((folder / name / "report.html").as_uri())
    return pages


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with Browser(tmp_path_factory.mktemp("profile")) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def keep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots and the PDF go."""
    folder = os.environ.get("SCRAPEWATCH_SCREENSHOTS")
    if not folder:
        return tmp_path_factory.mktemp("screenshots")
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder)


def test_the_charts_are_drawn_and_nothing_planted_runs(page: str, browser: Browser) -> None:
    browser.open(page, 1280, 900)
    assert browser.evaluate("document.title") == "scrapewatch report"
    assert browser.evaluate("document.querySelectorAll('svg').length") == 6
    assert browser.evaluate("document.querySelectorAll('svg polyline').length") == 3
    assert browser.evaluate("document.querySelectorAll('img').length") == 0
    shown = browser.evaluate("document.querySelector('h3 code').textContent")
    assert shown == "k-big"  # the largest damages first
    assert browser.evaluate(f"document.body.textContent.includes({json.dumps(PLANTED)})")


def _findings_table(browser: Browser) -> int:
    """Which sortable table lists the entities over the limit."""
    headers = browser.evaluate("[...document.querySelectorAll('table.sortable')]"
                               ".map(t => t.tHead.textContent)")
    return int(headers.index("entitykindpeak 24 h postsfirst over the limitperiodsdamages"))


def _column(browser: Browser, table: int, column: int) -> list[str]:
    return list(browser.evaluate(
        f"[...document.querySelectorAll('table.sortable')[{table}].tBodies[0].rows]"
        f".map(row => row.cells[{column}].textContent)"))


def _click(browser: Browser, table: int, column: int) -> str:
    """Click a header cell of a sortable table; its aria-sort after."""
    return str(browser.evaluate(
        f"(() => {{ const th = document.querySelectorAll('table.sortable')[{table}]"
        f".tHead.rows[0].cells[{column}]; th.click(); return th.getAttribute('aria-sort'); }})()"))


def test_tables_sort_by_the_column_clicked(page: str, browser: Browser) -> None:
    browser.open(page, 1280, 900)
    findings = _findings_table(browser)
    assert _column(browser, findings, 5) == ["$142,500.00", "$30,000.00", "$18,000.00"]
    # by amount, not by text ("$18,000.00" comes after "$142,500.00" as text)
    assert _click(browser, findings, 5) == "ascending"
    assert _column(browser, findings, 5) == ["$18,000.00", "$30,000.00", "$142,500.00"]
    assert _click(browser, findings, 5) == "descending"
    assert _column(browser, findings, 5) == ["$142,500.00", "$30,000.00", "$18,000.00"]
    assert _click(browser, findings, 0) == "ascending"
    assert _column(browser, findings, 0) == [PLANTED, "k-big", "k-mid"]
    assert browser.evaluate(  # one column sorted at a time
        f"document.querySelectorAll('table.sortable')[{findings}]"
        ".querySelectorAll('th[aria-sort]').length") == 1


def test_text_sorts_with_its_numbers_by_value(tmp_path: Path, browser: Browser) -> None:
    log = tmp_path / "keys.jsonl"
    log.write_text("".join(json.dumps({"ts": "2025-03-01T10:00:00Z", "api_key": key,
                                       "path": "/x", "posts": posts}) + "\n"
                           for key, posts in (("k-10", 3_000_000), ("k-9", 2_000_000),
                                              ("1,5", 1_500_000))))
    scan([str(log)], config=load_config(), out=tmp_path / "out")
    browser.open((tmp_path / "out" / "report.html").as_uri(), 1280, 900)
    findings = _findings_table(browser)
    assert _click(browser, findings, 0) == "ascending"
    # k-9 before k-10; an entity that looks like a number is text in a column of text
    assert _column(browser, findings, 0) == ["1,5", "k-9", "k-10"]


@pytest.mark.parametrize("screen", SCREENS)
def test_the_page_fits_the_screen(page: str, browser: Browser, keep: Path,
                                  screen: str) -> None:
    """Nothing is wider than the screen (wide tables scroll in their own box, charts
    shrink), and a screenshot of the whole page is kept."""
    width, height = SCREENS[screen]
    browser.open(page, width, height)
    assert browser.evaluate("document.documentElement.scrollWidth") == width
    rights = browser.evaluate("[...document.querySelectorAll('svg')]"
                              ".map(s => s.getBoundingClientRect().right)")
    assert rights and max(rights) <= width
    shot = keep / f"report-{screen}-{width}x{height}.png"
    browser.screenshot(shot)
    assert png_size(shot) == (width, browser.evaluate("document.documentElement.scrollHeight"))
    assert shot.stat().st_size > 50_000  # drawn: text, tables and charts


def test_the_limit_label_is_clear_of_the_curve_as_drawn(page: str, browser: Browser) -> None:
    browser.open(page, 1280, 900)
    crossings = browser.evaluate("""[...document.querySelectorAll('svg.rolling')].map(chart => {
        const box = chart.querySelector('.limit-label').getBBox();
        return [...chart.querySelector('polyline').points].filter(p =>
            p.x >= box.x && p.x <= box.x + box.width &&
            p.y >= box.y && p.y <= box.y + box.height).length; })""")
    assert crossings == [0, 0, 0]


def test_no_chart_text_leaves_its_chart_or_covers_another(
        page: str, hard_pages: list[str], browser: Browser) -> None:
    """Every label as drawn: inside its chart, and clear of every other label."""
    for url in (page, *hard_pages):
        browser.open(url, 1280, 900)
        charts = browser.evaluate("document.querySelectorAll('svg').length")
        faults = browser.evaluate("""[...document.querySelectorAll('svg')].flatMap(chart => {
            const size = chart.viewBox.baseVal, boxes = [...chart.querySelectorAll('text')]
                .map(text => [text.textContent, text.getBBox()]);
            return boxes.flatMap(([text, box], i) => [
                ...(box.x < 0 || box.y < 0 || box.x + box.width > size.width
                    || box.y + box.height > size.height ? [`${text} is outside`] : []),
                ...boxes.slice(i + 1).filter(([, other]) =>
                    box.x < other.x + other.width - .5 && other.x < box.x + box.width - .5
                    && box.y < other.y + other.height - .5 && other.y < box.y + box.height - .5)
                    .map(([other]) => `${text} covers ${other}`)]); })""")
        assert (charts, faults) == (charts, []), url
        assert charts >= 2


def test_it_prints_cleanly(page: str, browser: Browser, keep: Path) -> None:
    """On A4 (794 CSS pixels less 14 mm margins each side): the whole width used, nothing
    wider than the page, charts and rows not split across pages."""
    browser.open(page, 688, 1000, media="print")
    style = browser.evaluate("""(() => {
        const body = getComputedStyle(document.body);
        return [body.maxWidth, body.marginLeft, getComputedStyle(document.querySelector('svg'))
            .breakInside, getComputedStyle(document.querySelector('.scroll')).overflowX,
            getComputedStyle(document.querySelector('h3')).breakAfter]; })()""")
    assert style == ["none", "0px", "avoid", "visible", "avoid"]
    assert browser.evaluate("document.documentElement.scrollWidth") == 688
    pdf = keep / "report-a4.pdf"
    browser.pdf(pdf)
    assert pdf.read_bytes().startswith(b"%PDF-") and pdf.stat().st_size > 20_000
