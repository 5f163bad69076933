"""The links of a rendered mail, and whether each is one a mail client can follow.

Rendering already turns a dangerous scheme into ``#`` (:func:`orchestrator.guards.links.safe_link`);
this finds that ``#`` too, and the links that are merely broken: relative (a mail has no base),
no host, a bad port, a ``mailto:`` with no address, spaces.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from orchestrator.guards.links import link_scheme, web_link_problem
from orchestrator.rendering.mail_files import MailFileTooLarge, read_mail_file

# Attributes that hold a link a reader follows or a client fetches.
_LINK_ATTRIBUTES = frozenset({"href", "src", "background", "action", "poster"})
_HOST = re.compile(
    r"^[A-Za-z0-9\u00a1-\uffff]([A-Za-z0-9\u00a1-\uffff-]*[A-Za-z0-9\u00a1-\uffff])?$"
)
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value or "" for name, value in attrs if name in _LINK_ATTRIBUTES]


def links_in(html: str) -> list[str]:
    """Every link attribute's value, in document order, character references decoded."""
    parser = _Links()
    parser.feed(html)
    parser.close()
    return parser.found


def link_problem(url: str) -> str | None:
    """Why a mail client could not follow ``url``, or None."""
    if url in ("", "#"):
        return "renders as '#' (the value was empty or not an http, https or mailto link)"
    scheme = link_scheme(url)
    if scheme == "mailto":
        address = unquote(url.split(":", 1)[1].split("?", 1)[0])
        return None if _ADDRESS.match(address) else "a mailto: link without a plain address"
    problem = web_link_problem(url)
    if problem is not None:
        return problem.replace("must be", "is not", 1) if problem.startswith("must be") else problem
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (raises on a port that is no number or out of range)
    except ValueError:
        return "has a port that is not a number from 0 to 65535"
    host = parts.hostname or ""
    if host.startswith("[") or _is_ip_literal(host):
        return None
    labels = host.rstrip(".").split(".")
    if not all(_HOST.match(label) for label in labels):
        return f"has a host that is not a domain name: {host!r}"
    return None


def _is_ip_literal(host: str) -> bool:
    return ":" in host or all(part.isdigit() for part in host.split("."))


def where_written(templates_dir: Path, url: str, template_name: str) -> str:
    """``file:line`` of the template line that writes ``url`` literally; else the template
    the mail rendered from (the link then came from a variable)."""
    for path in sorted(templates_dir.rglob("*")):
        if path.suffix not in (".html", ".txt") or not path.is_file():
            continue
        try:
            lines = read_mail_file(path).splitlines()
        except (OSError, UnicodeDecodeError, MailFileTooLarge):
            continue
        for number, line in enumerate(lines, 1):
            if url and url in line:
                return f"{path}:{number}"
    return str(templates_dir / template_name)
