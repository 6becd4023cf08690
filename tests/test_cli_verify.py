"""`scrapewatch verify DIR`: an --out folder's manifest.json holds every file's SHA-256
and size, the inputs' hashes, the version and the whole configuration, and verify names
each file that changed, went missing or was added (exit 1)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLE_LOGS

from scrapewatch.cli import cli
from scrapewatch.version import __version__

PINNED = {"SOURCE_DATE_EPOCH": "1741219200"}  # 2025-03-06T00:00:00Z
WRITTEN = ["entities.csv", "entities.parquet", "periods.csv", "periods.parquet", "rejects",
           "report.html", "report.json"]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "report"
    result = CliRunner().invoke(cli, ["scan", str(SAMPLE_LOGS), "--out", str(folder), "-q",
                                      "--rate", "20000"], env=PINNED)
    assert result.exit_code == 0, result.stderr
    return folder


def verify(folder: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["verify", str(folder), *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_manifest_holds_every_file_the_inputs_the_version_and_the_config(out: Path
                                                                            ) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"] == {
        name: {"sha256": hashlib.sha256((out / name).read_bytes()).hexdigest(),
               "bytes": (out / name).stat().st_size} for name in WRITTEN}
    report = json.loads((out / "report.json").read_text())
    assert manifest["inputs"] == [{"path": f["path"], "sha256": f["sha256"], "bytes": f["size"]}
                                  for f in report["inputs"]["files"]]
    assert len(manifest["inputs"]) == 3
    assert (manifest["scrapewatch_version"], manifest["generated_at"]) == (
        __version__, "2025-03-06T00:00:00Z")
    assert manifest["config"] == report["run"]["config"]
    assert manifest["config"]["policy"]["rate_usd"] == "20000"


def test_an_untouched_folder_verifies(out: Path) -> None:
    code, stdout, stderr = verify(out)
    assert code == 0
    assert stdout == "".join(f"ok         {name}\n" for name in WRITTEN)
    assert stderr == f"verified {out}: 7 files as manifest.json lists them\n"
    assert verify(out, "-q")[1] == ""


def test_verify_names_each_file_that_changed_went_missing_or_was_added(out: Path) -> None:
    report = out / "report.json"
    text = report.read_bytes()
    report.write_bytes(text.replace(b'"20000"', b'"10000"', 1))  # same size, other bytes
    (out / "periods.csv").unlink()
    (out / "notes.txt").write_text("added later\n")
    code, stdout, stderr = verify(out, "-q")
    assert code == 1
    sha_before = hashlib.sha256(text).hexdigest()
    sha_now = hashlib.sha256(report.read_bytes()).hexdigest()
    assert stdout == (
        "missing    periods.csv\n"
        f"changed    report.json: sha256 {sha_before} in the manifest, {sha_now} now\n"
        "extra      notes.txt: not in the manifest\n")
    assert stderr == f"error: {out}: 3 of 8 files differ from manifest.json\n"


def test_a_folder_without_a_good_manifest_is_an_error(out: Path, tmp_path: Path) -> None:
    assert verify(tmp_path) == (1, "", f"error: {tmp_path} has no manifest.json: it is not a "
                                       "folder written by scrapewatch --out (or the manifest "
                                       "was removed)\n")
    (out / "manifest.json").write_text('{"files": {"../../etc/passwd": '
                                       '{"sha256": "x", "bytes": 1}}}')
    code, _, stderr = verify(out)
    assert code == 1 and "is not a scrapewatch manifest" in stderr
    (out / "manifest.json").write_text("[1, 2")
    code, _, stderr = verify(out)
    assert code == 1 and "is not a scrapewatch manifest" in stderr


def test_names_are_escaped_for_the_terminal(out: Path) -> None:
    (out / "evil\x1b[2J.txt").write_text("x")
    code, stdout, _ = verify(out, "-q")
    assert code == 1 and "\x1b" not in stdout and "extra" in stdout
