"""``stepmail check --links``: does each link of the rendered mails answer?

Bounded and loopback-safe, because the links come from files anyone can edit in a pull
request and the check may run on a CI machine inside a private network: each request has a
timeout, a fixed number run at once, redirects are followed by hand (at most five), and the
host is resolved first: a loopback, private, link-local or otherwise non-public address is
refused (``--allow-private`` checks it anyway), and the connection goes to the address that
was checked, so a second DNS answer cannot point it elsewhere. HTTPS still verifies the
certificate against the host name. ``HEAD`` first; ``GET`` (headers only) when a server does
not answer ``HEAD``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from orchestrator.guards.hosts import RESERVED_DOMAINS, RESERVED_TLDS

Resolver = Callable[[str, int], list[str]]
_PLACEHOLDER_TLDS = tuple(tld for tld in RESERVED_TLDS if tld != "localhost")


@dataclass(frozen=True)
class LinkCheckRules:
    timeout: float = 5.0  # seconds, for each of connect, read and write
    concurrency: int = 8
    allow_private: bool = False
    max_redirects: int = 5


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (the system resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_links_online(
    urls: Iterable[str], rules: LinkCheckRules, resolver: Resolver = resolve
) -> dict[str, str | None]:
    """Each http(s) URL → why it does not answer, or None when it does (2xx after redirects)."""
    unique = sorted(set(urls))
    with (
        httpx.Client(timeout=rules.timeout, follow_redirects=False, trust_env=False) as client,
        ThreadPoolExecutor(max_workers=max(1, rules.concurrency)) as pool,
    ):
        answers = pool.map(lambda url: _check(client, url, rules, resolver), unique)
        return dict(zip(unique, answers, strict=True))


def _check(client: httpx.Client, url: str, rules: LinkCheckRules, resolver: Resolver) -> str | None:
    for _ in range(rules.max_redirects + 1):
        try:
            response = _request(client, url, rules, resolver)
        except _Refused as exc:
            return str(exc)
        except httpx.TimeoutException:
            return f"no answer within {rules.timeout:g} s"
        except httpx.HTTPError as exc:
            return (
                f"cannot connect: {exc}" if str(exc) else f"cannot connect ({type(exc).__name__})"
            )
        location = response.headers.get("location")
        if response.is_redirect and location:
            url = urljoin(url, location)
            continue
        if response.status_code >= 400:
            return f"answers HTTP {response.status_code}"
        return None
    return f"more than {rules.max_redirects} redirects"


class _Refused(Exception):
    """A link the check will not fetch (its address, its scheme), with the reason."""


def _request(
    client: httpx.Client, url: str, rules: LinkCheckRules, resolver: Resolver
) -> httpx.Response:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Refused(f"leads to {url!r}, which is not an http(s) link")
    try:
        host = parts.hostname.rstrip(".").lower().encode("idna").decode("ascii")
    except UnicodeError:
        raise _Refused(f"{parts.hostname!r} is not a host name") from None
    if _is_placeholder(host):
        raise _Refused(f"{host} is a reserved domain (RFC 2606): a placeholder left in?")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _checked_address(host, port, rules.allow_private, resolver)
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    named = f"[{host}]" if ":" in host else host
    authority = named if parts.port is None else f"{named}:{parts.port}"
    headers = {"Host": authority, "User-Agent": "stepmail-check"}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    response = client.request("HEAD", pinned, headers=headers, extensions=extensions)
    if response.status_code in (403, 405, 501):  # some servers answer only GET
        with client.stream("GET", pinned, headers=headers, extensions=extensions) as streamed:
            return streamed  # the headers are enough: the body is never read
    return response


def _checked_address(host: str, port: int, allow_private: bool, resolver: Resolver) -> str:
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise _Refused(f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise _Refused(f"cannot resolve {host}")
    if not allow_private:
        for address in addresses:
            if not _is_public(address):
                raise _Refused(
                    f"{host} resolves to {address}, a loopback or private address: "
                    "not fetched (--allow-private checks it)"
                )
    return addresses[0]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _is_placeholder(host: str) -> bool:
    if host.endswith(tuple(f".{tld}" for tld in _PLACEHOLDER_TLDS)) or host in _PLACEHOLDER_TLDS:
        return True
    return any(host == domain or host.endswith(f".{domain}") for domain in RESERVED_DOMAINS)
