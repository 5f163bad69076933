"""IP networks as an operator writes them in a setting: ``192.0.2.0/24, 2001:db8::/32``."""

from __future__ import annotations

import ipaddress

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[IpNetwork, ...]:
    """Comma-separated networks (a bare address is a network of one); ValueError naming the
    first that is not one."""
    networks = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP network (e.g. 192.0.2.0/24)") from None
    return tuple(networks)


def in_networks(address: str | None, networks: tuple[IpNetwork, ...]) -> bool:
    """Whether ``address`` (as a client gave it; anything unreadable is in none) is in one."""
    if not address or not networks:
        return False
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)
