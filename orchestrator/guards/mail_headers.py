"""Mail headers written by Stepmail itself, from text nothing is allowed to parse.

Python's ``email`` package decodes RFC 2047 encoded-words in the header values it is given,
and when it folds them again it can write the decoded CR/LF back (CVE-2024-6923, fixed only in
3.11.10 and 3.12.5): a company named ``=?utf-8?q?x=0D=0ABcc=3A_victim=40evil.com?=`` became a
``Bcc:`` line. So no header value goes through that package. Each is written here:

- made one line first (:func:`single_line`): control characters, NUL, NEL, VT, FF and the
  Unicode line and paragraph separators become spaces;
- plain printable ASCII without ``=?`` is written as it is (a display name quoted when it
  needs to be); anything else, including text that merely looks like an encoded-word, is
  itself encoded as UTF-8 encoded-words, so a mail reader shows exactly the text, never what
  it would decode to;
- an address must be a plain ``local@domain`` (dot-atoms; a non-ASCII domain as IDNA), or the
  mail is refused with :class:`UnsafeMailError`.

Nothing here depends on the Python patch level.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

import idna

from orchestrator.errors import UnsafeMailError

# C0 and C1 controls (NUL, TAB, LF, VT, FF, CR, NEL …), DEL, U+2028/U+2029 and lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# The same rule for a JSON Schema (ECMA-262 and Python's re both read \uXXXX).
ONE_LINE_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\ud800-\\udfff]*$"
_WHITESPACE = re.compile(r"\s+")
_PRINTABLE = re.compile(r"[ -~]*")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_ATOMS = re.compile(f"{_ATEXT}+( {_ATEXT}+)*")
_LOCAL_PART = re.compile(rf"{_ATEXT}+(\.{_ATEXT}+)*")
_DOMAIN = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# Written by OutgoingMail itself: a header of the caller's may not add a second one (or a Bcc).
_OWN_HEADERS = frozenset(
    {"subject", "from", "to", "cc", "bcc", "reply-to", "sender", "message-id", "date"}
    | {"mime-version", "content-type", "content-transfer-encoding"}
)
_Q_LITERAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
LINE_LENGTH = 78  # RFC 5322 2.1.1: lines SHOULD stay within 78 characters
_WORD_LENGTH = 75  # RFC 2047 2: an encoded-word is at most 75 characters
_LONGEST_PLAIN = 900  # longer plain text is encoded, which can fold it under 998 (the MUST)


def single_line(value: str) -> str:
    """Every line break, control character and run of whitespace becomes one space.

    Nearly every value already is one line: printable text (which excludes every character
    ``_UNSAFE`` names and every whitespace but the space) with single spaces inside is
    returned as it is, without the two passes (a mail makes about a dozen of these calls)."""
    if value.isprintable() and "  " not in value and value[:1] != " " and value[-1:] != " ":
        return value
    return _WHITESPACE.sub(" ", _UNSAFE.sub(" ", value)).strip()


def unsafe_character(value: str) -> str | None:
    """The first character a one-line header value cannot hold (as ``U+000A``), or None."""
    found = _UNSAFE.search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


def refuse_unsafe_characters(value: str) -> str:
    """For input models: a header-bound field must be one line of text (ValueError if not)."""
    code = unsafe_character(value)
    if code is not None:
        raise ValueError(f"must be one line of text without control characters ({code} found)")
    return value


def _plain(text: str) -> bool:
    """Text a reader shows as it is: printable ASCII, short, and nothing like an encoded-word."""
    return len(text) <= _LONGEST_PLAIN and "=?" not in text and bool(_PRINTABLE.fullmatch(text))


def _q(data: bytes) -> str:
    """RFC 2047 "Q": the restricted set of section 5 (3), so the word is safe in a phrase too."""
    return "".join(
        chr(byte) if byte in _Q_LITERAL else "_" if byte == 0x20 else f"={byte:02X}"
        for byte in data
    )


def encoded_words(text: str) -> list[str]:
    """``text`` as UTF-8 encoded-words of at most 75 characters, never splitting a character.

    Q is used when it is shorter (mostly ASCII text), else B; the whitespace between adjacent
    encoded-words is dropped by readers, so the words put the text back exactly.
    """
    data = text.encode("utf-8")
    use_q = len(_q(data)) <= len(base64.b64encode(data))
    prefix = "=?utf-8?q?" if use_q else "=?utf-8?b?"
    room = _WORD_LENGTH - len(prefix) - len("?=")  # characters for the encoded text
    budget = room if use_q else room // 4 * 3  # Q: encoded characters; B: bytes to encode
    words: list[str] = []
    chunk, size = bytearray(), 0
    for char in text:
        encoded = char.encode("utf-8")
        cost = len(_q(encoded)) if use_q else len(encoded)
        if chunk and size + cost > budget:
            words.append(_word(prefix, bytes(chunk), use_q))
            chunk, size = bytearray(), 0
        chunk += encoded
        size += cost
    words.append(_word(prefix, bytes(chunk), use_q))
    return words


def _word(prefix: str, data: bytes, use_q: bool) -> str:
    body = _q(data) if use_q else base64.b64encode(data).decode("ascii")
    return f"{prefix}{body}?="


def fold(name: str, tokens: list[str]) -> list[str]:
    """``Name: token token …`` in lines of at most 78 characters where the tokens allow.

    A fold is a line break put before the space between two tokens (RFC 5322 2.2.3), so
    unfolding gives back the value exactly.
    """
    lines = [f"{name}:"]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) > LINE_LENGTH and lines[-1] != f"{name}:":
            lines.append(f" {token}")
        else:
            lines[-1] += f" {token}"
    return lines


def unstructured(name: str, text: str) -> list[str]:
    """A Subject-like field: the words of plain text, otherwise encoded-words."""
    text = single_line(text)
    return fold(name, text.split(" ") if _plain(text) else encoded_words(text))


def display_name(name: str) -> list[str]:
    """A display name as a phrase: atoms, a quoted-string, or encoded-words."""
    name = single_line(name)
    if not name:
        return []
    if _plain(name):
        if _ATOMS.fullmatch(name):
            return [name]
        return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return encoded_words(name)


def addr_spec(email: str) -> str:
    """``local@domain`` with dot-atoms only, the domain in ASCII (IDNA); UnsafeMailError else."""
    local, at, domain = email.rpartition("@")
    if not at or not _LOCAL_PART.fullmatch(local):
        raise UnsafeMailError(
            f"address {email!r}: not a plain local@domain with an ASCII local part"
        )
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise UnsafeMailError(f"address {email!r}: the domain is not a valid IDN") from None
    if not _DOMAIN.fullmatch(domain):
        raise UnsafeMailError(f"address {email!r}: the domain is not a plain domain name")
    return f"{local}@{domain}"


def check_plain_address(email: str) -> str:
    """For settings: ``email`` unchanged if a header can carry it, ValueError otherwise."""
    try:
        addr_spec(email)
    except UnsafeMailError as exc:
        raise ValueError(str(exc)) from None
    return email


def mailbox(name: str, display: str, email: str) -> list[str]:
    """``From``/``To``/``Reply-To``: ``phrase <addr>``, or the bare address without a name."""
    phrase = display_name(display)
    address = addr_spec(email)
    return fold(name, [*phrase, f"<{address}>"] if phrase else [address])


def structured(name: str, value: str) -> list[str]:
    """A header of our own (``List-Unsubscribe`` …): a checked name, one line of printable ASCII.

    Such values (URLs, tokens) must reach the reader verbatim, so nothing is encoded: a value
    that is not plain printable ASCII is refused rather than changed.
    """
    if not _HEADER_NAME.fullmatch(name) or name.lower() in _OWN_HEADERS:
        raise UnsafeMailError(f"header name {name!r} is not a plain token of our own")
    value = single_line(value)
    if not _PRINTABLE.fullmatch(value) or len(name) + 2 + len(value) > 998:
        raise UnsafeMailError(f"header {name}: the value is not one line of printable ASCII")
    return [f"{name}: {value}"]


def header_block(lines: Iterable[str], linesep: str) -> bytes:
    """The lines joined with ``linesep``; ASCII by construction (encode would say otherwise)."""
    return "".join(line + linesep for line in lines).encode("ascii")
