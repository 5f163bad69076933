"""Which links may reach a mail: http and https, and ``mailto:`` where a template writes one.

A ``javascript:``, ``data:`` or ``vbscript:`` URL in an ``href`` runs script or shows forged
content in some mail clients, so such a link is refused twice: where it comes in (a customer
attribute named ``*_url``, a journey's ``vars``, ``PUBLIC_BASE_URL``), and again when a mail is
rendered, for every link attribute a template fills in (:func:`safe_link`, applied by
:mod:`orchestrator.rendering.css` when a template is compiled).

The scheme is read the way browsers read it (WHATWG URL): leading and trailing spaces and
control characters are ignored, tabs and line breaks anywhere are dropped, case does not
matter. So `` JaVa\\tScRiPt:alert(1)`` is a ``javascript:`` link.
"""

from __future__ import annotations

import functools
import html
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup, escape
from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

log = logging.getLogger(__name__)

WEB_SCHEMES = frozenset({"http", "https"})
RENDERED_SCHEMES = WEB_SCHEMES | {"mailto"}
LINK_SUFFIX = "_url"  # a customer attribute or journey var with this suffix is a link
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_UNSAFE_IN_URL = re.compile("[\x00-\x20\x7f-\x9f\u2028\u2029]")
NEUTRAL_LINK = Markup("#")  # a constant: nothing to escape
# A mail's links are mostly the same few for every mail of a step, read ~8 times a mail:
# the verdicts on links up to this long are remembered (4,096 of each, ~8 MB at most);
# a longer one is read each time.
REMEMBERED_UP_TO = 2048
REMEMBERED = 4096


def _remembering_short(read: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """``read``, its answers for texts up to ``REMEMBERED_UP_TO`` characters remembered."""
    remembered = functools.lru_cache(maxsize=REMEMBERED)(read)

    def verdict(text: str) -> str | None:
        return remembered(text) if len(text) <= REMEMBERED_UP_TO else read(text)

    return functools.update_wrapper(verdict, read)


@_remembering_short
def link_scheme(url: str) -> str | None:
    """The scheme a browser would take from ``url`` (lower case), or None for a relative link."""
    text = _TAB_OR_NEWLINE.sub("", url).strip(_C0_AND_SPACE)
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else None


def web_link_problem(url: object) -> str | None:
    """Why ``url`` is not an absolute http(s) link with a host, or None if it is one."""
    if not isinstance(url, str):
        return "must be a string holding an http or https URL"
    return _web_link_problem(url)


@_remembering_short
def _web_link_problem(url: str) -> str | None:
    if _UNSAFE_IN_URL.search(url):
        return "must be an http or https URL without spaces or control characters"
    scheme = link_scheme(url)
    if scheme not in WEB_SCHEMES:
        shown = f"{scheme}:" if scheme else "a relative link"
        return f"must be an http or https URL, not {shown}"
    try:
        host = urlsplit(url).hostname
    except ValueError as exc:  # "Invalid IPv6 URL": a [ without its ], as in http://[::1
        return f"must be an http or https URL with a readable host ({exc})"
    if not host:
        return "must be an http or https URL with a host"
    return None


def base_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the base other URLs are built on (``PUBLIC_BASE_URL``, a provider's
    API host): it must be a web link whose path can be extended, so no user name or password
    (they would be in every mail), no query or fragment (``/unsubscribe/…`` would land inside
    them) and a port that exists."""
    problem = web_link_problem(url)
    if problem is not None:
        return problem
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "must not carry a user name or password"
    if parts.query or url.rstrip().endswith("?"):
        return "must not have a query (?…)"
    if parts.fragment or "#" in url:
        return "must not have a fragment (#…)"
    try:
        port = parts.port
    except ValueError:
        return "has an invalid port"
    if port == 0:
        return "has an invalid port"
    return None


def check_base_url(url: str) -> str:
    """For settings: ``url`` unchanged, or ValueError saying what is wrong."""
    problem = base_url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    return url


def check_web_link(url: str) -> str:
    """For settings and validators: ``url`` unchanged, or ValueError saying what is wrong."""
    problem = web_link_problem(url)
    if problem is not None:
        raise ValueError(problem)
    return url


def check_link_values(values: Mapping[str, Any], title: str) -> None:
    """Every ``*_url`` key of ``values`` (and null, which removes one) must be a web link.

    Raises pydantic's ValidationError located at the key, so a 422 says
    ``["body", "attributes", "csm_booking_url"]``.
    """
    errors = [
        InitErrorDetails(
            type=PydanticCustomError("url_scheme", problem),
            loc=(key,),
            input=value,
        )
        for key, value in values.items()
        if key.endswith(LINK_SUFFIX) and value is not None
        for problem in [web_link_problem(value)]
        if problem is not None
    ]
    if errors:
        raise ValidationError.from_exception_data(title, errors)


def check_link_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """The ``attributes`` validator of the signup hook and ``PATCH /v1/customers``."""
    check_link_values(attributes, "attributes")
    return attributes


def safe_link(value: Markup | str) -> Markup:
    """A link attribute's rendered value, or ``#`` when its scheme is not http(s) or mailto.

    Jinja hands over the autoescaped value; the check reads it unescaped, as a browser would.
    """
    markup = value if isinstance(value, Markup) else escape(value)
    scheme = _unescaped_scheme(str(markup))
    if scheme is None or scheme in RENDERED_SCHEMES:
        return markup
    return refused_link(scheme)


def refused_link(scheme: str) -> Markup:
    """What a link of a refused ``scheme`` becomes in a mail (``#``), said in the log."""
    log.warning("a %r link was left out of a mail (only http, https and mailto)", scheme)
    return NEUTRAL_LINK


@_remembering_short
def _unescaped_scheme(written: str) -> str | None:
    """The scheme of a link attribute as a browser reads it: unescaped first."""
    return link_scheme(html.unescape(written))
