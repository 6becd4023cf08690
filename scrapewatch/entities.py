"""The entity of a request, as a SQL expression: the first non-empty key wins.

Client addresses may be grouped into networks (`entity.ipv4_prefix`, `ipv6_prefix`), and
behind trusted proxies taken from X-Forwarded-For (`entity.trusted_proxies`).
DuckDB's inet extension cannot be loaded everywhere, so the macros below do the
arithmetic on integers: IPv4 as one 32-bit number, IPv6 as eight 16-bit groups.
"""

from __future__ import annotations

import ipaddress

import duckdb

from scrapewatch.config import EntityConfig
from scrapewatch.sql import Params, quote_ident, run

# Macros the entity expression relies on; created once per connection.
IP_MACROS = r"""
CREATE OR REPLACE MACRO sw_is_ipv4(ip) AS regexp_full_match(ip,
    '((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])');
CREATE OR REPLACE MACRO sw_ipv4_int(ip) AS
    (split_part(ip, '.', 1)::BIGINT << 24) + (split_part(ip, '.', 2)::BIGINT << 16)
    + (split_part(ip, '.', 3)::BIGINT << 8) + split_part(ip, '.', 4)::BIGINT;
CREATE OR REPLACE MACRO sw_ipv4_net(ip, p) AS concat_ws('.',
    ((sw_ipv4_int(ip) >> (32 - p)) << (32 - p) >> 24) & 255,
    ((sw_ipv4_int(ip) >> (32 - p)) << (32 - p) >> 16) & 255,
    ((sw_ipv4_int(ip) >> (32 - p)) << (32 - p) >> 8) & 255,
    ((sw_ipv4_int(ip) >> (32 - p)) << (32 - p)) & 255) || '/' || p;
CREATE OR REPLACE MACRO sw_split6(s) AS
    CASE WHEN s = '' THEN []::VARCHAR[] ELSE string_split(s, ':') END;
-- The eight groups of an IPv6 address, '::' expanded.
CREATE OR REPLACE MACRO sw_ipv6_groups(ip) AS
    CASE WHEN NOT contains(ip, '::') THEN string_split(ip, ':')
    ELSE list_concat(sw_split6(split_part(ip, '::', 1)),
                     list_transform(range(8 - len(sw_split6(split_part(ip, '::', 1)))
                                          - len(sw_split6(split_part(ip, '::', 2)))),
                                    lambda x: '0'),
                     sw_split6(split_part(ip, '::', 2))) END;
CREATE OR REPLACE MACRO sw_is_ipv6(ip) AS
    regexp_full_match(ip, '[0-9A-Fa-f:]{2,39}')
    AND length(ip) - length(replace(ip, '::', '')) <= 2
    AND len(sw_ipv6_groups(ip)) = 8
    AND list_bool_and(list_transform(sw_ipv6_groups(ip),
                                     lambda g: regexp_full_match(g, '[0-9A-Fa-f]{1,4}')));
-- The /p network of an IPv6 address: its first ceil(p/16) groups, masked; then, below
-- /113, trailing zero groups folded into '::' (2001:db8:5::/64).
CREATE OR REPLACE MACRO sw_ipv6_masked(ip, p) AS array_to_string(list_transform(
        sw_ipv6_groups(ip)[1:(p + 15) // 16],
        lambda g, i: printf('%x', (('0x' || g)::INTEGER >> (16 - least(16, p - 16 * (i - 1))))
                                  << (16 - least(16, p - 16 * (i - 1))))), ':');
-- An address without its port: 192.0.2.1:443 and [2001:db8::1]:443 (load balancers
-- log the client's port); a bare IPv6 address has none. Empty: NULL.
CREATE OR REPLACE MACRO sw_without_port(a) AS
    CASE WHEN NOT contains(a, ':') THEN nullif(a, '')
         WHEN regexp_full_match(a, '[0-9.]+:[0-9]+') THEN split_part(a, ':', 1)
         WHEN starts_with(a, '[') THEN nullif(regexp_extract(a, '^\[([^\]]*)\]', 1), '')
         ELSE a END;
-- An IPv6 address as one 128-bit number.
CREATE OR REPLACE MACRO sw_ipv6_int(ip) AS list_reduce(
    list_transform(sw_ipv6_groups(lower(ip)), lambda g: ('0x' || g)::INTEGER::UHUGEINT),
    lambda total, g: total * 65536 + g);
CREATE OR REPLACE MACRO sw_ipv6_net(ip, p) AS
    CASE WHEN p > 112 THEN sw_ipv6_masked(ip, p)
         ELSE regexp_replace(sw_ipv6_masked(ip, p), '(^|:)0(:0)*$', '') || '::' END
    || '/' || p;
"""


