"""Entity keys in order, and client addresses grouped into networks."""

from __future__ import annotations

import pyarrow as pa
import pytest

from scrapewatch.config import EntityConfig
from scrapewatch.entities import entity_sql
from scrapewatch.pipeline import connect
from scrapewatch.sql import Params, run

ROWS = [("k1", "alice", "192.0.2.10"), (None, "alice", "192.0.2.10"),
        (None, None, "192.0.2.10"), (None, None, None)]


def entities(config: EntityConfig, rows=ROWS) -> list[tuple[str | None, str | None]]:
    con = connect()
    con.register("r", pa.table({name: pa.array([r[i] for r in rows], pa.string())
                                for i, name in enumerate(("api_key", "user", "client_ip"))}))
    params = Params()
    kind, value = entity_sql(config, params)
    return [tuple(row) for row in run(con, f"SELECT {kind}, {value} FROM r", params.values)]


def test_first_non_empty_key_wins() -> None:
    assert entities(EntityConfig()) == [("api_key", "k1"), ("user", "alice"),
                                        ("client_ip", "192.0.2.10"), (None, None)]
    assert entities(EntityConfig(keys=("client_ip", "api_key"))) == [
        ("client_ip", "192.0.2.10"), ("client_ip", "192.0.2.10"),
        ("client_ip", "192.0.2.10"), (None, None)]


@pytest.mark.parametrize(("address", "v4", "v6", "expected"), [
    ("203.0.113.77", 24, 128, "203.0.113.0/24"),
    ("203.0.113.77", 32, 128, "203.0.113.77"),
    ("203.0.113.77", 20, 128, "203.0.112.0/20"),
    ("203.0.113.77", 0, 128, "0.0.0.0/0"),
    ("2001:db8:5::17", 32, 64, "2001:db8:5::/64"),
    ("2001:DB8:5:1:2:3:4:5", 32, 56, "2001:db8:5::/56"),
    ("2001:db8:5:1ff:2:3:4:5", 32, 60, "2001:db8:5:1f0::/60"),
    ("2001:db8::1", 32, 127, "2001:db8:0:0:0:0:0:0/127"),
    ("::1", 32, 64, "::/64"),
    ("::ffff:192.0.2.1", 24, 64, "::ffff:192.0.2.1"),   # not plain hex groups: kept whole
    ("2001:DB8::1", 32, 128, "2001:db8::1"),            # no grouping: lower case only
    ("monitoring-server", 24, 64, "monitoring-server"),  # a host name is kept
    ("256.1.1.1", 24, 64, "256.1.1.1"),                 # not an address: kept
    ("1::2::3", 24, 64, "1::2::3"),
])
def test_ip_prefix_grouping(address: str, v4: int, v6: int, expected: str) -> None:
    config = EntityConfig(keys=("client_ip",), ipv4_prefix=v4, ipv6_prefix=v6)
    assert entities(config, [(None, None, address)]) == [("client_ip", expected)]
