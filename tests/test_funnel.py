"""What counted, and why the rest did not: report.json's funnel, the table's lines and
report.html's table, on a log whose every line is accounted for by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrapewatch.cli import cli

PINNED = {"SOURCE_DATE_EPOCH": "1741219200"}  # 2025-03-06T00:00:00Z


def _line(ip: str, when: str, target: str, status: int = 200) -> str:
    return f'{ip} - - [{when} +0000] "GET {target} HTTP/1.1" {status} 5 "-" "-"\n'


SEARCH = "/2/tweets/search/all?max_results=500"  # 500 posts by the built-in rules
LOG = "".join([
    _line("192.0.2.1", "01/Nov/2024:10:00:00", SEARCH),  # before the clause took effect
    _line("192.0.2.1", "01/Nov/2024:11:00:00", SEARCH, 500),  # before, and a failure
    _line("192.0.2.1", "04/Mar/2025:10:00:00", SEARCH, 404),  # status not counted: 3
    _line("192.0.2.1", "04/Mar/2025:10:00:01", SEARCH, 429),
    _line("192.0.2.1", "04/Mar/2025:10:00:02", SEARCH, 503),
    _line("192.0.2.1", "04/Mar/2025:10:00:03", SEARCH),  # counted: 500 + 500 + 1 + 0 posts
    _line("192.0.2.1", "04/Mar/2025:12:00:00", SEARCH),
    _line("192.0.2.1", "04/Mar/2025:13:00:00", "/2/tweets/20"),
    _line("192.0.2.1", "04/Mar/2025:14:00:00", "/home/timeline"),  # no posts rule
    _line("192.0.2.9", "04/Mar/2025:15:00:00", SEARCH),  # allow-listed: 2 requests
    _line("192.0.2.9", "04/Mar/2025:16:00:00", SEARCH),
    "\n",
    "this is not a log line\n",
])


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "access.log").write_text(LOG)
    (tmp_path / "sw.toml").write_text('[entity]\nallow = ["192.0.2.9"]\n'
                                      "[policy]\nthreshold_posts = 1000\n"
                                      "[input]\nmax_rejected_share = 0.5\n")
    return folder


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=PINNED)
    return result.exit_code, result.stdout, result.stderr


def test_every_line_is_accounted_for(logs: Path, tmp_path: Path) -> None:
    code, out, err = run("scan", str(logs), "--config", str(tmp_path / "sw.toml"),
                         "--output", "json", "--out", str(tmp_path / "r"))
    assert (code, err) == (0, "")
    assert json.loads(out)["funnel"] == {
        "lines": 13, "rejected": 1, "not_requests": 1, "requests": 11,
        "not_counted": {"before_effective_from": 2, "status_not_counted": 3,
                        "outside_window": 0, "allow_listed": 2},
        "counted_requests": 4, "posts": 1001, "requests_without_posts_rule": 1}
    html = (tmp_path / "r/report.html").read_text()
    assert ("<tr><td>not counted: allow-listed entities</td><td class='n'>2</td></tr>"
            "<tr><td>counted requests</td><td class='n'>4</td></tr>"
            "<tr><td>posts they accessed</td><td class='n'>1,001</td></tr>") in html
    code, table, _ = run("scan", str(logs), "--config", str(tmp_path / "sw.toml"))
    assert table.splitlines()[1] == (
        "Counted 4 of 11 requests (not counted: 2 before 2024-11-15T00:00:00Z, when the "
        "clause took effect; 3 of a status not counted (count_statuses: 2xx); 2 of "
        "allow-listed entities), 1,001 posts; 1 of them matched no posts rule.")


def test_the_window_and_the_store_count_alike(logs: Path, tmp_path: Path) -> None:
    config = ["--config", str(tmp_path / "sw.toml"), "--output", "json"]
    window = ["--since", "2025-03-04T11:00:00Z"]  # leaves out 10:00:03 (500 posts)
    _, out, _ = run("scan", str(logs), *config, *window)
    funnel = json.loads(out)["funnel"]
    assert (funnel["not_counted"]["outside_window"], funnel["counted_requests"],
            funnel["posts"]) == (1, 3, 501)
    store = str(tmp_path / "s.db")
    assert run("ingest", str(logs), "--store", store, *config)[0] == 0
    _, whole, _ = run("report", "--store", store, *config)
    _, inside, _ = run("report", "--store", store, *config, *window)
    assert json.loads(whole)["funnel"] == json.loads(run("scan", str(logs), *config)[1])[
        "funnel"]
    assert json.loads(inside)["funnel"] == funnel


def test_when_nothing_counts_the_table_says_why_and_the_option(logs: Path) -> None:
    code, table, _ = run("scan", str(logs), "--effective-from", "2026-01-01",
                         "--max-rejected-share", "0.5")
    assert code == 0
    assert "No entity crossed the threshold." in table
    assert table.splitlines()[2] == (
        "Nothing counted: of 11 requests, 11 before 2026-01-01T00:00:00Z, when the clause "
        "took effect; --effective-from changes that.")
    code, table, _ = run("scan", str(logs), "--count-status", "304",
                         "--max-rejected-share", "0.5")
    assert table.splitlines()[2] == (
        "Nothing counted: of 11 requests, 2 before 2024-11-15T00:00:00Z, when the clause "
        "took effect; 9 of a status not counted (count_statuses: 304); --effective-from and "
        "--count-status change that.")


def test_a_store_with_files_from_before_the_funnel_has_none(logs: Path, tmp_path: Path
                                                            ) -> None:
    import duckdb

    store = tmp_path / "s.db"
    config = ["--config", str(tmp_path / "sw.toml"), "--output", "json"]
    assert run("ingest", str(logs), "--store", str(store), *config)[0] == 0
    with duckdb.connect(str(store)) as con:  # as an earlier version left it
        con.execute("UPDATE manifest SET early = NULL, uncounted = NULL, "
                    "counted_posts = NULL, unpriced = NULL")
    code, out, _ = run("report", "--store", str(store), *config)
    assert code == 0 and json.loads(out)["funnel"] is None
    assert json.loads(out)["totals"]["entities_flagged"] == 1


def test_the_overview_shows_the_population_counted(logs: Path, tmp_path: Path) -> None:
    config = ["--config", str(tmp_path / "sw.toml"), "--output", "json"]
    code, out, _ = run("scan", str(logs), *config, "--out", str(tmp_path / "r"))
    assert code == 0
    overview = json.loads(out)["overview"]
    assert overview["statuses"] == {"2xx": 7, "3xx": 0, "4xx": 2, "5xx": 2, "other": 0}
    assert overview["top_entities"] == [  # allow-listed or not
        {"entity": "192.0.2.1", "entity_kind": "client_ip", "posts": 1001, "requests": 4},
        {"entity": "192.0.2.9", "entity_kind": "client_ip", "posts": 1000, "requests": 2}]
    assert overview["bucket"] == "hour"
    assert [(p["start"][11:16], p["requests"], p["posts"]) for p in overview["series"]] == [
        ("10:00", 1, 500), ("12:00", 1, 500), ("13:00", 1, 1), ("14:00", 1, 0),
        ("15:00", 1, 500), ("16:00", 1, 500)]
    html = (tmp_path / "r/report.html").read_text()
    assert "<tr><td><code>192.0.2.1</code> (client_ip)</td><td class='n'>1,001</td>" in html
    assert "<tr><td>2025-03-04 15:00</td><td class='n'>1</td><td class='n'>500</td></tr>" in html
    _, table, _ = run("scan", str(logs), "--config", str(tmp_path / "sw.toml"))
    assert table.splitlines()[2:4] == [
        "Requests by status: 2xx 7, 4xx 2, 5xx 2.",
        "Most posts: 192.0.2.1 (client_ip) 1,001; 192.0.2.9 (client_ip) 1,000."]
    # a window shows its hours; a store's report shows what the scan does
    _, inside, _ = run("scan", str(logs), *config, "--since", "2025-03-04T13:00:00Z")
    assert [p["start"][11:13] for p in json.loads(inside)["overview"]["series"]] == [
        "13", "14", "15", "16"]
    store = str(tmp_path / "s.db")
    assert run("ingest", str(logs), "--store", store, *config)[0] == 0
    assert json.loads(run("report", "--store", store, *config)[1])["overview"] == overview
    key = {"SCRAPEWATCH_PSEUDONYM_KEY": "a key of sixteen bytes or more"}
    hidden = CliRunner().invoke(cli, ["scan", str(logs), *config, "--pseudonymise"],
                                env={**PINNED, **key})
    assert [e["entity"][:5] for e in json.loads(hidden.stdout)["overview"]["top_entities"]] == [
        "anon-", "anon-"]
