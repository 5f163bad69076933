"""Which hosts a recipient's mailbox can reach: a link in a mail, or the domain of an address
shown in one, must name a public host.

An IP address is read in every spelling a browser or ``inet_aton`` accepts (``127.1``,
``0x7f000001``, ``017700000001``, ``0``, ``[::ffff:127.0.0.1]``), so loopback cannot hide
behind another form of itself. Names are refused when they cannot be public: one label
(``stepmail``), the RFC 2606 / RFC 6761 / RFC 6762 / RFC 8375 reserved names (``example.com``,
``.example``, ``.test``, ``.invalid``, ``.localhost``, ``.local``, ``home.arpa``) and the
private suffixes that are never delegated (``.internal``, ``.localdomain``, ``.lan``). Pure.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address, ip_address

RESERVED_DOMAINS = ("example.com", "example.net", "example.org", "home.arpa")
RESERVED_TLDS = ("example", "test", "invalid", "localhost", "local", "localdomain")
PRIVATE_TLDS = ("internal", "lan", "intranet", "corp", "home", "private")
_LEGACY_PART = re.compile(r"0[xX][0-9A-Fa-f]*|0[0-7]*|[1-9][0-9]*")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?")

IPAddress = IPv4Address | IPv6Address


def ip_of(host: str) -> IPAddress | None:
    """The address ``host`` spells (brackets and an IPv4-mapped IPv6 form undone), or None
    for a name."""
    text = host.strip().strip("[]").rstrip(".").lower()
    try:
        address = ip_address(text.split("%")[0])
    except ValueError:
        return _legacy_ipv4(text)
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _legacy_ipv4(text: str) -> IPv4Address | None:
    """``inet_aton``'s forms: 1 to 4 parts, each decimal, octal (``0``…) or hex (``0x``…);
    the last part fills the remaining bytes (``127.1`` is 127.0.0.1)."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_LEGACY_PART.fullmatch(p) for p in parts):
        return None
    numbers = [_legacy_number(part) for part in parts]
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = 0
    for number in leading:
        value = value * 256 + number
    return IPv4Address(value * 256 ** (5 - len(numbers)) + last)


def _legacy_number(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part)


def is_reserved_host(host: str) -> bool:
    """Example, test, invalid and loopback names and addresses: mail to or links at them
    never arrive (the check of sender identities and demo links)."""
    address = ip_of(host)
    if address is not None:
        return address.is_loopback or address.is_unspecified
    name = host.strip().lower().rstrip(".")
    if name in RESERVED_TLDS or name.endswith(tuple(f".{tld}" for tld in RESERVED_TLDS)):
        return True
    return any(name == d or name.endswith(f".{d}") for d in RESERVED_DOMAINS)


def public_host_problem(host: str) -> str | None:
    """Why a recipient's mailbox cannot reach ``host``, or None for a public name or address."""
    address = ip_of(host)
    if address is not None:
        if address.is_loopback or address.is_unspecified:
            return f"{host} is a loopback or unspecified address"
        if not address.is_global:
            return f"{host} is a private or reserved address"
        return None
    name = host.strip().lower().rstrip(".")
    labels = name.split(".")
    if is_reserved_host(name):
        return f"{host} is a reserved name (example, test, local…)"
    if len(labels) < 2:
        return f"{host} is a single-label name, not reachable from the internet"
    if labels[-1] in PRIVATE_TLDS:
        return f"{host} is under .{labels[-1]}, a suffix that is never public"
    if not all(_LABEL.fullmatch(label) for label in labels if label.isascii()) or (
        labels[-1].isdigit()
    ):
        return f"{host} is not a valid host name"
    return None
