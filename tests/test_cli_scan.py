"""`scrapewatch scan` end to end: exit codes, stdout, stderr and the golden report files.

Regenerate the golden files with SCRAPEWATCH_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from conftest import ROOT

from scrapewatch.cli import cli
from scrapewatch.cli.terminal import TerminalProgress
from scrapewatch.errors import InputError

GOLDEN = Path(__file__).parent / "golden"
PINNED = {"SOURCE_DATE_EPOCH": "1741219200"}  # 2025-03-06T00:00:00Z
LINE = '192.0.2.1 - - [04/Mar/2025:10:00:00 +0000] "GET /2/tweets/1 HTTP/1.1" 200 1 "-" "-"\n'


def scan(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["scan", *args], env={**PINNED, **(env or {})})


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SCRAPEWATCH_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # report paths are as given: sample_logs/...


def test_table_on_stdout(in_root: None) -> None:
    result = scan("sample_logs/")
    assert (result.exit_code, result.stderr) == (0, "")
    check_golden("sample_logs.table.txt", result.stdout)
    assert "k-acme-scraper (api_key)        2,500,000        2      45,000.00" in result.stdout
    assert "total                                            3      60,000.00" in result.stdout


def test_json_on_stdout_is_the_golden_report(in_root: None) -> None:
    result = scan("sample_logs/", "--output", "json")
    assert (result.exit_code, result.stderr) == (0, "")
    check_golden("sample_logs.report.json", result.stdout)
    report = json.loads(result.stdout)
    assert report["totals"] == {"entities_flagged": 2, "periods": 3, "damages_usd": "60000.00"}
    assert [(e["entity"], e["damages_usd"]) for e in report["entities"]] == [
        ("k-acme-scraper", "45000.00"), ("198.51.100.23", "15000.00")]
    assert [(w["entity"], w["peak_24h_posts"]) for w in report["watchlist"]] == [
        ("k-research-lab", 1_000_000), ("203.0.113.77", 850_000)]
    assert report["sensitivity"]["greedy"] == {"full": "60000.00", "prorata": "71257.50",
                                               "started": "105000.00"}
    assert report["inputs"]["rejected"] == 1


def test_out_dir_files(in_root: None, tmp_path: Path) -> None:
    result = scan("sample_logs/", "--out", str(tmp_path / "r"), "--output", "csv")
    assert result.exit_code == 0
    files = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert files == ["entities.csv", "entities.parquet", "manifest.json", "periods.csv",
                     "periods.parquet", "rejects", "report.html", "report.json"]
    out = {name: (tmp_path / "r" / name).read_text() for name in files
           if not name.endswith(".parquet")}
    assert out["entities.csv"] == result.stdout
    check_golden("sample_logs.entities.csv", out["entities.csv"])
    check_golden("sample_logs.periods.csv", out["periods.csv"])
    check_golden("sample_logs.rejects.csv", out["rejects"])
    check_golden("sample_logs.report.json", out["report.json"])
    check_golden("sample_logs.report.html", out["report.html"])


def test_out_dir_parquet_twins_are_typed(in_root: None, tmp_path: Path) -> None:
    assert scan("sample_logs/", "--out", str(tmp_path)).exit_code == 0
    entities = pq.read_table(tmp_path / "entities.parquet")
    assert entities.schema.field("damages_usd").type == pa.decimal128(38, 2)
    assert [(e["entity"], e["damages_usd"], e["damages_prorata"], e["periods"])
            for e in entities.to_pylist()] == [
        ("k-acme-scraper", Decimal("45000.00"), Decimal("55500.00"), 2),
        ("198.51.100.23", Decimal("15000.00"), Decimal("15757.50"), 1)]
    periods = pq.read_table(tmp_path / "periods.parquet").to_pylist()
    assert [(p["entity"], p["start"], p["posts"], p["damages_usd"]) for p in periods] == [
        ("k-acme-scraper", datetime(2025, 3, 3, 8, tzinfo=UTC), 2_500_000, Decimal("30000.00")),
        ("k-acme-scraper", datetime(2025, 3, 5, 12, tzinfo=UTC), 1_200_000,
         Decimal("15000.00")),
        ("198.51.100.23", datetime(2025, 3, 4, 7, tzinfo=UTC), 1_050_500,
         Decimal("15000.00"))]
    assert periods[0]["evidence"][0]["first_line"] == 3


def test_policy_flags_override(in_root: None) -> None:
    result = scan("sample_logs/", "--output", "json", "--rounding", "prorata",
                  "--threshold", "999999", "--periods", "calendar")
    report = json.loads(result.stdout)
    assert report["policy"]["threshold_posts"] == 999_999
    # k-research-lab's exactly 1,000,000 now crosses the lowered line
    assert {e["entity"] for e in report["entities"]} == {"k-acme-scraper", "198.51.100.23",
                                                         "k-research-lab"}
    assert report["totals"]["damages_usd"] == report["sensitivity"]["calendar"]["prorata"]


def test_fail_on_violation_exits_3_after_printing(in_root: None) -> None:
    result = scan("sample_logs/", "--fail-on-violation")
    assert result.exit_code == 3
    assert "60,000.00" in result.stdout


def test_fail_on_violation_without_violations_exits_0(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(LINE)
    result = scan(str(tmp_path), "--fail-on-violation")
    assert (result.exit_code, result.stderr) == (0, "")
    assert "No entity crossed the threshold." in result.stdout


def test_missing_input_is_a_one_line_error(tmp_path: Path) -> None:
    result = scan(str(tmp_path / "nope"))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: {tmp_path / 'nope'}: no such file or directory\n"


def test_bad_config_key_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[policy]\nrate = 1\n")
    result = scan(str(tmp_path), "--config", str(config))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith("error: unknown config key policy.'rate' (did you mean "
                                    "'rate_usd'?)")


def test_usage_errors_exit_2() -> None:
    assert scan("--periods", "weekly", "x").exit_code == 2
    assert CliRunner().invoke(cli, ["scan"]).exit_code == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--rate", "1e400"], "--rate must be a number from 0 to 1,000,000,000 with at most 6 "
                          "decimal places; got '1e400'"),
    (["--rate", "1e-400"], "--rate must be a number from 0 to 1,000,000,000 with at most 6 "
                           "decimal places; got '1e-400'"),
    (["--per-posts", "99999999999999999999999999"],
     "--per-posts must be a whole number from 1 to 1,000,000,000,000; got "
     "'99999999999999999999999999'"),
    (["--threshold", "99999999999999999999999999"],
     "--threshold must be a whole number from 0 to 1,000,000,000,000; got "
     "'99999999999999999999999999'"),
    (["--threshold", "lots"], "--threshold must be a whole number, such as 1000000; got 'lots'"),
    (["--max-rejected-share", "NaN"],
     "--max-rejected-share must be a number from 0 to 1 with at most 6 decimal places; got "
     "'NaN'"),
    (["--effective-from", "yesterday"],
     "--effective-from must be an ISO 8601 date or instant, such as 2024-11-15 or "
     "2024-11-15T00:00:00Z; got 'yesterday'"),
    (["--posts-default", "-1"], "--posts-default must be a whole number from 0 to "
                                "1,000,000,000; got '-1'"),
    (["--entity", "ip"], "invalid --entity entry 'ip'; valid: api_key, user, client_ip, "
                         "such as api_key,client_ip"),
    (["--timezone", "Mars/Base"], "unknown --timezone 'Mars/Base': use an IANA name such as "
                                  "'UTC' or 'America/New_York'"),
])
def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(in_root: None, args: list[str],
                                                           message: str) -> None:
    result = scan("sample_logs/", *args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.endswith(f"\nError: {message}\n")
    assert "policy." not in result.stderr and "entity." not in result.stderr


def test_posts_default_counts_requests_no_rule_matches(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(LINE.replace("/2/tweets/1", "/timeline") * 3)
    assert json.loads(scan(str(log), "--output", "json").stdout)["entities"] == []
    result = scan(str(log), "--output", "json", "--posts-default", "400000")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(e["entity"], e["total_posts"], e["damages_usd"]) for e in report["entities"]] == [
        ("192.0.2.1", 1_200_000, "15000.00")]
    assert report["run"]["config"]["posts"]["default"] == 400_000


def test_debug_and_quiet_are_taken_after_every_command(tmp_path: Path) -> None:
    from scrapewatch.cli import cli as group

    for name, command in group.commands.items():
        opts = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"--debug", "--quiet", "-q"} <= opts, name
    missing = str(tmp_path / "nope.log")
    plain = scan(missing)
    assert plain.exit_code == 1 and plain.stderr.startswith("error: ")
    traced = CliRunner().invoke(cli, ["scan", missing, "--debug"])
    assert isinstance(traced.exception, InputError)  # raised, not turned into one line


def test_a_number_out_of_range_in_the_config_file_is_one_line(in_root: None,
                                                               tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[policy]\nrate_usd = "1e400"\n')
    result = scan("sample_logs/", "--config", str(config))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == ("error: policy.rate_usd must be a number from 0 to 1,000,000,000 "
                             "with at most 6 decimal places; got '1e400'\n")


def test_too_many_rejects_exits_4_and_writes_them(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/a.log").write_text(LINE * 98 + "garbage\n" * 2)
    result = scan(str(tmp_path / "logs"), "--out", str(tmp_path / "r"))
    assert (result.exit_code, result.stdout) == (4, "")
    assert "2 of 100 lines rejected (2.00%), over the limit of 1.00%" in result.stderr
    assert (tmp_path / "r/rejects").read_text().splitlines()[1:] == [
        f"{tmp_path / 'logs/a.log'},99,not a common/combined log line,garbage",
        f"{tmp_path / 'logs/a.log'},100,not a common/combined log line,garbage"]
    assert scan(str(tmp_path / "logs"), "--max-rejected-share", "0.02").exit_code == 0


def test_terminal_output_is_escaped(tmp_path: Path) -> None:
    line = ('{"ts": "2025-03-04T10:00:00Z", "api_key": "\\u001b[31mred\\u202e", '
            '"posts": 1000001}\n')
    (tmp_path / "a.jsonl").write_text(line)
    result = scan(str(tmp_path))
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b[31mred\\u202e (api_key)" in result.stdout


def test_csv_cells_cannot_become_formulas(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"ts": "2025-03-04T10:00:00Z", "api_key": '
                                      '"=HYPERLINK(\\"x\\")", "posts": 1000001}\n')
    result = scan(str(tmp_path), "--output", "csv")
    assert result.stdout.splitlines()[1].startswith("\"'=HYPERLINK(\"\"x\"\")\",api_key,")


def test_help_documents_options_without_loading_the_engine() -> None:
    done = subprocess.run([sys.executable, "-m", "scrapewatch", "scan", "--help"],
                          capture_output=True, text=True, check=True)
    for option in ("--threshold", "--rate", "--periods", "--rounding", "--charge",
                   "--count-status", "--timezone", "--entity", "--out", "--output",
                   "--fail-on-violation", "--format", "--quiet"):
        assert option in done.stdout
    assert "duckdb" not in subprocess.run(
        [sys.executable, "-c", "import sys, scrapewatch.cli; print(sorted(sys.modules))"],
        capture_output=True, text=True, check=True).stdout


def test_progress_is_drawn_in_place_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    now = iter([100.0, 100.0, 104.0, 4000.0, 4000.0, 4000.0])
    progress = TerminalProgress(clock=lambda: next(now))
    progress.start_file(Path("logs/a\x1b.log"), 2_000_000, 0, 2)
    progress.advance(500_000, 40_000, "combined", force=True)  # a quarter in 4 s
    progress.advance(1_000_000, 40_000, "combined", force=True)  # half in 3,900 s
    progress.start_file(Path("t.parquet"), 9_000, 1, 2)
    progress.finish()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "\r\x1b[K   - [1/2] logs/a\\x1b.log: 0 lines"
        "\r\x1b[K 25% [1/2] logs/a\\x1b.log (combined): 40,000 lines, 10,000 lines/s, 0:12 left"
        "\r\x1b[K 50% [1/2] logs/a\\x1b.log (combined): 40,000 lines, 10 lines/s, 1:05:00 left"
        "\r\x1b[K   - [2/2] t.parquet: 0 lines"
        "\r\x1b[K")


def test_a_run_ends_saying_where_its_files_went(in_root: None, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from scrapewatch.cli.terminal import say_written

    assert scan("sample_logs/", "--out", str(tmp_path / "r")).exit_code == 0
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    say_written(tmp_path / "r", quiet=False)
    say_written(tmp_path / "r", quiet=True)
    say_written(None, quiet=False)
    assert capsys.readouterr().err == f"wrote {tmp_path / 'r'}/: 8 files\n"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)  # a log file, a pipe: silent
    say_written(tmp_path / "r", quiet=False)
    assert capsys.readouterr().err == ""


def test_progress_follows_the_lines_parsed_not_the_bytes_read_ahead(tmp_path: Path) -> None:
    from scrapewatch.config import load_config
    from scrapewatch.engine.duckdb import connect
    from scrapewatch.reading.read import load_path
    from scrapewatch.reading.sources import BLOCK_BYTES

    log = tmp_path / "a.log"
    log.write_text(LINE * 650_000)  # 53 MB: four blocks
    seen: list[tuple[int, int]] = []

    class Recorder:
        def start_file(self, *args: object) -> None: ...
        def advance(self, bytes_parsed: int, lines: int, fmt: str) -> None:
            seen.append((bytes_parsed, lines))
        def finish(self) -> None: ...

    assert log.stat().st_size > 3 * BLOCK_BYTES
    load_path(connect(), log, file_id=0, config=load_config(), progress=Recorder())
    assert seen[-1] == (log.stat().st_size, 650_000)
    for parsed, lines in seen:  # each figure is the bytes of the lines parsed, to a line
        assert abs(parsed - lines * len(LINE)) < len(LINE), (parsed, lines)


def test_a_bad_custom_format_is_a_usage_error(in_root: None) -> None:
    result = scan("sample_logs/", "--format", "regex:(?P<time>x")
    assert result.exit_code == 2
    assert "not a valid regex" in result.stderr


def test_pseudonymised_outputs_hold_no_entity(in_root: None, tmp_path: Path) -> None:
    key = {"SCRAPEWATCH_PSEUDONYM_KEY": "a key of sixteen bytes or more"}
    result = scan("sample_logs/", "--pseudonymise", "--out", str(tmp_path / "r"), env=key)
    assert result.exit_code == 0, result.stderr
    outputs = result.stdout.encode() + b"".join(p.read_bytes()
                                                for p in (tmp_path / "r").iterdir())
    for entity in ("k-acme-scraper", "198.51.100.23", "k-research-lab", "203.0.113.77"):
        assert entity.encode() not in outputs
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    names = [e["entity"] for e in doc["entities"]]
    assert doc["pseudonymised"] is True and all(n.startswith("anon-") for n in names)
    assert doc["totals"]["damages_usd"] == "60000.00"
    rejects = (tmp_path / "r" / "rejects").read_text().splitlines()
    assert rejects[1].endswith(",")  # the line's text is left out
    again = json.loads(scan("sample_logs/", "--pseudonymise", "--output", "json",
                            env=key).stdout)
    assert [e["entity"] for e in again["entities"]] == names  # stable for one key
    other = json.loads(scan("sample_logs/", "--pseudonymise", "--output", "json",
                            env={"SCRAPEWATCH_PSEUDONYM_KEY": "another key, long enough"}
                            ).stdout)
    assert not {e["entity"] for e in other["entities"]} & set(names)


def test_pseudonymise_needs_a_key(in_root: None) -> None:
    result = scan("sample_logs/", "--pseudonymise", env={"SCRAPEWATCH_PSEUDONYM_KEY": ""})
    assert result.exit_code == 2 and "needs a key of at least 16 bytes" in result.stderr


def test_pseudonymised_rejects_over_the_limit_hold_no_log_text(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    log.write_text('{"ts": "2025-03-01T10:00:00Z", "api_key": "SECRET1", "path": "/x"}\n'
                   '{"ts": "soon-SECRET2", "api_key": "SECRET2", "path": "/x"}\n')
    key = {"SCRAPEWATCH_PSEUDONYM_KEY": "a key of sixteen bytes or more"}
    result = scan(str(log), "--pseudonymise", "--out", str(tmp_path / "r"), env=key)
    assert result.exit_code == 4
    rejects = (tmp_path / "r" / "rejects").read_text()
    assert "SECRET" not in rejects and ",bad timestamp," in rejects


def test_report_json_carries_a_run_manifest(in_root: None, tmp_path: Path) -> None:
    doc = json.loads(scan("sample_logs/", "--output", "json", "--rate", "20000").stdout)
    run = doc["run"]
    assert run["config"]["policy"]["rate_usd"] == "20000"
    assert run["config"]["posts"]["rules"][0]["path"] == "^/2/tweets/search/recent$"
    assert run["config_sha256"] == hashlib.sha256(
        json.dumps(run["config"], sort_keys=True).encode()).hexdigest()
    assert run["input_sha256"] == sorted(f["sha256"] for f in doc["inputs"]["files"])
    hidden = json.loads(scan("sample_logs/", "--output", "json", "--rate", "20000",
                             "--pseudonymise", env={"SCRAPEWATCH_PSEUDONYM_KEY": "x" * 16}
                             ).stdout)["run"]
    assert hidden["config_sha256"] == run["config_sha256"]  # the config as run


@pytest.mark.parametrize(("args", "message"), [
    (["--spark-master", "local[2]"], "need --engine spark"),
    (["--engine", "spark", "--spark-master", "local[2]", "--spark-remote", "sc://h:15002"],
     "not both"),
    (["--engine", "spark", "--memory-limit", "1GB"], "spark.driver.memory"),
])
def test_engine_options_that_do_not_apply_are_usage_errors(in_root: None, args: list[str],
                                                           message: str) -> None:
    result = scan("sample_logs/", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_spark_engine_without_pyspark_says_how_to_install_it(
        in_root: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "pyspark" or m.startswith(
            ("pyspark.", "scrapewatch.engine.spark"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark raises ImportError
    result = scan("sample_logs/", "--engine", "spark")
    assert result.exit_code == 1
    assert "pip install 'scrapewatch[spark]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_path_is_told_before_spark_starts(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import scrapewatch.cli as commands

    def no_spark(*args: object) -> None:
        raise AssertionError("Spark started")

    monkeypatch.setattr(commands, "spark_session_for", no_spark)
    result = scan(str(tmp_path / "nope.log"), "--engine", "spark")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: {tmp_path / 'nope.log'}: no such file or directory\n"


def test_since_and_until_scan_a_window_and_record_it(in_root: None) -> None:
    # k-acme-scraper's periods start 2025-03-03T08:00 and 2025-03-05T12:00; 198.51.100.23
    # crosses inside the window
    result = scan("sample_logs/", "--output", "json", "--since", "2025-03-04T06:00:00Z",
                  "--until", "2025-03-05T12:00:00Z")
    assert (result.exit_code, result.stderr) == (0, "")
    report = json.loads(result.stdout)
    assert [(e["entity"], e["damages_usd"]) for e in report["entities"]] == [
        ("198.51.100.23", "15000.00")]
    assert report["run"]["window"] == {"since": "2025-03-04T06:00:00Z",
                                       "until": "2025-03-05T12:00:00Z"}
    assert report["inputs"]["lines"] == 5_840  # the files' whole, as the table says


def test_a_bad_since_is_a_usage_error_naming_it() -> None:
    result = scan("sample_logs/", "--since", "2025-03-04 at noon")
    assert result.exit_code == 2
    assert "Invalid value for '--since': '2025-03-04 at noon' is not an ISO 8601" in result.stderr
