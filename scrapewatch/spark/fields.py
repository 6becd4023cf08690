"""Entity, posts and counting of a request as Spark SQL: the rules of entities.py and
posts.py (whose DuckDB macros and list lambdas Spark does not have), spelled with
Spark's functions. Values are written as literals by `Literals`, never pasted.
"""

from __future__ import annotations

import ipaddress

from scrapewatch.config import EntityConfig, PostsConfig
from scrapewatch.posts import parse_status_set
from scrapewatch.sql import Params


class Literals(Params):
    """Values for Spark SQL, written in place as literals rather than bound: Spark
    Connect loses the arguments of a parameterised query once it is part of a view. A
    string is written as its UTF-8 bytes in hex, which no setting of Spark's string
    escapes can misread."""

    def bind(self, value: object) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, int):
            return str(int(value))
        if isinstance(value, str):
            return f"decode(unhex('{value.encode().hex()}'), 'UTF-8')"
        raise TypeError(f"no Spark SQL literal for {type(value).__name__}")


_IPV4 = (r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])[.]){3}"
         r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$")


_HOST_PORT = r"^[0-9.]+:[0-9]+$"
_BRACKETED = r"^\[([^\]]*)\]"  # [2001:db8::1]:443


def without_port(a: str, params: Params) -> str:
    """An address without its port (192.0.2.1:443, [2001:db8::1]:443); empty: NULL."""
    return f"""(CASE WHEN NOT contains({a}, ':') THEN nullif({a}, '')
        WHEN {a} RLIKE {params.bind(_HOST_PORT)} THEN split_part({a}, ':', 1)
        WHEN startswith({a}, '[')
            THEN nullif(regexp_extract({a}, {params.bind(_BRACKETED)}, 1), '')
        ELSE {a} END)"""


def _is_ipv4(ip: str) -> str:
    return f"coalesce({ip} RLIKE '{_IPV4}', false)"


def _ipv4_int(ip: str) -> str:
    return " + ".join(f"shiftleft(CAST(split_part({ip}, '.', {i + 1}) AS BIGINT), {24 - 8 * i})"
                      for i in range(4))


def _split6(s: str) -> str:
    return f"(CASE WHEN {s} = '' THEN CAST(array() AS ARRAY<STRING>) ELSE split({s}, ':') END)"


def _ipv6_groups(ip: str) -> str:
    """The eight groups of an IPv6 address, '::' expanded."""
    left, right = _split6(f"split_part({ip}, '::', 1)"), _split6(f"split_part({ip}, '::', 2)")
    return f"""(CASE WHEN NOT contains({ip}, '::') THEN split({ip}, ':')
        ELSE concat({left}, array_repeat('0', 8 - size({left}) - size({right})), {right}) END)"""


def _is_ipv6(ip: str) -> str:
    groups = _ipv6_groups(ip)
    return f"""coalesce({ip} RLIKE '^[0-9A-Fa-f:]{{2,39}}$'
        AND length({ip}) - length(replace({ip}, '::', '')) <= 2
        AND size({groups}) = 8
        AND forall({groups}, g -> g RLIKE '^[0-9A-Fa-f]{{1,4}}$'), false)"""


def _ipv4_net(ip: str, prefix: int) -> str:
    keep = 32 - prefix
    net = f"shiftleft(shiftright({_ipv4_int(ip)}, {keep}), {keep})"
    return (f"concat_ws('.', {', '.join(f'shiftright({net}, {s}) & 255' for s in (24, 16, 8, 0))})"
            f" || '/{prefix}'")


def _ipv6_net(ip: str, prefix: int) -> str:
    """The /prefix network of an IPv6 address, as entities.sw_ipv6_net writes it."""
    masked = f"""array_join(transform(slice({_ipv6_groups(ip)}, 1, {(prefix + 15) // 16}),
        (g, i) -> lower(hex(shiftleft(shiftright(CAST(conv(g, 16, 10) AS INT),
                                                 16 - least(16, {prefix} - 16 * i)),
                                      16 - least(16, {prefix} - 16 * i))))), ':')"""
    if prefix <= 112:
        masked = f"regexp_replace({masked}, '(^|:)0(:0)*$', '') || '::'"
    return f"{masked} || '/{prefix}'"


