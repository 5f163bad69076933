"""Where a webhook may be sent: an http(s) URL whose host resolves only to public addresses.

Without this an integrator's URL could make Stepmail post to its own network (the database's
admin port, a cloud metadata service at 169.254.169.254). Loopback, private, link-local,
multicast, reserved and unspecified addresses are refused unless allowed
(``STEPMAIL_WEBHOOK_ALLOW_PRIVATE``, always in development). The check runs when an endpoint is
added and again before every delivery (DNS can change); redirects are never followed, so an
answer cannot send us elsewhere. A name that resolves to a public address at check time and
to a private one a moment later (DNS rebinding) is the residual risk: run the scheduler where
its egress is filtered if that matters.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from orchestrator.errors import UnsafeWebhookUrl

MAX_URL = 2048


def check_url(url: str) -> str:
    """The URL if its form is acceptable (scheme, host, no credentials, bounded); no lookup."""
    if len(url) > MAX_URL:
        raise UnsafeWebhookUrl(f"url: longer than {MAX_URL} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise UnsafeWebhookUrl("url: control characters or spaces are not allowed")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise UnsafeWebhookUrl(f"url: {exc}") from None
    if parts.scheme not in ("https", "http"):
        raise UnsafeWebhookUrl("url: must be https:// (or http://)")
    if not parts.hostname:
        raise UnsafeWebhookUrl("url: has no host")
    if parts.username or parts.password:
        raise UnsafeWebhookUrl("url: must not carry a user name or password")
    return url


def check_destination(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host is, or resolves to, an address inside the network."""
    check_url(url)
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeWebhookUrl(f"url: cannot resolve {host[:100]!r}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            raise UnsafeWebhookUrl(
                f"url: {host[:100]} resolves to {address}, a loopback, private or link-local "
                "address (STEPMAIL_WEBHOOK_ALLOW_PRIVATE=true allows it)"
            )
