"""The Spark engine gives DuckDB's report, field by field, under every policy.

The session is conftest's (2 cores, no UI, few shuffle partitions, UTC); every format
on both engines is tests/test_engines.py. The logs here: the seeded generator's planted
scrapers in combined (gzip) and JSON lines, and files with the cases detection and
entities get wrong: IPv6 networks, X-Forwarded-For behind trusted proxies, ports,
offsets, epoch times, bad and blank lines, organisations, an allow-list, and a period of
exactly 1,000,001 posts, whose prorata damages ($15,000.015) must round to the same cent
on both engines.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.generate import generate
from scrapewatch.config import Config, EntityConfig, PostsConfig, load_config
from scrapewatch.pipeline import scan
from scrapewatch.posts import BUILTIN_RULES, PostsRule
from scrapewatch.reporting.model import Report

# py4j leaves its sockets to the garbage collector
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning",
                                        "ignore::pytest.PytestUnraisableExceptionWarning")

DAY = 86_400
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _combined(ip: str, when: datetime, target: str, status: int = 200, xff: str = "-") -> str:
    stamp = when.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - - [{stamp}] "GET {target} HTTP/1.1" {status} 512 "-" "bot/1.0" "{xff}"'


def write_edge_cases(folder: Path) -> None:
    """Files in three formats, each with its awkward lines."""
    hour = 3600
    at = lambda s: datetime.fromtimestamp(T0.timestamp() + s, UTC)  # noqa: E731
    lines = [
        # one /64 network from two addresses: 1,200,000 posts within a day
        _combined("2001:db8:1::5", at(hour), "/bulk?n=600000"),
        _combined("2001:DB8:1::6", at(5 * hour), "/bulk?n=600000"),
        # behind a trusted proxy: the client is the last untrusted address
        _combined("10.0.0.5", at(2 * hour), "/bulk?n=700000", xff="198.51.100.7, 10.0.0.9"),
        _combined("10.0.0.5", at(3 * hour), "/bulk?n=400000", xff="203.0.113.1, 198.51.100.7"),
        # not counted: 429; an ids list with an encoded comma and an empty item
        _combined("198.51.100.7", at(4 * hour), "/bulk?n=900000", status=429),
        _combined("192.0.2.44", at(6 * hour), "/2/tweets?ids=1,2%2C3,,4"),
        _combined("2001:db8:abcd::1", at(7 * hour), "/bulk?n=1000", xff="192.0.2.200:8080"),
        "",
        "this is not a log line",
        '192.0.2.1 - - [31/Foo/2025:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "x"',
    ]
    with gzip.open(folder / "edge.log.gz", "wt") as out:
        out.write("\r\n".join(lines) + "\n")
    records = [
        {"ts": int((T0.timestamp() + DAY) * 1000), "api_key": "k-edge", "posts": 500_000,
         "client": {"ip": "192.0.2.9:5555"}, "path": "/2/tweets/search/all"},
        {"timestamp": "2025-03-02T06:00:00+02:00", "api_key": "k-edge", "result_count": 500_001,
         "path": "/2/tweets/search/all"},
        {"ts": "2025-03-02T23:59:59Z", "api_key": "k-edge", "posts": 1, "status": 500},
        {"ts": "2025-03-03T00:00:00Z", "user": "u-1", "path": "/2/tweets/search/recent",
         "query": "max_results=100", "status": "200"},
        {"ts": "yesterday", "api_key": "k-bad"},
        {"api_key": "k-no-time"},
    ]
    text = "\n".join(json.dumps(r) for r in records) + "\n[1, 2]\n{broken\n\n"
    (folder / "edge.jsonl").write_text("\ufeff" + text)
    starts = [T0.timestamp() + 3 * DAY + i * 600 for i in range(12)]
    pq.write_table(pa.table({
        "timestamp": pa.array([int(s * 1e6) for s in starts], pa.timestamp("us", tz="UTC")),
        "api_key": ["k-parquet"] * 12,
        "path": ["/2/tweets/search/all"] * 12,
        "status": pa.array([200] * 11 + [404], pa.int32()),
        "result_count": pa.array([100_000] * 12, pa.int64())}), folder / "edge.parquet")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("logs")
    generate(folder / "access.log.gz", lines=60_000, fmt="combined", seed=5, start=T0, days=4)
    generate(folder / "api.jsonl", lines=15_000, fmt="jsonl", seed=6, start=T0, days=4)
    write_edge_cases(folder)
    return folder


def config(organisations: Path | None = None, **policy: Any) -> Config:
    """The test's config: IPv6 networks, trusted proxies, a rule for /bulk?n=, the
    `policy` given and, with `organisations`, that mapping and an allow-list."""
    bulk = PostsRule(path=r"^/bulk$", param="n", param_max=1_000_000)
    base = load_config(overrides={f"policy.{k}": v for k, v in policy.items()})
    entity = EntityConfig(ipv6_prefix=64, trusted_proxies=("10.0.0.0/8", "2001:db8:abcd::/48"))
    if organisations:
        organisations.write_text("key,cidr,org\nk-parquet,,acme\n,192.0.2.0/24,acme\n")
        entity = replace(entity, organisations=str(organisations), allow=("198.51.100.7",))
    return replace(base, posts=PostsConfig(rules=(*BUILTIN_RULES, bulk)), entity=entity)


def both(spark: Any, logs: Path, cfg: Config, tmp_path: Path, **options: Any
         ) -> tuple[Report, Report]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    duck = scan([str(logs)], config=cfg, out=tmp_path / "duckdb", now=now, **options)
    on_spark = scan([str(logs)], config=cfg, out=tmp_path / "spark", now=now, spark=spark,
                    **options)
    return duck, on_spark


def assert_same_outputs(folder: Path) -> None:
    for name in ("report.json", "manifest.json", "entities.csv", "periods.csv", "rejects",
                 "report.html", "entities.parquet", "periods.parquet"):
        spark, duckdb = (folder / engine / name for engine in ("spark", "duckdb"))
        assert spark.read_bytes() == duckdb.read_bytes(), name


@pytest.mark.parametrize("policy", [
    {"periods": "greedy"},
    {"periods": "calendar", "timezone": "America/New_York", "rounding": "prorata",
     "organisations": True},
    {"periods": "max", "rounding": "started", "charge": "excess"},
    {"periods": "peak", "rounding": "prorata"},
], ids=lambda p: p["periods"])
def test_spark_report_equals_duckdb_report(spark: Any, logs: Path, tmp_path: Path,
                                           policy: dict[str, Any]) -> None:
    policy = dict(policy)
    orgs = tmp_path / "orgs.csv" if policy.pop("organisations", False) else None
    duck, on_spark = both(spark, logs, config(orgs, **policy), tmp_path)
    assert on_spark.to_json() == duck.to_json()
    assert_same_outputs(tmp_path)
    report = duck.to_json()
    assert report["inputs"]["lines"] == 75_000 + 10 + 9 + 12
    assert report["inputs"]["rejected"] == 6  # 2 in edge.log.gz, 4 in edge.jsonl
    entities = {e["entity"]: e for e in report["entities"]}
    assert {"2001:db8:1::/64", "k-edge"} <= set(entities)
    if orgs:  # the allow-listed proxy client is set apart; acme merges its members
        assert "198.51.100.7" not in entities
        assert [e["entity"] for e in report["allowed"]] == ["198.51.100.7"]
        assert "acme" in {e["entity"] for e in report["entities"] + report["watchlist"]}
    else:
        assert "198.51.100.7" in entities
    if policy["periods"] == "peak":
        # exactly 1,000,001 posts: $15,000.015, half up to the cent on both engines
        assert [p["posts"] for p in entities["k-edge"]["periods"]] == [1_000_001]
        assert entities["k-edge"]["damages_usd"] == "15000.02"


def test_past_the_most_candidates_every_part_is_unpacked(
        spark: Any, logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scrapewatch.engine import spark as spark_engine
    monkeypatch.setattr(spark_engine, "CANDIDATES_MAX", 1)  # the logs have more
    duck, on_spark = both(spark, logs, config(periods="greedy"), tmp_path)
    assert on_spark.to_json() == duck.to_json()
    assert_same_outputs(tmp_path)


def test_a_window_counts_the_same_activity_on_spark(spark: Any, logs: Path, tmp_path: Path
                                                   ) -> None:
    whole = scan([str(logs)], config=config(periods="greedy"))
    since = datetime.fromtimestamp(whole.first_request_at + 3 * 3600, UTC)
    duck, on_spark = both(spark, logs, config(periods="greedy"), tmp_path, since=since)
    assert on_spark.to_json() == duck.to_json()
    assert_same_outputs(tmp_path)
    assert duck.first_request_at == whole.first_request_at + 3 * 3600
    assert duck.to_json()["totals"] != whole.to_json()["totals"]


def test_a_stray_file_is_skipped_alike_on_spark(spark: Any, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    write_edge_cases(folder)
    (folder / "README.txt").write_text("not a log\n")
    cfg = config(periods="greedy")  # the edge cases alone: 6 of 31 lines rejected
    cfg = replace(cfg, input=replace(cfg.input, max_rejected_share=Decimal(1)))
    duck, on_spark = both(spark, folder, cfg, tmp_path)
    assert on_spark.to_json() == duck.to_json()
    assert_same_outputs(tmp_path)
    assert [(s.path, s.reason[:32]) for s in duck.skipped] == [
        (str(folder / "README.txt"), "not a log format scrapewatch kno")]


def test_report_over_a_store_on_spark(spark: Any, logs: Path, tmp_path: Path) -> None:
    from scrapewatch.store import ingest, report

    cfg = config(periods="greedy")
    store = tmp_path / "store.db"
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ingest(store, [str(logs)], config=cfg, now=now)
    duck = report(store, config=cfg, now=now)
    on_spark = report(store, config=cfg, now=now, spark=spark)
    assert on_spark.to_json() == duck.to_json()
    assert on_spark.findings


def test_cli_scans_a_uri_on_spark(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                  ) -> None:
    from click.testing import CliRunner

    from scrapewatch.cli import cli

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    sample = Path(__file__).parent.parent / "sample_logs" / "api-gateway.jsonl"
    runner = CliRunner()
    local = runner.invoke(cli, ["scan", str(sample), "--format", "jsonl", "--output", "json"])
    uri = runner.invoke(cli, ["scan", sample.as_uri(), "--format", "jsonl", "--engine", "spark",
                              "--spark-master", "local[2]", "--output", "json"])
    assert (local.exit_code, uri.exit_code) == (0, 0), uri.output
    want, got = json.loads(local.stdout), json.loads(uri.stdout)
    # Spark names the file by its URI, and quotes no line of a file it alone can read
    assert got["inputs"]["files"][0]["path"] == f"file:{sample}"  # as Hadoop spells it
    for doc in (want, got):
        doc["inputs"]["files"][0]["path"] = "api-gateway.jsonl"
        for entity in doc["entities"]:
            for period in entity["periods"]:
                for evidence in period["evidence"]:
                    evidence["file"] = "api-gateway.jsonl"
                    evidence["samples"] = []
    assert got == want
    assert [e["damages_usd"] for e in got["entities"]] == ["45000.00"]


def test_copies_are_told_from_the_loads_on_spark(spark: Any, tmp_path: Path) -> None:
    text = "".join(_combined("192.0.2.1", T0 + timedelta(minutes=i), "/2/tweets/search/all")
                   + "\n" for i in range(3))
    (tmp_path / "access.log").write_text(text)
    (tmp_path / "access.log.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "other.log").write_text(text.replace("192.0.2.1", "192.0.2.2"))
    (tmp_path / "empty.log").write_text("")
    (tmp_path / "empty-too.log").write_text("")
    reports = [scan([str(tmp_path)], spark=engine) for engine in (None, spark)]
    for report in reports:
        assert [Path(f.path).name for f in report.files] == [
            "access.log", "empty-too.log", "empty.log", "other.log"]
        assert [(Path(c.path).name, Path(c.duplicate_of).name, c.reason)
                for c in report.duplicates] == [("access.log.gz", "access.log", "same content")]
        assert report.lines == 6
    assert reports[0].to_json() == reports[1].to_json() | {
        "generated_at": reports[0].to_json()["generated_at"]}


def test_a_file_an_executor_cannot_read_is_the_error_duckdb_gives(spark: Any, tmp_path: Path
                                                                  ) -> None:
    from scrapewatch.errors import InputError

    good = _combined("192.0.2.1", T0, "/") + "\n"
    (tmp_path / "a.log").write_text(good)
    (tmp_path / "b.log.gz").write_bytes(gzip.compress(good.encode() * 1000)[:-20])
    errors = []
    for engine in (None, spark):
        with pytest.raises(InputError) as caught:
            scan([str(tmp_path)], spark=engine)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"{tmp_path / 'b.log.gz'}: ")


def test_a_uri_spark_cannot_list_is_an_input_error(spark: Any, tmp_path: Path) -> None:
    from scrapewatch.errors import InputError

    missing = (tmp_path / "nowhere").as_uri()
    with pytest.raises(InputError, match=r"nowhere: Spark cannot list it: \[PATH_NOT_FOUND\] "
                                         r"Path does not exist: file:"):
        scan([missing], spark=spark)


def test_no_input_allowed_empty_gives_the_empty_report_on_spark(spark: Any, tmp_path: Path
                                                                ) -> None:
    allow = load_config(overrides={"input.allow_empty": True})
    reports = [scan([str(tmp_path)], config=allow, spark=engine).to_json()
               for engine in (None, spark)]
    assert reports[1] == reports[0] | {"generated_at": reports[1]["generated_at"]}
    assert (reports[1]["inputs"]["files"], reports[1]["entities"]) == ([], [])


def test_the_first_file_that_cannot_be_read_is_the_error_with_ranges_too(
        spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver sniffs a large file to cut it in ranges before any task runs: its
    error must still come after an earlier file's, as on DuckDB."""
    from scrapewatch.engine import spark_tasks
    from scrapewatch.errors import InputError

    monkeypatch.setattr(spark_tasks, "SPLIT_BYTES", 1000)
    good = _combined("192.0.2.1", T0, "/") + "\n"
    (tmp_path / "a.log.gz").write_bytes(gzip.compress(good.encode() * 1000)[:-20])
    (tmp_path / "b.txt").write_text("dear diary\n" * 500)  # no format: cut in ranges
    errors = []
    for engine in (None, spark):
        with pytest.raises(InputError) as caught:
            scan([str(tmp_path / "a.log.gz"), str(tmp_path / "b.txt")], spark=engine)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"{tmp_path / 'a.log.gz'}: ")