def entity_sql(config: EntityConfig, params: Params) -> tuple[str, str]:
    """Spark SQL (entity_kind, entity) over `api_key`, `user` and `client_ip`, as
    entities.entity_sql decides them."""
    client = "lower(client_ip)"
    if config.ipv6_prefix < 128:
        client = (f"CASE WHEN {_is_ipv6('client_ip')} "
                  f"THEN {_ipv6_net('lower(client_ip)', config.ipv6_prefix)} ELSE {client} END")
    if config.ipv4_prefix < 32:
        client = (f"CASE WHEN {_is_ipv4('client_ip')} "
                  f"THEN {_ipv4_net('client_ip', config.ipv4_prefix)} ELSE {client} END")
    names = {"api_key": "api_key", "user": "`user`", "client_ip": "client_ip"}
    values = {**names, "client_ip": f"({client})"}
    kind = " ".join(f"WHEN {names[key]} IS NOT NULL THEN {params.bind(key)}"
                    for key in config.keys)
    return f"(CASE {kind} END)", f"coalesce({', '.join(values[key] for key in config.keys)})"


def _ipv6_hex(ip: str) -> str:
    """An IPv6 address as 32 hex digits: its order is the addresses' order."""
    return f"array_join(transform({_ipv6_groups(f'lower({ip})')}, g -> lpad(g, 4, '0')), '')"


def _trusted(address: str, config: EntityConfig, params: Params) -> str:
    tests = []
    for proxy in config.trusted_proxies:
        net = ipaddress.ip_network(proxy, strict=False)
        if net.version == 4:
            low, high = params.bind(int(net[0])), params.bind(int(net[-1]))
            tests.append(f"CASE WHEN {_is_ipv4(address)} THEN {_ipv4_int(address)} "
                         f"BETWEEN {low} AND {high} ELSE false END")
        else:
            low, high = (params.bind(f"{int(a):032x}") for a in (net[0], net[-1]))
            tests.append(f"CASE WHEN {_is_ipv6(address)} THEN {_ipv6_hex(address)} "
                         f"BETWEEN {low} AND {high} ELSE false END")
    return "(" + " OR ".join(tests) + ")"


def client_ip_sql(config: EntityConfig, params: Params) -> str | None:
    """The client behind trusted proxies, as entities.client_ip_sql decides it."""
    if not config.trusted_proxies:
        return None
    hops = (f"reverse(filter(transform(split(xff, ','), h -> {without_port('trim(h)', params)}), "
            "h -> h IS NOT NULL))")
    return f"""CASE WHEN xff IS NOT NULL AND {_trusted('client_ip', config, params)}
        THEN coalesce(element_at(filter({hops}, a -> NOT {_trusted('a', config, params)}), 1),
                      element_at({hops}, -1), client_ip)
        ELSE client_ip END"""


def counted_sql(spec: str, params: Params) -> str:
    """Does a request count, by its status (posts.counted_sql)."""
    terms = [f"status BETWEEN {params.bind(low)} AND {params.bind(high)}"
             for low, high in parse_status_set(spec)]
    return f"(status IS NULL OR {' OR '.join(terms)})"


def posts_sql(config: PostsConfig, params: Params) -> tuple[str, str]:
    """Spark SQL (rule, posts) as posts.posts_sql decides them."""
    rules = config.rules
    fallback = params.bind(config.default)
    if not rules:
        return "CAST(NULL AS INT)", f"coalesce(posts, {fallback})"
    any_rule = params.bind("|".join(f"(?:{r.path})" for r in rules))
    which = " ".join(f"WHEN path RLIKE {params.bind(r.path)} THEN {i}"
                     for i, r in enumerate(rules, 1))
    rule = f"CASE WHEN coalesce(path RLIKE {any_rule}, false) THEN CASE {which} END END"

    def setting(values: list[object], kind: str) -> str:
        items = ", ".join(f"CAST({'NULL' if v is None else params.bind(v)} AS {kind})"
                          for v in values)
        return f"element_at(array({items}), rule)"

    def value(name: str) -> str:
        return f"nullif(split_part(split_part('&' || query, '&' || {name} || '=', 2), '&', 1), '')"

    constant = setting([r.posts for r in rules], "BIGINT")
    list_param = setting([r.list_param for r in rules], "STRING")
    items = f"replace(replace({value(list_param)}, '%2C', ','), '%2c', ',')"
    size = (f"greatest(0, coalesce(try_cast({value(setting([r.param for r in rules], 'STRING'))}"
            f" AS BIGINT), {setting([r.param_default for r in rules], 'BIGINT')}))")
    posts = f"""CASE WHEN posts IS NOT NULL THEN posts
        WHEN rule IS NULL THEN {fallback}
        WHEN {constant} IS NOT NULL THEN {constant}
        WHEN {list_param} IS NOT NULL
            THEN CASE WHEN {items} IS NULL THEN 0
                      ELSE size(filter(split({items}, ','), v -> trim(v) <> '')) END
        ELSE least({size}, {setting([r.param_max for r in rules], 'BIGINT')}) END"""
    return rule, posts
