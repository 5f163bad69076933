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
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from orchestrator.errors import BadClickLink
from orchestrator.guards.links import web_link_problem
from orchestrator.keyed_hash import PreparedHmac

PATH = "/r/"
MAX_URL = 2000  # longer links are left as they are (no mail client needs one)
MAX_TOKEN = 4 * MAX_URL  # a token longer than any we make is refused before any work
_TAG_BYTES = 16
_SEND_ID = struct.Struct(">I")
_PURPOSE = b"stepmail.click.v1"
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}"


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


@dataclass(frozen=True)
class ClickLinks:
    """Rewrites the links of one mail (one send) into signed redirect links."""

    key: bytes
    public_base_url: str
    send_id: int
    _own: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_own", self.public_base_url.rstrip("/") + "/")

    def track(self, url: str) -> str | None:
        """The redirect link for ``url``, or None when it is not tracked: not an absolute
        http(s) link, too long, or one of Stepmail's own (the unsubscribe link)."""
        if len(url) > MAX_URL or url.startswith(self._own) or web_link_problem(url) is not None:
            return None
        return f"{self._own}r/{sign_click(self.key, self.send_id, url)}"

    def track_text(self, text: str) -> str:
        """Every http(s) URL of a text part rewritten (trailing punctuation stays outside)."""

        def rewrite(match: re.Match[str]) -> str:
            found = match.group(0)
            url = found.rstrip(_TRAILING)
            tracked = self.track(url)
            return found if tracked is None else tracked + found[len(url) :]

        return _URL_IN_TEXT.sub(rewrite, text)


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
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


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
    tracked = links.track(html.unescape(str(markup)))
    return markup if tracked is None else escape(tracked)


def current_links() -> ClickLinks | None:
    return _CURRENT.get()
