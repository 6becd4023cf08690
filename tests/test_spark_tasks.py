"""What a Spark load task sends back (engine/spark_tasks.py), without Spark: the parts
packed a row an entity and file, and unpacked again on the executors as they were."""

from __future__ import annotations

import pyarrow as pa
import pytest

from scrapewatch.engine.duckdb import connect
from scrapewatch.engine.spark_tasks import _PACKED_SQL, PARTS, _pack, unpack
from scrapewatch.sql import insert_arrow

ROWS = [  # entity_kind, entity, sec, posts, requests, observed_posts, file_id, first, last
    ("api_key", "k-1", 1_741_082_400, 500, 1, 0, 0, 1, 1),
    ("api_key", "k-1", 1_741_082_401, 2**62, 3, 2**62, 0, 2, 9),
    ("api_key", "k-1", 1_741_082_401, 7, 1, 7, 1, 4, 4),  # the same second, another file
    ("client_ip", "2001:db8::/64", 0, 0, 1, 0, 0, 10, 10),
    ("user", "é", 253_402_300_799, 1, 1, 0, 2, 2**40, 2**40 + 5),
]


@pytest.mark.parametrize("batch_rows", [1, 2, 65_536])
def test_packed_parts_unpack_as_they_were(batch_rows: int) -> None:
    con = connect()
    insert_arrow(con, "activity_parts", pa.Table.from_pylist(
        [dict(zip(PARTS.names, row, strict=True)) for row in ROWS], PARTS))
    packed = [_pack(batch) for batch in con.sql(_PACKED_SQL).to_arrow_reader(batch_rows)]
    assert sum(len(batch) for batch in packed) == 4  # an entity and file a row
    totals = {(r["entity"], r["file_id"]): r["total_posts"]
              for batch in packed for r in batch.select(["entity", "file_id", "total_posts"])
              .to_pylist()}
    assert totals == {("k-1", 0): 500 + 2**62, ("k-1", 1): 7, ("2001:db8::/64", 0): 0,
                      ("é", 2): 1}
    # Spark hands the packed rows over in batches of its own: here, sliced
    sliced = [batch.slice(start, 1) for batch in packed for start in range(len(batch))]
    for batches in (packed, sliced):
        rows = [tuple(row.values()) for batch in unpack(iter(batches))
                for row in batch.to_pylist()]
        assert sorted(rows, key=repr) == sorted(ROWS, key=repr)
