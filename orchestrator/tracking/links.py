"""Signed redirect links: ``PUBLIC_BASE_URL/r/<token>``, where the token carries the send id
and the destination as the template wrote it, signed with HMAC-SHA256 (128 bits kept).

Only a link Stepmail put in a mail can be followed: a changed or made-up token never
redirects anywhere. The destination travels in the token, so a link works for as long as the
signing key does, whether or not the mail is still archived.

Links are rewritten while a mail renders: the template compile pass wraps every ``href`` of
``<a>`` and ``<area>`` in the ``track_link`` filter (:mod:`orchestrator.rendering.css`), which
signs the link with the :class:`ClickLinks` of the mail being rendered (set by
:func:`tracking`; with none set, as in ``stepmail check`` and previews, links stay as written).
A text template's links are rewritten after it renders (:meth:`ClickLinks.track_text`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import html
import re
import struct
from contextvars import ContextVar
from dataclasses import dataclass

from markupsafe import Markup, escape

from orchestrator.errors import BadClickLink
from orchestrator.guards.links import (
    REMEMBERED,
    REMEMBERED_UP_TO,
    RENDERED_SCHEMES,
    link_scheme,
    refused_link,
    web_link_problem,
)
from orchestrator.keyed_hash import PreparedHmac

PATH = "/r/"
MAX_URL = 2000  # longer links are left as they are (no mail client needs one)
MAX_TOKEN = 4 * MAX_URL  # a token longer than any we make is refused before any work
_TAG_BYTES = 16
_SEND_ID = struct.Struct(">I")
_PURPOSE = b"stepmail.click.v1"
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}"
_URL_SAFE = bytes.maketrans(b"+/", b"-_")


@functools.lru_cache(maxsize=8)
def click_key(signing_secret: str) -> bytes:
    """The key of click links, derived from the unsubscribe signing secret for this one use
    (once per process and secret: every mail asks for it)."""
    if not signing_secret.strip():
        raise ValueError("click links need a signing secret")
    return hmac.new(signing_secret.encode(), _PURPOSE, hashlib.sha256).digest()


@dataclass(frozen=True)
class ClickLink:
    """What a valid token says: which send, and where to."""

    send_id: int
    url: str


class ClickLinks:
    """Rewrites the links of one mail (one send) into signed redirect links.

    What every link of a mail shares is made once for it (the payload's send id), and what
    every mail under one key and base URL shares once a process (the prepared key, the base
    URL as an escaped attribute value): three or four links a mail each made them again
    (bench/README, "Session 36")."""

    __slots__ = ("_own", "_send_id", "_signer", "key", "own_markup", "public_base_url", "send_id")

    def __init__(self, key: bytes, public_base_url: str, send_id: int) -> None:
        self.key = key
        self.public_base_url = public_base_url
        self.send_id = send_id
        # Stepmail's own links begin so, escaped as in an attribute: they are never tracked
        self._own, self.own_markup, self._signer = _shared(key, public_base_url)
        self._send_id = _SEND_ID.pack(send_id)

    def track(self, url: str) -> str | None:
        """The redirect link for ``url``, or None when it is not tracked: not an absolute
        http(s) link, too long, or one of Stepmail's own (the unsubscribe link)."""
        token = self._token(url)
        return None if token is None else f"{self._own}r/{token}"

    def track_markup(self, url: str) -> Markup | None:
        """:meth:`track` as an escaped attribute value (a token needs no escaping: URL-safe
        base64 and a dot)."""
        token = self._token(url)
        return None if token is None else Markup(f"{self.own_markup}r/{token}")  # noqa: S704

    def _token(self, url: str) -> str | None:
        if len(url) > MAX_URL or url.startswith(self._own) or web_link_problem(url) is not None:
            return None
        return self._signed(url)

    def signed_markup(self, url: str) -> Markup | None:
        """:meth:`track_markup` of a link already read as one to track (:func:`_read_href`):
        None only for one of Stepmail's own."""
        if url.startswith(self._own):
            return None
        return Markup(f"{self.own_markup}r/{self._signed(url)}")  # noqa: S704

    def _signed(self, url: str) -> str:
        """The token of ``url`` for this send: payload and tag, as ``sign_click`` makes it."""
        payload = self._send_id + url.encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._signer.digest(payload)[:_TAG_BYTES])}"

    def track_text(self, text: str) -> str:
        """Every http(s) URL of a text part rewritten (trailing punctuation stays outside)."""

        def rewrite(match: re.Match[str]) -> str:
            found = match.group(0)
            url = found.rstrip(_TRAILING)
            tracked = self.track(url)
            return found if tracked is None else tracked + found[len(url) :]

        return _URL_IN_TEXT.sub(rewrite, text)


@functools.lru_cache(maxsize=8)
def _shared(key: bytes, public_base_url: str) -> tuple[str, str, PreparedHmac]:
    """The base URL of every redirect link, as text and escaped, and the prepared key."""
    own = public_base_url.rstrip("/") + "/"
    return own, str(escape(own)), _keyed(key)