def test_ranges_number_their_rejects_and_quoted_lines_as_the_whole_file(
        spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each range numbers its lines from 1; the driver moves its rejects, line offsets
    and evidence by the lines of the ranges before it."""
    from scrapewatch.engine import spark as spark_engine
    from scrapewatch.engine import spark_tasks

    monkeypatch.setattr(spark_tasks, "SPLIT_BYTES", 40_000)
    monkeypatch.setattr(spark_engine, "_cores", lambda session: 16)
    lines = [f"not a log line {i}" if i % 1000 == 999 else
             _combined("198.51.100.23", T0 + timedelta(seconds=10 * i), "/bulk?n=200")
             for i in range(6_000)]  # 1,198,800 posts in 17 hours; past 2 line marks
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "big.log").write_text("\n".join(lines) + "\n")
    tasks = []
    monkeypatch.setattr(spark_engine, "load_tasks", lambda *a: tasks.append(
        spark_tasks.load_tasks(*a)) or tasks[-1])
    duck, on_spark = both(spark, tmp_path / "logs", config(), tmp_path)
    assert len(tasks[0][0]) > 8
    assert on_spark.to_json() == duck.to_json()
    assert_same_outputs(tmp_path)
    rejects = (tmp_path / "spark" / "rejects").read_text()
    assert [int(line.split(",")[1]) for line in rejects.splitlines()[1:]] == [
        1000, 2000, 3000, 4000, 5000, 6000]
    evidence = duck.to_json()["entities"][0]["periods"][0]["evidence"][0]
    assert (evidence["first_line"], evidence["last_line"]) == (1, 5999)


def test_keep_requests_is_refused_on_spark(spark: Any) -> None:
    from scrapewatch.errors import ConfigError

    with pytest.raises(ConfigError, match="keep_requests is the DuckDB engine's"):
        scan(["sample_logs"], keep_requests=True, spark=spark)