def create_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Define the IP macros on `con` (idempotent)."""
    run(con, IP_MACROS)


def entity_sql(config: EntityConfig, params: Params) -> tuple[str, str]:
    """SQL expressions (entity_kind, entity) over `api_key`, `user` and `client_ip`.

    Empty fields must already be NULL (the parsers map `''` and `-` to NULL).
    """
    values = {
        "api_key": quote_ident("api_key"),
        "user": quote_ident("user"),
        "client_ip": _client_sql(config, params),
    }
    kind = " ".join(f"WHEN {quote_ident(key)} IS NOT NULL THEN {params.bind(key)}"
                    for key in config.keys)
    value = ", ".join(values[key] for key in config.keys)
    return f"(CASE {kind} END)", f"coalesce({value})"


def _client_sql(config: EntityConfig, params: Params) -> str:
    """A client address as an entity: its network when grouping applies, else itself.

    Only the branches the prefixes need are written: the IPv6 macros take DuckDB
    milliseconds to plan, paid once per block.
    """
    client = "lower(client_ip)"
    if config.ipv6_prefix < 128:
        client = (f"CASE WHEN sw_is_ipv6(client_ip) THEN sw_ipv6_net(lower(client_ip), "
                  f"{params.bind(config.ipv6_prefix)}) ELSE {client} END")
    if config.ipv4_prefix < 32:
        client = (f"CASE WHEN sw_is_ipv4(client_ip) THEN sw_ipv4_net(client_ip, "
                  f"{params.bind(config.ipv4_prefix)}) ELSE {client} END")
    return client


def client_ip_sql(config: EntityConfig, params: Params) -> str | None:
    """SQL over `client_ip` and `xff` for the client address, or None when no proxy is
    trusted (the client is then the peer, `client_ip`).

    A request from a trusted proxy that carries X-Forwarded-For comes from the last
    address in it that is not a trusted proxy: the one the trusted chain received it
    from (the first address, when every one is trusted). Addresses to its left were
    written by the client and prove nothing.
    """
    if not config.trusted_proxies:
        return None
    hops = ("list_reverse(list_filter(list_transform(string_split(xff, ','), "
            "lambda h: sw_without_port(trim(h))), lambda h: h IS NOT NULL))")
    return f"""CASE WHEN xff IS NOT NULL AND {_trusted_sql('client_ip', config, params)}
        THEN coalesce(list_filter({hops}, lambda a: NOT {_trusted_sql('a', config, params)})[1],
                      {hops}[-1], client_ip)
        ELSE client_ip END"""


def _trusted_sql(address: str, config: EntityConfig, params: Params) -> str:
    """SQL: is `address` in one of the trusted proxy networks?"""
    tests = []
    for proxy in config.trusted_proxies:
        net = ipaddress.ip_network(proxy, strict=False)
        low, high = params.bind(str(int(net[0]))), params.bind(str(int(net[-1])))
        # CASE, not AND: the number of an address of the other version cannot be cast
        if net.version == 4:
            tests.append(f"CASE WHEN sw_is_ipv4({address}) THEN sw_ipv4_int({address}) "
                         f"BETWEEN {low}::BIGINT AND {high}::BIGINT ELSE false END")
        else:
            tests.append(f"CASE WHEN sw_is_ipv6({address}) THEN sw_ipv6_int({address}) "
                         f"BETWEEN {low}::UHUGEINT AND {high}::UHUGEINT ELSE false END")
    return "(" + " OR ".join(tests) + ")"
