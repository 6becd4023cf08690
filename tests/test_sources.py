"""Input files: expansion, compression, hashing, line blocks and hostile bytes."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import load

from scrapewatch.errors import InputError
from scrapewatch.ingest.sources import LogSource, expand_inputs, lines_array

LINE = '192.0.2.1 - - [04/Mar/2025:10:00:00 +0000] "GET /2/tweets/1 HTTP/1.1" 200 1 "-" "-"\n'


def test_expand_files_directories_and_globs(tmp_path: Path) -> None:
    for name in ("b/2.log", "b/1.log.gz", "b/.hidden", "a.log", ".git/x"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert expand_inputs([str(tmp_path / "b")]) == [tmp_path / "b/1.log.gz", tmp_path / "b/2.log"]
    assert expand_inputs([str(tmp_path / "*.log"), str(tmp_path / "a.log")]) == [tmp_path / "a.log"]
    assert expand_inputs([str(tmp_path / "**/*.log*")]) == [
        tmp_path / "a.log", tmp_path / "b/1.log.gz", tmp_path / "b/2.log"]


def test_missing_paths_are_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.log: no such file or directory"):
        expand_inputs([str(tmp_path / "nope.log")])
    with pytest.raises(InputError, match=r"no file matches .*\*\.zz"):
        expand_inputs([str(tmp_path / "*.zz")])


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
