"""`scrapewatch scan --engine spark`: scan's report, computed on Apache Spark.

Spark reads and parses the logs (spark/parse.py), sums them into activity parts by
entity and second with the shared SQL, and runs detection (engine/spark.py). The
driver lists and hashes the files, and receives per-file counts and the findings.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from scrapewatch.config import Config
from scrapewatch.engine.spark import SparkEngine
from scrapewatch.errors import ConfigError, FormatError, InputError
from scrapewatch.pipeline import (
    build_report,
    check_lines,
    check_rejects,
    connect,
    detect,
    finish,
)
from scrapewatch.posts import check_rules
from scrapewatch.reading.formats import FORMATS as FORMATS_BY_NAME
from scrapewatch.reading.read import choose_format
from scrapewatch.reading.sources import DuplicateInput, Inputs, LogSource, list_inputs
from scrapewatch.reporting.findings import Found
from scrapewatch.reporting.model import FileSummary, Report
from scrapewatch.schema import BLANK_LINE, PARTS_OF_REQUESTS_SQL
from scrapewatch.spark.parse import FORMATS, Input, hadoop_path, is_uri, requests

# How Hadoop picks a decompressor: by the file name, not by its first bytes.
_SUFFIX = {"gzip": (".gz",), "none": ()}

# file_counts: per file, its lines, rejects, requests and first and last request.
_FILE_COUNTS_SQL = f"""
SELECT file_id, count(*) AS lines,
       count(CASE WHEN reject_reason <> '{BLANK_LINE}' THEN 1 END) AS rejected,
       count(CASE WHEN reject_reason IS NULL THEN 1 END) AS requests,
       min(CASE WHEN reject_reason IS NULL THEN sec END) AS first_request,
       max(CASE WHEN reject_reason IS NULL THEN sec END) AS last_request
