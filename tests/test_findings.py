"""Findings kept on disk: priced in batches and read back a batch at a time, with the
same report as one batch would give."""

from __future__ import annotations

import errno
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapewatch.cli import cli
from scrapewatch.config import load_config
from scrapewatch.pipeline import scan
from scrapewatch.reporting import findings as findings_module
from scrapewatch.reporting import model
from scrapewatch.reporting.files import _indented, write_report_json

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _log(path: Path) -> Path:
    """Twelve keys: k00 to k09 over the limit (k00 with 3 periods, the others 1),
    w0 and w1 on the watchlist."""
    lines = []
    for i in range(10):
        for day in range(3 if i == 0 else 1):
            for hour in (1, 2):
                lines.append({"ts": f"2025-03-{1 + 2 * day:02d}T{hour:02d}:00:{i:02d}Z",
                              "api_key": f"k{i:02d}", "path": "/x", "posts": 500_001 + i})
    for i in range(2):
        lines.append({"ts": "2025-03-01T05:00:00Z", "api_key": f"w{i}", "path": "/x",
                      "posts": 900_000 + i})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _report_json(log: Path) -> str:
    stream = io.StringIO()
    write_report_json(scan([str(log)], config=load_config(), now=NOW), stream)
    return stream.getvalue()


def test_small_batches_give_the_same_report(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    log = _log(tmp_path / "many.jsonl")
    whole = _report_json(log)
    monkeypatch.setattr(findings_module, "BATCH_COST", 9)  # about one entity a batch
    monkeypatch.setattr(findings_module, "RANKS_AT_ONCE", 2)
    monkeypatch.setattr(model, "ROWS_READ", 3)
    assert _report_json(log) == whole
    document = json.loads(whole)
    assert document["totals"] == {"entities_flagged": 10, "periods": 12,
                                  "damages_usd": "180000.00"}
    # largest damages first (k00: 3 periods), then the highest peak
    assert [e["entity"] for e in document["entities"]] == ["k00"] + [
        f"k{i:02d}" for i in range(9, 0, -1)]
    assert [w["entity"] for w in document["watchlist"]] == ["w1", "w0"]


def test_streamed_report_json_is_the_document(tmp_path: Path) -> None:
    report = scan([str(_log(tmp_path / "many.jsonl"))], config=load_config())
    stream = io.StringIO()
    write_report_json(report, stream)
    assert stream.getvalue() == json.dumps(report.to_json(), indent=2, ensure_ascii=True) + "\n"


def test_stored_findings_read_like_a_list(tmp_path: Path) -> None:
    report = scan([str(_log(tmp_path / "many.jsonl"))], config=load_config())
    as_list = list(report.findings)
    assert len(report.findings) == len(as_list) == 10
    assert report.findings[0] == as_list[0] and report.findings[-1] == as_list[-1]
    assert report.findings[2:4] == as_list[2:4]
    assert report.findings == as_list and report.findings != as_list[:-1]
    with pytest.raises(IndexError):
        report.findings[10]
    assert [e.first_line for e in as_list[0].evidence[0]] == [1]
    assert as_list[0].evidence[0][0].samples[0][1].startswith('{"ts": "2025-03-01T01:00:00Z"')


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_report_json_items_are_indented_as_json_dumps_does(value: object) -> None:
    assert _indented(value, "\n    ") == json.dumps(value, indent=2, ensure_ascii=True).replace(
        "\n", "\n    ")


def test_a_full_temp_folder_while_keeping_findings_is_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _log(tmp_path / "many.jsonl")

    class FullDisk:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(findings_module.pq, "ParquetWriter", FullDisk)
    result = CliRunner().invoke(cli, ["scan", str(log), "-q"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: cannot write the findings to the temp folder ")
    assert result.stderr.endswith(": No space left on device; free space in it, or set TMPDIR "
                                  "to a folder with more room\n")
