"""What a Spark load task sends back (engine/spark_tasks.py), without Spark: an entity's
posts a file, and the parts in compressed batches, unpacked on the executors as they
were, those of the candidates only."""

from __future__ import annotations

import pyarrow as pa
import pytest

from scrapewatch.engine import spark_tasks
from scrapewatch.engine.duckdb import connect
from scrapewatch.engine.spark_tasks import PARTS, _rows, line_shifts, unpack
from scrapewatch.sql import insert_arrow

ROWS = [  # entity_kind, entity, sec, posts, requests, observed_posts, file_id, first, last
    ("api_key", "k-1", 1_741_082_400, 500, 1, 0, 0, 1, 1),
    ("api_key", "k-1", 1_741_082_401, 2**62, 3, 2**62, 0, 2, 9),
    ("client_ip", "k-1", 1_741_082_401, 7, 1, 7, 0, 4, 4),  # another kind, the same name
    ("client_ip", "2001:db8::/64", 0, 0, 1, 0, 0, 10, 10),
    ("user", "é", 253_402_300_799, 1, 1, 0, 0, 2**40, 2**40 + 5),
]


@pytest.mark.parametrize("batch_rows", [1, 2, 65_536])
def test_loaded_parts_unpack_as_they_were(batch_rows: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spark_tasks, "BATCH_ROWS", batch_rows)
    con = connect()
    insert_arrow(con, "activity_parts", pa.Table.from_pylist(
        [dict(zip(PARTS.names, row, strict=True)) for row in ROWS], PARTS))
    loaded = pa.Table.from_batches(list(_rows(con, 0)))
    assert con.sql("SELECT count(*) FROM activity_parts").fetchall() == [(0,)]  # sent
    totals = loaded.filter(loaded["total_posts"].is_valid())
    assert sorted(tuple(r.values()) for r in totals.select(
        ["entity_kind", "entity", "file_id", "total_posts"]).to_pylist()) == [
        ("api_key", "k-1", 0, 500 + 2**62), ("client_ip", "2001:db8::/64", 0, 0),
        ("client_ip", "k-1", 0, 7), ("user", "é", 0, 1)]
    packed = loaded.filter(loaded["parts"].is_valid())
    assert len(packed) == -(-len(ROWS) // batch_rows)
    # Spark hands the rows over in batches of its own: here, one a row too
    for batches in (packed.to_batches(), packed.to_batches(max_chunksize=1)):
        rows = [tuple(r.values()) for b in unpack(None, {}, iter(batches)) for r in b.to_pylist()]
        assert sorted(rows, key=repr) == sorted(ROWS, key=repr)
    candidates = {"api_key": pa.array(["k-1"]), "user": pa.array(["é", "x"])}
    rows = [tuple(r.values()) for b in unpack(candidates, {}, iter(packed.to_batches()))
            for r in b.to_pylist()]
    assert sorted(rows, key=repr) == sorted([ROWS[0], ROWS[1], ROWS[4]], key=repr)


def test_a_range_numbers_its_lines_after_the_lines_of_the_ranges_before_it() -> None:
    files = [{"file_id": 0, "start": 0, "lines": 5}, {"file_id": 1, "start": 0, "lines": 7},
             {"file_id": 1, "start": 700, "lines": 3}, {"file_id": 1, "start": 900,
                                                         "lines": 4},
             {"file_id": 2, "start": 0, "lines": 2}]
    assert line_shifts(files) == {(1, 700): 7, (1, 900): 10}
    con = connect()
    insert_arrow(con, "activity_parts", pa.Table.from_pylist(
        [dict(zip(PARTS.names, row, strict=True)) for row in ROWS[:2]], PARTS))
    packed = pa.Table.from_batches(list(_rows(con, 0, 700)))
    packed = packed.filter(packed["parts"].is_valid())
    assert packed["start"].to_pylist() == [700]
    moved = [(r["first_line"], r["last_line"]) for b in unpack(None, {(0, 700): 7}, iter(
        packed.to_batches())) for r in b.to_pylist()]
    assert sorted(moved) == [(8, 8), (9, 16)]
