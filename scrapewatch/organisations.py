"""Organisations: API keys, users and address ranges merged into one entity.

Per DESIGN.md ("joint and several"), an organisation's requests are merged into one
stream and its 24-hour windows computed on that stream; its damages are reported once,
with its members listed. The mapping is a CSV file with a header: `org` and, per row,
either `key` (an API key or user name) or `cidr` (an address or network, covering the
client addresses and client networks inside it).
"""

from __future__ import annotations

import csv
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from scrapewatch.allow import Network, unmapped
from scrapewatch.errors import ConfigError


@dataclass(frozen=True)
class Organisations:
    """Members to organisations."""

    keys: dict[str, str]
    networks: tuple[tuple[Network, str], ...]

    @classmethod
    def load(cls, path: Path) -> Organisations:
        """Read the mapping file.

        Raises:
            ConfigError: naming the file and row of anything it cannot use.
        """
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise ConfigError(f"entity.organisations: cannot read {path}: {exc}") from exc
        keys: dict[str, str] = {}
        networks: list[tuple[Network, str]] = []
        for number, row in enumerate(rows, start=2):
            org = (row.get("org") or "").strip()
            key, cidr = (row.get("key") or "").strip(), (row.get("cidr") or "").strip()
            if not org or bool(key) == bool(cidr):
                raise ConfigError(f"{path}:{number}: each row needs an org and either a key "
                                  "or a cidr (header: key,cidr,org)")
            if key:
                keys[key] = org
                continue
            try:
                networks.append((unmapped(ipaddress.ip_network(cidr, strict=False)), org))
            except ValueError:
                raise ConfigError(f"{path}:{number}: {cidr!r} is not an address or CIDR "
                                  "network") from None
        return cls(keys, tuple(networks))

    def org_of(self, kind: str, entity: str) -> str | None:
        """The organisation an entity (`kind` as in reports) belongs to, if any."""
        if kind in ("api_key", "user"):
            return self.keys.get(entity)
        if kind != "client_ip" or not self.networks:
            return None
        try:
            net = unmapped(ipaddress.ip_network(entity, strict=False))
        except ValueError:
            return None
        return next((org for network, org in self.networks if net.version == network.version
                     and net.subnet_of(network)), None)  # type: ignore[arg-type]
