"""--out holds one complete run: written aside, swapped in whole, never followed out.

Each test runs `scan` twice into one folder, or plants something in it first, and checks
the folder byte for byte afterwards.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import SAMPLE_LOGS

from scrapewatch.cli import cli
from scrapewatch.errors import OutputError
from scrapewatch.reporting import outputs
from scrapewatch.reporting.files import out_folder

LINE = '192.0.2.1 - - [04/Mar/2025:10:00:00 +0000] "GET /2/tweets/1 HTTP/1.1" 200 1 "-" "-"\n'
FULL = ("entities.csv", "entities.parquet", "manifest.json", "periods.csv", "periods.parquet",
        "rejects", "report.html", "report.json")


def scan(*args: str) -> Result:
    return CliRunner().invoke(cli, ["scan", *args], env={"SOURCE_DATE_EPOCH": "1741219200"})


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by its relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def clean_log(tmp_path: Path) -> Path:
    path = tmp_path / "clean.log"
    path.write_text(LINE * 3)
    return path


@pytest.fixture
def first_run(tmp_path: Path) -> Path:
    """tmp_path/out/r holding the full set of a scan of sample_logs (one reject)."""
    out = tmp_path / "out" / "r"
    assert scan(str(SAMPLE_LOGS), "--out", str(out)).exit_code == 0
    assert tuple(sorted(p.name for p in out.iterdir())) == FULL
    return out


def test_a_run_without_rejects_leaves_no_rejects_of_the_previous_run(
        first_run: Path, clean_log: Path) -> None:
    result = scan(str(clean_log), "--out", str(first_run))
    assert (result.exit_code, result.stderr) == (0, "")
    assert "rejects" not in {p.name for p in first_run.iterdir()}
    report = json.loads((first_run / "report.json").read_text())
    assert [f["path"] for f in report["inputs"]["files"]] == [str(clean_log)]
    assert sorted(os.listdir(first_run.parent)) == ["r"]  # no temporary folder left


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     RuntimeError("a bug")])
def test_a_failure_writing_the_third_file_leaves_the_previous_set_as_it_was(
        first_run: Path, clean_log: Path, monkeypatch: pytest.MonkeyPatch,
        failure: Exception) -> None:
    before = snapshot(first_run)

    def fail(report: object, stream: object) -> None:
        raise failure

    # report.json, entities.csv, then this
    monkeypatch.setitem(outputs.REPORT_FILES, "periods.csv", (fail, False))
    result = scan(str(clean_log), "--out", str(first_run))
    assert (result.exit_code, result.stdout) == (1, "")
    if isinstance(failure, OSError):
        assert result.stderr == (
            f"error: cannot write {first_run}/periods.csv: No space left on device (free some "
            f"space, or give --out on another disk); {first_run} was left as it was\n")
    else:
        assert result.stderr == (
            f"error: unexpected RuntimeError: a bug (while writing {first_run}/periods.csv) "
            "(run with --debug for the traceback, and please report it)\n")
    assert snapshot(first_run) == before
    assert sorted(os.listdir(first_run.parent)) == ["r"]


def test_a_symlink_planted_in_the_folder_is_removed_not_followed(
        first_run: Path, clean_log: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (first_run / "report.json").unlink()
    (first_run / "report.json").symlink_to(victim)
    (first_run / "rejects").unlink()
    (first_run / "rejects").symlink_to(tmp_path)  # a link to a folder, too
    assert scan(str(clean_log), "--out", str(first_run)).exit_code == 0
    assert victim.read_text() == "keep me"
    assert not (first_run / "report.json").is_symlink()
    assert json.loads((first_run / "report.json").read_text())["inputs"]["lines"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.log", "out", "victim.txt"]


def test_a_symlink_at_the_folder_is_refused(first_run: Path, clean_log: Path,
                                            tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "report.json").write_text("not ours")
    link = tmp_path / "out" / "link"
    link.symlink_to(elsewhere)
    result = scan(str(clean_log), "--out", str(link))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (f"error: {link} is a symbolic link, which --out does not follow; "
                             "give the folder it points to, or a new path\n")
    assert snapshot(elsewhere) == {"report.json": b"not ours"}
    assert link.is_symlink() and sorted(os.listdir(link.parent)) == ["link", "r"]


def test_a_folder_holding_other_files_is_refused_not_deleted(
        first_run: Path, clean_log: Path) -> None:
    (first_run / "notes.txt").write_text("mine")
    (first_run / "plots").mkdir()
    (first_run / "plots/a.svg").write_text("<svg/>")
    before = snapshot(first_run)
    result = scan(str(clean_log), "--out", str(first_run))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: {first_run} holds notes.txt, plots, which scrapewatch does not write; --out "
        "replaces the whole folder, so give a new or empty folder, or one holding only an "
        "earlier report\n")
    assert snapshot(first_run) == before


def test_a_file_at_the_folder_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "r").write_text("a file")  # the CLI refuses it first (exit 2)
    with pytest.raises(OutputError, match=r"^.*/r exists and is not a folder; give a folder "
                                          r"for the report$"), out_folder(tmp_path / "r"):
        pass
    assert (tmp_path / "r").read_text() == "a file"


def test_an_empty_folder_or_a_leftover_of_an_old_version_is_replaced(
        tmp_path: Path, clean_log: Path) -> None:
    out = tmp_path / "r"
    out.mkdir(mode=0o750)
    os.chmod(out, 0o750)
    (out / ".report.json.k2j3h4ab").write_text("half")  # an old version died here
    assert scan(str(clean_log), "--out", str(out)).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [n for n in FULL if n != "rejects"]
    assert out.stat().st_mode & 0o777 == 0o750  # the folder keeps its permissions


def test_over_the_reject_limit_the_folder_holds_only_the_rejects(
        first_run: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.log"
    bad.write_text(LINE * 98 + "garbage\n" * 2)
    result = scan(str(bad), "--out", str(first_run))
    assert result.exit_code == 4
    assert result.stderr.endswith(f"; see {first_run}/rejects; check --format, or raise "
                                  "input.max_rejected_share\n")
    assert sorted(os.listdir(first_run)) == ["rejects"]
    assert (first_run / "rejects").read_text().splitlines()[1:] == [
        f"{bad},99,not a common/combined log line,garbage",
        f"{bad},100,not a common/combined log line,garbage"]


def test_a_failed_swap_puts_the_previous_set_back(
        first_run: Path, clean_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(first_run)
    real_rename = os.rename

    def rename(src: str | Path, dst: str | Path) -> None:
        if Path(src).name.startswith(".r.tmp-"):  # the new set into place
            raise OSError(errno.EIO, "Input/output error")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    result = scan(str(clean_log), "--out", str(first_run))
    assert (result.exit_code, result.stderr) == (
        1, f"error: cannot put the report in place at {first_run}: Input/output error\n")
    assert snapshot(first_run) == before
    assert sorted(os.listdir(first_run.parent)) == ["r"]


def test_a_new_folder_and_its_parents_are_made(tmp_path: Path, clean_log: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert scan(str(clean_log), "--out", "a/b/r").exit_code == 0
    assert (tmp_path / "a/b/r/report.json").is_file()
    assert sorted(os.listdir(tmp_path / "a/b")) == ["r"]


def test_the_folder_mechanism_wraps_any_writers(tmp_path: Path) -> None:
    with out_folder(tmp_path / "r") as folder:
        folder.write("report.json", lambda s: s.write("{}\n"))
        folder.write("entities.parquet", lambda s: s.write(b"PAR1"), binary=True)
        assert not (tmp_path / "r").exists()  # nothing is visible until the block ends
    assert snapshot(tmp_path / "r") == {"entities.parquet": b"PAR1", "report.json": b"{}\n"}
    assert folder.paths == [tmp_path / "r/report.json", tmp_path / "r/entities.parquet"]

    def read_only(stream: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    message = (f"cannot write {tmp_path}/r/report.html: Read-only file system (give --out a "
               f"folder you can write); {tmp_path}/r was left as it was")
    with pytest.raises(OutputError) as error, out_folder(tmp_path / "r") as folder:
        folder.write("report.html", read_only)
    assert str(error.value) == message
    assert snapshot(tmp_path / "r") == {"entities.parquet": b"PAR1", "report.json": b"{}\n"}
    assert sorted(os.listdir(tmp_path)) == ["r"]


def test_the_root_folder_is_never_replaced() -> None:
    with pytest.raises(OutputError) as error, out_folder(Path("/")):
        pass
    assert str(error.value) == "cannot replace / by a report: give a folder below it"


def test_the_folder_check_knows_every_file_the_writers_write() -> None:
    """An --out folder is replaced only when it holds report files alone (OUT_FILES):
    those are the registry's files and rejects."""
    from scrapewatch.reporting.files import OUT_FILES

    assert set(outputs.REPORT_FILES) | {"rejects", "manifest.json"} == OUT_FILES
