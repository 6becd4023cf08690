"""report.html in a real browser (headless Chromium): nothing planted runs, the tables
sort, the page fits a desktop and a phone screen, and it prints cleanly.

The screenshots and the printed PDF are kept in $SCRAPEWATCH_SCREENSHOTS when it is
set (a folder), else in pytest's temporary folder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
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
    headers = browser.evaluate("[...document.querySelectorAll('table.sortable')]"
                               ".map(t => t.tHead.textContent)")
    findings = headers.index("entitykindpeak 24 h postsfirst over the limitperiodsdamages")
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
