"""Entity keys in order, and client addresses grouped into networks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from helpers import load

from scrapewatch.config import EntityConfig, load_config
from scrapewatch.engine.duckdb import connect
from scrapewatch.entities import entity_sql
from scrapewatch.errors import ConfigError
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


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path) -> None:
    """The client is the last address the trusted chain did not add; a client's own
    entries to the left of it (forgeable) are ignored."""
    lines = [
        # peer 10.0.0.5 is trusted: the client is 198.51.100.7, not the forged 1.1.1.1
        '10.0.0.5 - - [15/Nov/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" '
        '"1.1.1.1, 198.51.100.7, 10.0.0.9"',
        # peer 203.0.113.1 is not trusted: its header proves nothing
        '203.0.113.1 - - [15/Nov/2024:10:00:01 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" '
        '"198.51.100.8"',
        # trusted IPv6 peer, every hop trusted: the first address is the client
        '2001:db8::1 - - [15/Nov/2024:10:00:02 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" '
        '"10.0.0.7, 10.0.0.8"',
        # trusted peer without the header: the peer itself
        '10.0.0.5 - - [15/Nov/2024:10:00:03 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"',
        # an escaped quote cannot cut the list short; ports and empty hops are dropped
        '10.0.0.5 - - [15/Nov/2024:10:00:04 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" '
        '"6.6.6.6\\", 203.0.113.9"',
        '10.0.0.5 - - [15/Nov/2024:10:00:05 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" '
        '"6.6.6.6:1234, 10.0.0.9:80,"',
    ]
    path = tmp_path / "xff.log"
    path.write_text("\n".join(lines) + "\n")
    trusting = load_config(overrides={"entity.trusted_proxies": "10.0.0.0/8, 2001:db8::/32"})
    assert [r[3] for r in load(path, config=trusting)[1]] == [
        "198.51.100.7", "203.0.113.1", "10.0.0.7", "10.0.0.5", "203.0.113.9", "6.6.6.6"]
    assert [r[3] for r in load(path)[1]] == [
        "10.0.0.5", "203.0.113.1", "2001:db8::1", "10.0.0.5", "10.0.0.5", "10.0.0.5"]


def test_trusted_proxies_must_be_networks() -> None:
    with pytest.raises(ConfigError, match=r"'10\.0\.0\.0/33' is not an address or a CIDR"):
        load_config(overrides={"entity.trusted_proxies": "10.0.0.0/33"})
