"""Every format and compression gives the same answer on each engine, and Spark's
output files are byte for byte DuckDB's.

The same requests are written in every format scrapewatch reads (benchmarks.formats
converts them), compressed with gzip and zstd, and read through custom nginx:, apache:
and regex: formats. One test body runs over both engines: it checks the answer worked
out by hand below, then (on Spark) that report.json, the CSVs, the Parquet files,
rejects and report.html equal DuckDB's. On Spark, each plain file of a format without a
header loads in ranges, a task each (spark-ranges); the others load whole (spark).

The requests, all on 2025-03-01 (UTC), posts from the built-in rules:
- 198.51.100.23: 2,100 searches of 500 posts every 30 s from 00:00:00: 1,050,000 posts
  in 17.5 hours, over the threshold at its 2,001st request (16:40:00); one greedy period
  from 00:00:00, charged pro rata at $15,000 a million: $15,750.00.
- 203.0.113.9: 400 searches of 100 posts a minute (40,000 posts), and 50 more answered
  429, which do not count: on the watchlist, whose share is set to 4 % of the threshold.
- 192.0.2.44: 30 requests of a page no rule gives posts to.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from benchmarks.formats import FORMATS, HEADERS, convert
from scrapewatch.config import Config, load_config
from scrapewatch.pipeline import scan

T0 = datetime(2025, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
REQUESTS = 2_100 + 450 + 30
OUT_FILES = ("report.json", "entities.csv", "periods.csv", "entities.parquet",
             "periods.parquet", "rejects", "report.html", "manifest.json")

# The cases of plain files in formats without a header, which Spark loads in ranges.
SPLIT = ("combined", "common", "vhost_combined", "alb", "elb", "iis", "jsonl", "nginx:",
         "apache:")
# case -> (the file it reads, its --format, the rejected lines)
CASES: dict[str, tuple[str, str, int]] = {
    **{fmt: (f"requests.{fmt}", "auto", 0) for fmt in FORMATS},
    "combined.gz": ("requests.combined.gz", "auto", 0),
    "jsonl.zst": ("requests.jsonl.zst", "auto", 0),
    "nginx:": ("requests.combined", 'nginx:$remote_addr - $remote_user [$time_local] '
               '"$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"', 0),
    "apache:": ("requests.common", 'apache:%h %l %u %t "%r" %>s %b', 0),
    # the header line is no request: one reject
    "regex:": ("requests.tsv", r"regex:(?P<time>[0-9]{4}-\S+)\t(?P<client>\S+)\t"
               r"(?P<method>\S+)\t(?P<path>[^\t]*)\t(?P<query>[^\t]*)\t(?P<status>[0-9]+)", 1),
}


def _has_spark() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return shutil.which("java") is not None


_SPARK = [pytest.mark.skipif(not _has_spark(), reason="Spark needs PySpark and Java"),
          # py4j leaves its sockets to the garbage collector
          pytest.mark.filterwarnings("ignore::ResourceWarning",
                                     "ignore::pytest.PytestUnraisableExceptionWarning")]
# spark-ranges: Spark as if on 64 cores, every plain file of a format without a header
# loaded in ranges of 20,000 bytes or more, a dozen tasks a file
ENGINES = ["duckdb", pytest.param("spark", marks=_SPARK),
           pytest.param("spark-ranges", marks=_SPARK)]


def _requests() -> Iterator[dict[str, Any]]:
    def at(seconds: int) -> str:
        return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    base = {"method": "GET", "bytes": 512}
    for i in range(2_100):
        yield {**base, "ts": at(30 * i), "client_ip": "198.51.100.23",
               "path": "/2/tweets/search/all", "query": "max_results=500", "status": 200}
    for i in range(450):
        yield {**base, "ts": at(60 * i + 7), "client_ip": "203.0.113.9",
               "path": "/2/tweets/search/recent", "query": "max_results=100",
               "status": 200 if i < 400 else 429}
    for i in range(30):
        yield {**base, "ts": at(600 * i + 11), "client_ip": "192.0.2.44",
               "path": "/index.html", "query": "", "status": 200}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("requests")
    source = folder / "source.json"
    source.write_text("".join(json.dumps(r) + "\n" for r in _requests()))
    for fmt in FORMATS:
        convert(source, fmt, folder / f"requests.{fmt}")
    (folder / "requests.combined.gz").write_bytes(
        gzip.compress((folder / "requests.combined").read_bytes()))
    with pa.CompressedOutputStream(str(folder / "requests.jsonl.zst"), "zstd") as out:
        out.write((folder / "requests.jsonl").read_bytes())
    return folder


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param != "spark-ranges":
        yield str(request.param)
        return
    from scrapewatch.engine import spark, spark_tasks

    made = spark.load_tasks

    def tasks(paths: list[str], config: Config, cores: int) -> Any:
        made_now = made(paths, config, 64)  # as if on 64 cores
        RANGES.append(len(made_now[0]))
        return made_now

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spark_tasks, "SPLIT_BYTES", 20_000)
        patch.setattr(spark, "load_tasks", tasks)
        yield str(request.param)


RANGES: list[int] = []  # the tasks of each scan on spark-ranges


def _config(log_format: str) -> Config:
    return load_config(overrides={"input.format": log_format, "entity.keys": ("client_ip",),
                                  "policy.rounding": "prorata", "policy.warning_share": "0.04"})


def run(engine: str, case: str, logs: Path, out: Path, spark: Any) -> Any:
    """The report of `case` on `engine`, its files written to `out/engine/case`."""
    name, log_format, _ = CASES[case]
    target = out / engine / case.replace(":", "")
    if (target / "report.json").exists():
        return json.loads((target / "report.json").read_text())
    report = scan([str(logs / name)], config=_config(log_format), out=target, now=NOW,
                  spark=spark if engine.startswith("spark") else None)
    return report.to_json()


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("out")


@pytest.fixture(scope="module")
def session(engine: str, request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("spark") if engine.startswith("spark") else None


@pytest.mark.parametrize("case", list(CASES))
def test_every_format_gives_the_same_answer_on_each_engine(
        engine: str, case: str, logs: Path, out: Path, session: Any) -> None:
    if engine == "spark-ranges" and case not in SPLIT:
        pytest.skip("loaded whole, as on spark")
    if engine == "spark" and case in SPLIT:
        pytest.skip("on spark-ranges: the load of a whole file is the other cases'")
    report = run(engine, case, logs, out, session)
    name, _, rejected = CASES[case]
    fmt = Path(name).suffix.lstrip(".") if ":" not in case else None
    [file] = report["inputs"]["files"]
    directives = HEADERS.get(fmt or "", "").count("\n")
    assert (file["lines"], file["rejected"]) == (REQUESTS + directives + rejected, rejected)
    assert file["requests"] == REQUESTS
    [entity] = report["entities"]
    assert (entity["entity"], entity["peak_24h_posts"], entity["damages_usd"]) == (
        "198.51.100.23", 1_050_000, "15750.00")
    assert entity["first_crossing_at"] == "2025-03-01T16:40:00Z"
    assert [(p["start"], p["posts"], p["requests"]) for p in entity["periods"]] == [
        ("2025-03-01T00:00:00Z", 1_050_000, 2_100)]
    assert {w["entity"]: w["peak_24h_posts"] for w in report["watchlist"]} == {
        "203.0.113.9": 40_000}
    if engine == "spark-ranges":
        assert RANGES[-1] > 10  # about 250 kB, in ranges of 20,000 bytes
    if engine != "duckdb":
        run("duckdb", case, logs, out, None)
        on_spark, on_duckdb = (out / e / case.replace(":", "") for e in (engine, "duckdb"))
        names = sorted(p.name for p in on_duckdb.iterdir())
        assert names == sorted(OUT_FILES if rejected else set(OUT_FILES) - {"rejects"})
        assert sorted(p.name for p in on_spark.iterdir()) == names
        for name in names:
            assert (on_spark / name).read_bytes() == (on_duckdb / name).read_bytes(), name
