"""Input files: expansion, compression, hashing, line blocks and hostile bytes."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import load

from scrapewatch.config import load_config
from scrapewatch.engine.duckdb import connect
from scrapewatch.errors import EmptyInputError, InputError
from scrapewatch.reading import sources
from scrapewatch.reading.inputs import DuplicateInput, SkippedInput, list_inputs
from scrapewatch.reading.read import load_file
from scrapewatch.reading.sources import LogSource, holds_content, lines_array
from scrapewatch.sql import run

LINE = '192.0.2.1 - - [04/Mar/2025:10:00:00 +0000] "GET /2/tweets/1 HTTP/1.1" 200 1 "-" "-"\n'


def files_of(*paths: Path | str) -> list[Path]:
    return list_inputs([str(p) for p in paths]).files


def test_expand_files_directories_and_globs(tmp_path: Path) -> None:
    for name in ("b/2.log", "b/1.log.gz", "b/.hidden", "a.log", ".git/x"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert files_of(tmp_path / "b") == [tmp_path / "b/1.log.gz", tmp_path / "b/2.log"]
    assert files_of(tmp_path / "*.log", tmp_path / "a.log") == [tmp_path / "a.log"]
    assert files_of(tmp_path / "**/*.log*") == [
        tmp_path / "a.log", tmp_path / "b/1.log.gz", tmp_path / "b/2.log"]
    assert files_of(tmp_path) == [tmp_path / "a.log", tmp_path / "b/1.log.gz",
                                  tmp_path / "b/2.log"]  # a folder's files, then its folders


def test_missing_paths_are_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.log: no such file or directory"):
        files_of(tmp_path / "nope.log")
    with pytest.raises(InputError, match=r"no file matches .*\*\.zz"):
        files_of(tmp_path / "*.zz")
    (tmp_path / "gone.log").symlink_to("nowhere.log")
    with pytest.raises(InputError, match=r"gone\.log: a broken symlink to nowhere\.log$"):
        files_of(tmp_path / "gone.log")


def test_another_path_to_a_listed_file_is_a_duplicate(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "x.log").write_text("x\n")
    (tmp_path / "current.log").symlink_to("x.log")
    os.link(tmp_path / "x.log", tmp_path / "y.log")
    inputs = list_inputs([str(tmp_path / "x.log"), str(tmp_path / "a/../x.log"),
                          str(tmp_path), str(tmp_path / "x.log")])
    assert inputs.files == [tmp_path / "x.log"]
    assert inputs.duplicates == [
        DuplicateInput(str(tmp_path / "a/../x.log"), str(tmp_path / "x.log"), "same file"),
        DuplicateInput(str(tmp_path / "current.log"), str(tmp_path / "x.log"), "same file"),
        DuplicateInput(str(tmp_path / "y.log"), str(tmp_path / "x.log"), "same file")]
    assert inputs.skipped == []


def test_directory_symlinks_are_followed_once_and_loops_skipped(tmp_path: Path) -> None:
    (tmp_path / "logs/day").mkdir(parents=True)
    (tmp_path / "logs/day/a.log").write_text("a\n")
    (tmp_path / "logs/latest").symlink_to("day")
    (tmp_path / "logs/day/up").symlink_to("..")
    (tmp_path / "logs/self").symlink_to("self")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/b.log").write_text("b\n")
    (tmp_path / "logs/more").symlink_to(tmp_path / "elsewhere")
    inputs = list_inputs([str(tmp_path / "logs")])
    assert inputs.files == [tmp_path / "logs/day/a.log", tmp_path / "logs/more/b.log"]
    assert inputs.duplicates == [DuplicateInput(str(tmp_path / "logs/latest"),
                                                str(tmp_path / "logs/day"), "same directory")]
    assert inputs.skipped == [
        SkippedInput(str(tmp_path / "logs/self"), "a symlink loop"),
        SkippedInput(str(tmp_path / "logs/day/up"),
                     f"a directory symlink loop (back to {tmp_path / 'logs'})")]


def test_only_regular_files_are_listed_the_rest_skipped_unopened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.log")
    (tmp_path / "broken.log").symlink_to("nowhere")
    (tmp_path / "pipe-link.log").symlink_to("fifo.log")
    (tmp_path / "z.log").write_text("z\n")
    inputs = list_inputs([str(tmp_path)])  # would block for ever on opening the FIFO
    assert inputs.files == [tmp_path / "z.log"]
    assert inputs.skipped == [
        SkippedInput(str(tmp_path / "broken.log"), "a broken symlink to nowhere"),
        SkippedInput(str(tmp_path / "fifo.log"), "a named pipe, not a regular file"),
        SkippedInput(str(tmp_path / "pipe-link.log"), "a named pipe, not a regular file")]
    assert list_inputs([str(tmp_path / "*.log")]).files == [tmp_path / "z.log"]
    with pytest.raises(InputError, match=r"fifo\.log: not a regular file \(a named pipe\); "):
        list_inputs([str(tmp_path / "fifo.log")])
    with pytest.raises(InputError, match=r"/dev/null: not a regular file \(a character device"):
        list_inputs(["/dev/null"])


def test_a_fifo_in_a_files_place_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.log")
    with pytest.raises(InputError, match=r"fifo\.log: not a regular file \(a named pipe\)"):
        LogSource.open(tmp_path / "fifo.log")  # opened non-blocking, then refused


def test_a_directory_without_log_files_is_empty_input(tmp_path: Path) -> None:
    (tmp_path / ".hidden.log").write_text("x\n")
    with pytest.raises(EmptyInputError, match=rf"^no input: {tmp_path} holds no log file; "):
        list_inputs([str(tmp_path)])
    assert list_inputs([str(tmp_path)], allow_empty=True).files == []


def test_holds_content_reads_past_compression(tmp_path: Path) -> None:
    (tmp_path / "empty.gz").write_bytes(gzip.compress(b""))
    (tmp_path / "one.gz").write_bytes(gzip.compress(b"x"))
    (tmp_path / "empty.log").write_bytes(b"")
    assert [holds_content(tmp_path / n) for n in ("empty.gz", "one.gz", "empty.log")] == [
        False, True, False]


def test_lines_array_keeps_line_ends_and_a_last_line_without_one() -> None:
    assert lines_array(b"a\nbb\r\nc").to_pylist() == ["a\n", "bb\r\n", "c"]
    assert lines_array(b"a\n").to_pylist() == ["a\n"]


def test_invalid_utf8_becomes_visible_escapes() -> None:
    assert lines_array(b"ok\n\xff\xfe bad\n").to_pylist() == ["ok\n", "\\xff\\xfe bad\n"]


@pytest.mark.parametrize("compress", ["gzip", "zstd", "none"])
def test_compressed_inputs_are_read_by_content_and_hashed_raw(tmp_path: Path,
                                                              compress: str) -> None:
    path = tmp_path / "access"  # no telling extension: the magic bytes decide
    data = (LINE * 1000).encode()
    if compress == "gzip":
        path.write_bytes(gzip.compress(data))
    elif compress == "zstd":
        with pa.CompressedOutputStream(str(path), "zstd") as out:
            out.write(data)
    else:
        path.write_bytes(data)
    with LogSource.open(path) as source:
        lines = sum(len(b) for b in source.blocks(block_bytes=4096))
        assert (lines, source.compression) == (1000, compress)
        assert source.sha256() == hashlib.sha256(path.read_bytes()).hexdigest()
        assert source.bytes_read == path.stat().st_size


@pytest.mark.parametrize("compress", ["none", "gzip"])
@pytest.mark.parametrize(("skip", "limit"), [(0, None), (0, 40 * len(LINE) + 3),
                                             (10 * len(LINE) + 3, 40 * len(LINE) + 3)],
                         ids=["whole", "limit", "skip-limit"])
def test_file_hash_is_of_the_raw_file_content_hash_of_the_content_read(
        tmp_path: Path, compress: str, skip: int, limit: int | None) -> None:
    # an uncompressed file is hashed once, as content; its file hash goes on from there
    content = codecs.BOM_UTF8 + (LINE * 100).encode()  # the BOM counts as content
    path = tmp_path / "access"
    path.write_bytes(gzip.compress(content) if compress == "gzip" else content)
    with LogSource.open(path) as source:
        lines = [line for block in source.blocks(1000, skip=skip, limit=limit)
                 for line in block.to_pylist()]
        assert "".join(lines).encode() == content[max(skip, 3):limit]
        assert source.content_sha256() == hashlib.sha256(content[:limit]).hexdigest()
        assert source.sha256() == hashlib.sha256(path.read_bytes()).hexdigest()
        assert source.sha256() == hashlib.sha256(path.read_bytes()).hexdigest()  # again
        assert source.content_sha256() == hashlib.sha256(content[:limit]).hexdigest()
    with LogSource.open(path) as source:  # as a store compares a grown file's start
        source.read_content(skip + 5, keep=False)
        assert source.content_sha256() == hashlib.sha256(content[:skip + 5]).hexdigest()
        assert source.sha256() == hashlib.sha256(path.read_bytes()).hexdigest()
    with LogSource.open(path, hashing=False) as source:  # nothing computed
        assert sum(len(block) for block in source.blocks(1000, skip=skip, limit=limit))
        assert source.content_sha256() == source.sha256() == hashlib.sha256().hexdigest()


def test_blocks_cut_only_at_newlines(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text("".join(f"{i:05d}\n" for i in range(3000)))
    with LogSource.open(path) as source:
        got = [line for block in source.blocks(block_bytes=1000) for line in block.to_pylist()]
    assert got == [f"{i:05d}\n" for i in range(3000)]


def test_truncated_gzip_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.log.gz"
    path.write_bytes(gzip.compress((LINE * 5000).encode())[:-100])
    with pytest.raises(InputError, match=r"cut.log.gz: the gzip stream is truncated or corrupt"):
        load(path)


def test_truncated_zstd_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.log.zst"
    with pa.CompressedOutputStream(str(path), "zstd") as out:
        out.write((LINE * 5000).encode())
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(InputError, match=r"cut.log.zst: the zstd stream is truncated"):
        load(path)


def test_empty_file_has_no_lines(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    loaded, requests, rejects = load(path)
    assert (loaded.format, loaded.lines, requests, rejects) == (None, 0, [], [])


def test_hostile_lines_are_rejects_or_requests_never_lost(tmp_path: Path) -> None:
    path = tmp_path / "hostile.log"
    huge = ('192.0.2.1 - - [04/Mar/2025:10:00:00 +0000] "GET /' + "a" * 1_000_000
            + ' HTTP/1.1" 200 1\n')
    path.write_bytes(LINE.encode() + b"\x00\x01\x02\n" + b"\xc3\x28 bad utf8\n" + huge.encode()
                     + ("x" * 1_000_000 + "\n").encode() + LINE.encode())
    loaded, requests, rejects = load(path, "combined")
    assert (loaded.lines, len(requests), loaded.rejected) == (6, 3, 3)
    assert [r[0] for r in requests] == [1, 4, 6]
    assert [(n, reason) for n, reason, _ in rejects] == [
        (2, "not a common/combined log line"), (3, "not a common/combined log line"),
        (5, "not a common/combined log line")]
    assert rejects[1][2] == "\\xc3( bad utf8"
    assert len(rejects[2][2]) == 500  # a rejected line is kept cut short


def test_a_glob_walks_the_directories_it_matches(tmp_path: Path) -> None:
    (tmp_path / "logs/old").mkdir(parents=True)
    (tmp_path / "logs/a.log").write_text("a\n")
    (tmp_path / "logs/old/b.log").write_text("b\n")
    assert files_of(tmp_path / "logs/*") == [tmp_path / "logs/a.log", tmp_path / "logs/old/b.log"]
    (tmp_path / "logs/old/b.log").unlink()
    with pytest.raises(EmptyInputError, match=r"^no input: .*/logs/o\* holds no log file; "):
        files_of(tmp_path / "logs/o*")


@pytest.mark.parametrize("skip", [0, 1000])
def test_marks_give_the_content_offset_of_their_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, skip: int) -> None:
    # block starts and every 7th line after them; a BOM; a block whose invalid UTF-8 is
    # made visible (longer than the file's bytes: only its first line is marked)
    monkeypatch.setattr(sources, "MARK_EVERY", 7)
    lines = [f"{n:04d} {'x' * (n % 13)}\n".encode() for n in range(300)]
    lines[150] = b"bad \xff byte\n"
    content = codecs.BOM_UTF8 + b"".join(lines)
    path = tmp_path / "a.log"
    path.write_bytes(content)
    skip = skip and content.index(b"\n", skip) + 1
    with LogSource.open(path) as source:
        blocks = list(source.blocks(500, skip=skip))
    read = [line for block in blocks for line in block.to_pylist()]
    marked = [(int(n), int(at)) for numbers, offsets in source.marks
              for n, at in zip(numbers, offsets, strict=True)]
    assert source.lines_read == len(read) and marked[0] == (0, max(skip, 3))
    for number, at in marked:
        assert content[at:].startswith(read[number].encode()), (number, at)
    # within blocks every 7th line; the block holding the bad byte only at its start
    bad = next(i for i, line in enumerate(read) if line.startswith("bad"))
    starts, count = [], 0
    for block in blocks:
        starts.append(count)
        count += len(block)
    holder = max(s for s in starts if s <= bad)
    assert [n for n, _ in marked if holder <= n < holder + 7] == [holder]
    assert len(marked) > len(blocks) + 20


def test_a_compressed_read_has_no_marks(tmp_path: Path) -> None:
    path = tmp_path / "a.log.gz"
    path.write_bytes(gzip.compress((LINE * 5000).encode()))
    with LogSource.open(path) as source:
        assert sum(len(block) for block in source.blocks(1000)) == 5000
    assert source.marks == [] and source.lines_read == 5000
    with LogSource.open(path, hashing=False) as source, pytest.raises(ValueError):
        source.seek_content(100)


def test_a_load_notes_where_its_lines_start(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # lines 11 to 40 of a file, as a store reads a grown file's new part
    monkeypatch.setattr(sources, "MARK_EVERY", 5)
    path = tmp_path / "a.log"
    path.write_text(LINE * 40)
    con = connect()
    with LogSource.open(path) as source:
        load_file(con, source, file_id=3, format_name="auto", config=load_config(),
                  first_line=11, skip=10 * len(LINE))
    assert run(con, 'SELECT file_id, line_no, "offset" FROM line_offsets ORDER BY 2') == [
        (3, 11 + 5 * k, (10 + 5 * k) * len(LINE)) for k in range(6)]


@pytest.mark.parametrize("text", ["x" * 3000, "x" * 1010, "ok\n" + "x" * 1010,
                                  "x" * 3000 + "\nok\n"],
                         ids=["long", "last-read", "last-line", "first-line"])
def test_a_line_past_the_limit_stops_the_read_wherever_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    # the last line too, found past the limit only by the file's last read
    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "a.log"
    path.write_text(text)
    with LogSource.open(path) as source, pytest.raises(InputError, match="longer than"):
        list(source.blocks(256))
    path.write_text(text.replace("x" * 3000, "x" * 900).replace("x" * 1010, "x" * 900))
    with LogSource.open(path) as source:
        assert "".join(line for block in source.blocks(256) for line in block.to_pylist()) \
            == path.read_text()


def test_a_file_read_without_hashing_is_not_read_to_its_end(tmp_path: Path) -> None:
    # a Spark task loading a range of a file reads that range, not the rest
    path = tmp_path / "a.log"
    path.write_bytes(LINE.encode() * 100_000)
    with LogSource.open(path, hashing=False) as source:
        source.seek_content(len(LINE) * 10)
        lines = [line for block in source.blocks(skip=len(LINE) * 10, limit=len(LINE) * 20)
                 for line in block.to_pylist()]
        assert lines == [LINE] * 10
        assert source.sha256() == hashlib.sha256().hexdigest()
        assert source.bytes_read < 1 << 20 < path.stat().st_size