FROM sw_requests
GROUP BY file_id
"""

_REJECTS_SQL = f"""
SELECT f.path, r.line_no, r.reject_reason, r.line
FROM sw_requests r JOIN files f ON f.file_id = r.file_id
WHERE r.reject_reason <> '{BLANK_LINE}'
ORDER BY r.file_id, r.line_no
"""


def scan(spark: SparkSession, paths: Sequence[str], *, config: Config, out: Path | None = None,
         now: datetime | None = None, pseudonym_key: bytes | None = None) -> Report:
    """What pipeline.scan reports for the same files and config, computed on `spark`.

    Local paths are listed, sniffed and hashed here, and must be readable by every
    executor at the same path (local mode, or a shared mount). URIs (s3a://, gs://,
    hdfs://, dbfs:/, file:) are listed and hashed by Spark and need a format.

    Raises:
        InputError, FormatError, ConfigError: as pipeline.scan does; FormatError too for
            a format Spark does not read (see FORMATS).
        RejectLimitError: when more than `input.max_rejected_share` of lines is rejected.
    """
    with connect() as con:
        check_rules(con, config.posts.rules)  # the same regexes must pass RE2, as in a scan
    local = [p for p in paths if not is_uri(p)]
    listed = (list_inputs(local, allow_empty=config.input.allow_empty) if local
              else Inputs([], [], []))
    files = [_examine(path, config.input.format) for path in listed.files]
    uris = [p for p in paths if is_uri(p)]
    if uris:
        files += _listed(spark, uris, config.input.format)
    files, copies = _distinct(files)
    for file in files:
        _check_readable(file)
    inputs = [Input(f.uri, f.path, file_id) for file_id, f in enumerate(files)]
    groups: dict[str, list[Input]] = {}
    for item, file in zip(inputs, files, strict=True):
        if file.format is not None:
            groups.setdefault(file.format, []).append(item)
    engine = SparkEngine(spark)
    try:
        engine.put("files", pa.table({
            "file_id": pa.array([i.file_id for i in inputs], pa.int32()),
            "path": pa.array([i.path for i in inputs], pa.string()),
            "sha256": pa.array([f.sha256 for f in files], pa.string())}))
        counts: dict[int, tuple[Any, ...]] = {}  # (lines, rejected, requests, first, last)
        if groups:
            engine.keep("sw_requests", requests(spark, groups.items(), config))
            engine.create("activity_parts", PARTS_OF_REQUESTS_SQL.format(requests="sw_requests"))
            counts = {row[0]: tuple(row[1:]) for row in engine.rows(_FILE_COUNTS_SQL)}
        none = (0, 0, 0, None, None)
        summaries = [FileSummary(path=f.path, sha256=f.sha256, format=f.format, size=f.size,
                                 lines=int(lines), rejected=int(rejected), requests=int(total))
                     for file_id, f in enumerate(files)
                     for lines, rejected, total, _, _ in [counts.get(file_id, none)]]
        redact = pseudonym_key is not None
        check_lines(summaries, config)
        check_rejects(summaries, config, out, lambda: _rejects(engine), redact=redact)
        if groups:
            with connect() as db:
                detected = detect(engine, db, config, quote=not redact)
        else:
            detected = Found.none()
        report = build_report(config, summaries, [(c[3], c[4]) for c in counts.values()],
                             detected, now, duplicates=listed.duplicates + copies,
                             skipped=listed.skipped)
        return finish(report, out, _rejects(engine) if report.rejected else None,
                      pseudonym_key)
    finally:
        engine.release()


def _rejects(engine: SparkEngine) -> Iterator[tuple[str, int, str, str]]:
    """Every rejected line, by file and line number, streamed from the executors."""
    for row in engine.spark.sql(_REJECTS_SQL).toLocalIterator():
        yield row[0], int(row[1]), row[2], row[3]


@dataclass(frozen=True)
class _File:
    """A file to scan: where Spark reads it, how the report names it, its format (None
    when it is empty), SHA-256, size, compression, and the SHA-256 of its content (the
    decompressed bytes; of the raw bytes for a URI, which Spark hashes as they are)."""

    uri: str
    path: str
    format: str | None
    sha256: str
    size: int
    compression: str = "none"
    content_sha256: str = ""


def _examine(path: Path, format_name: str) -> _File:
    """A local file, its format sniffed and its bytes hashed as a scan does; a
    compressed file's content is hashed too, in the same read, to tell its copies."""
    with LogSource.open(path) as source:
        blocks = source.blocks()
        binary = next((f.name for f in FORMATS_BY_NAME.values()
                       if f.magic and source.magic == f.magic), None)
        first = None if binary else next(blocks, None)
        fmt = binary if binary and format_name in ("auto", binary) else None
        if fmt is None and first is not None:
            fmt = choose_format(source, first, format_name).name
        if fmt is not None:
            _check_format(str(path), fmt)
        del blocks
        if source.compression != "none":
            source.read_content(1 << 62, keep=False)  # the rest, to its end
        content = source.content_sha256()
        # the raw bytes: the rest of the file is read and hashed once, as a scan does
        raw = source.sha256()
        return _File(str(path.resolve()), str(path), fmt, raw, source.size,
                     source.compression, raw if source.compression == "none" else content)


def _distinct(files: list[_File]) -> tuple[list[_File], list[DuplicateInput]]:
    """`files` without those whose content equals an earlier one's (not empty files,
    which count nothing), and those as duplicates."""
    first: dict[str, str] = {}
    kept, copies = [], []
    for file in files:
        key = file.content_sha256 or file.sha256
        earlier = first.setdefault(key, file.path) if file.format else file.path
        if earlier == file.path:
            kept.append(file)
        else:
            copies.append(DuplicateInput(file.path, earlier, "same content"))
    return kept, copies


def _check_readable(file: _File) -> None:
    """Raise InputError for a local file Spark cannot decompress."""
    if file.format is None or file.compression == "none":
        return
    if file.compression not in _SUFFIX:
        raise InputError(f"{file.path}: {file.compression}-compressed, which Spark reads "
                         "only with Hadoop's native libraries: decompress it, or "
                         "scan it with the default engine")
    suffix = _SUFFIX[file.compression]
    if not file.path.endswith(suffix):
        raise InputError(f"{file.path}: {file.compression}-compressed, but Spark picks a "
                         f"decompressor by name: rename it to end in {suffix[0]}")


def _listed(spark: SparkSession, uris: list[str], format_name: str) -> list[_File]:
    """The files under `uris`, listed and hashed by Spark's executors (its binary file
    reader: files up to 2 GiB each)."""
    if format_name == "auto":
        raise ConfigError(f"{uris[0]}: --engine spark does not sniff URIs: give --format "
                          f"({', '.join(FORMATS)})")
    _check_format(uris[0], format_name)
    rows = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
            .load([hadoop_path(u) for u in uris])
            .select("path", "length", F.sha2("content", 256)).orderBy("path").collect())
    if not rows:
        raise InputError(f"no files under {', '.join(uris)}")
    return [_File(path, path, format_name if size else None, sha, size)
            for path, size, sha in rows]


def _check_format(name: str, fmt: str) -> None:
    if fmt not in FORMATS:
        raise FormatError(f"{name}: {fmt} logs are not read by --engine spark (it reads "
                          f"{', '.join(FORMATS)}); scan it with the default engine, or "
                          "convert it to Parquet")


def detect_store_parts(spark: SparkSession, con: duckdb.DuckDBPyConnection, config: Config,
                       parts: str, *, quote: bool) -> Found:
    """Detection on `spark` over the activity parts `parts` selects from a store open
    on `con`: they reach Spark as a Parquet file in a temp folder, which the executors
    must be able to read (local mode, or a temp folder on a shared file system)."""
    with tempfile.TemporaryDirectory(prefix="scrapewatch-") as folder:
        target = Path(folder) / "parts.parquet"
        con.execute(f"COPY ({parts}) TO '{_sql_text(str(target))}' (FORMAT parquet)")
        engine = SparkEngine(spark)
        try:
            engine.put("files", con.sql("SELECT file_id, path, sha256 FROM store.files")
                       .to_arrow_table())
            engine.keep("activity_parts", spark.read.parquet(hadoop_path(str(target))))
            with connect() as db:
                return detect(engine, db, config, quote=quote)
        finally:
            engine.release()


def _sql_text(text: str) -> str:
    """`text` inside a SQL string literal."""
    return text.replace("'", "''")
