"""The allow-list: authorised keys, users and networks, kept out of the findings.

The clause applies only to use that violates the Terms, which no log can show; licensed
partners and internal services are listed here. An entry is a key or user name (`x`,
or `api_key:x` / `user:x` to name its kind) or an IPv4/IPv6 address or CIDR network,
which covers the client addresses and client networks inside it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from scrapewatch.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AllowList:
    """Parsed allow-list entries."""

    names: frozenset[tuple[str | None, str]]  # (kind or None for any, name)
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> AllowList:
        """From config entries.

        Raises:
            ConfigError: for an empty entry.
        """
        names: set[tuple[str | None, str]] = set()
        networks: list[Network] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                raise ConfigError("entity.allow: an empty entry")
            kind, _, name = entry.partition(":")
            if kind in ("api_key", "user") and name:
                names.add((kind, name))
                continue
            try:
                networks.append(unmapped(ipaddress.ip_network(entry, strict=False)))
            except ValueError:
                names.add((None, entry))
        return cls(frozenset(names), tuple(networks))

    def allows(self, kind: str, entity: str) -> bool:
        """Whether the entity (`kind` as in reports) is authorised."""
        if (kind, entity) in self.names or (None, entity) in self.names:
            return True
        if kind != "client_ip" or not self.networks:
            return False
        try:
            net = unmapped(ipaddress.ip_network(entity, strict=False))  # address or network
        except ValueError:
            return False
        return any(net.version == allowed.version and net.subnet_of(allowed)  # type: ignore[arg-type]
                   for allowed in self.networks)


def unmapped(net: Network) -> Network:
    """An IPv4-mapped IPv6 address or network (::ffff:192.0.2.1) as the IPv4 one."""
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}")
    return net