def sign_click(key: bytes, send_id: int, url: str) -> str:
    payload = _SEND_ID.pack(send_id) + url.encode("utf-8")
    return f"{_b64(payload)}.{_b64(_tag(key, payload))}"


def _tag(key: bytes, payload: bytes) -> bytes:
    """HMAC-SHA256 of ``payload``, truncated (with the key prepared once: see
    :mod:`orchestrator.keyed_hash`)."""
    return _keyed(key).digest(payload)[:_TAG_BYTES]


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> PreparedHmac:
    return PreparedHmac(key)


def read_click(key: bytes, token: str) -> ClickLink:
    """The send and destination of ``token``; BadClickLink unless we signed it as it is."""
    if len(token) > MAX_TOKEN or token.count(".") != 1:
        raise BadClickLink()
    encoded_payload, encoded_tag = token.split(".")
    payload, tag = _unb64(encoded_payload), _unb64(encoded_tag)
    expected = _tag(key, payload)
    if len(payload) <= _SEND_ID.size or not hmac.compare_digest(tag, expected):
        raise BadClickLink()
    (send_id,) = _SEND_ID.unpack_from(payload)
    try:
        url = payload[_SEND_ID.size :].decode("utf-8")
    except UnicodeDecodeError:
        raise BadClickLink() from None
    if web_link_problem(url) is not None:  # we never sign one; a leaked key must not make one
        raise BadClickLink()
    return ClickLink(send_id, url)


def _b64(data: bytes) -> str:
    """``base64.urlsafe_b64encode`` without its padding, in one call less."""
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise BadClickLink()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise BadClickLink() from None


_CURRENT: ContextVar[ClickLinks | None] = ContextVar("stepmail_click_links", default=None)


class _Tracking:
    """``with tracking(links)``: a class, not a ``@contextmanager`` generator, which took ~1.2
    µs more each mail (bench/README, "Session 26")."""

    __slots__ = ("_links", "_reset")

    def __init__(self, links: ClickLinks | None) -> None:
        self._links = links

    def __enter__(self) -> None:
        self._reset = _CURRENT.set(self._links)

    def __exit__(self, *exc_info: object) -> None:
        _CURRENT.reset(self._reset)


def tracking(links: ClickLinks | None) -> _Tracking:
    """Within this block, ``track_link`` signs links with ``links`` (None: leaves them)."""
    return _Tracking(links)


def track_link(value: Markup | str) -> Markup:
    """The ``track_link`` filter: an ``href``'s rendered value, as a redirect link when the
    mail being rendered tracks clicks. Jinja hands over the escaped value; it is read
    unescaped, as a browser would, and the link signed is exactly that."""
    markup = value if isinstance(value, Markup) else escape(value)
    links = _CURRENT.get()
    if links is None:
        return markup
    tracked = links.track_markup(as_written(str(markup)))
    return markup if tracked is None else tracked


def guarded_track_link(value: Markup | str) -> Markup:
    """``track_link(safe_link(value))`` in one call: a link the reader follows, filled in by
    Jinja, guarded (``#`` for a scheme no mail may carry), then tracked.

    Both verdicts on the written text are one remembered reading (:func:`_read_href`): a
    mail's ~3 such links are the same few for every mail of a step, and the two filters in a
    row made ~13 Python calls a link (bench/README, "Session 41")."""
    markup = value if isinstance(value, Markup) else escape(value)
    written = str(markup)
    links = _CURRENT.get()
    if links is not None and written.startswith(links.own_markup):
        # Stepmail's own (unsubscribe, a survey's answers): not tracked, its scheme the base
        # URL's, and each mail's its own, so never worth remembering.
        return markup
    if len(written) <= REMEMBERED_UP_TO:
        refused, url = _remembered_href(written)
    else:
        refused, url = _read_href(written)
    if refused is not None:
        return refused_link(refused)
    if url is None or links is None:
        return markup
    tracked = links.signed_markup(url)
    return markup if tracked is None else tracked


def _read_href(written: str) -> tuple[str | None, str | None]:
    """What an escaped link attribute holds: the scheme that keeps it out of a mail (None
    when it may be in one), and the link to sign (None when it is not tracked: not an absolute
    http(s) link, or too long). Read as a browser reads it, as ``safe_link`` and ``track_link``
    read it."""
    url = as_written(written)
    scheme = link_scheme(url)
    if scheme is not None and scheme not in RENDERED_SCHEMES:
        return scheme, None
    if len(url) > MAX_URL or web_link_problem(url) is not None:
        return None, None
    return None, url


# Up to REMEMBERED hrefs of up to REMEMBERED_UP_TO characters, each kept with the link it
# holds: ~16 MB at most, beside guards.links' verdicts.
_remembered_href = functools.lru_cache(maxsize=REMEMBERED)(_read_href)


def as_written(attribute: str) -> str:
    """An escaped attribute value as a browser reads it: ``html.unescape``, by a shorter way
    when every character reference in it is ``&amp;`` (a query string's), as most are."""
    if "&" not in attribute:
        return attribute
    if attribute.count("&") == attribute.count("&amp;"):
        return attribute.replace("&amp;", "&")
    return html.unescape(attribute)


def current_links() -> ClickLinks | None:
    return _CURRENT.get()
