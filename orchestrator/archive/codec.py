"""A mail packed into bytes and compressed with zstd against a *dictionary*: an earlier mail of
the same template.

Two renders of one template differ in a name, a company, a date and a few links, so each mail
compressed against another one's bytes takes a few hundred bytes instead of 2-3 KB with plain
zstd or zlib (``bench/funnel.py`` prints the numbers), and compressing costs a few
microseconds. The dictionary is stored once (``archive_dictionary``) and named by each mail
that uses it.

zstd compressors are not thread-safe: each thread keeps its own, per dictionary.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass

import zstandard

LEVEL = 3  # zstd's default: with a dictionary, higher levels save little and cost ten times more
_FORMAT = 1
_HEAD = struct.Struct(">BIII")  # format, then the lengths of headers, HTML and text
_UTF8 = "utf-8"
_LOSSLESS = "surrogatepass"  # text the transport took is kept byte for byte, whatever it holds


@dataclass(frozen=True)
class ArchivedMail:
    """A sent mail as the archive gives it back: headers decoded, in the order they were sent."""

    subject: str
    headers: tuple[tuple[str, str], ...]
    html: str
    text: str


def pack(mail: ArchivedMail) -> bytes:
    """The mail as bytes: a small head, the headers as ``name: value`` lines, HTML, text."""
    head = "\n".join(f"{name}: {value}" for name, value in mail.headers).encode(_UTF8, _LOSSLESS)
    html = mail.html.encode(_UTF8, _LOSSLESS)
    text = mail.text.encode(_UTF8, _LOSSLESS)
    return _HEAD.pack(_FORMAT, len(head), len(html), len(text)) + head + html + text


def unpack(data: bytes, subject: str) -> ArchivedMail:
    """What :func:`pack` wrote; ValueError when it is not that."""
    version, head_len, html_len, text_len = _HEAD.unpack_from(data)
    start = _HEAD.size
    if version != _FORMAT or start + head_len + html_len + text_len != len(data):
        raise ValueError("not an archived mail")
    head = data[start : start + head_len].decode(_UTF8, _LOSSLESS)
    html = data[start + head_len : start + head_len + html_len].decode(_UTF8, _LOSSLESS)
    text = data[start + head_len + html_len :].decode(_UTF8, _LOSSLESS)
    headers = tuple(_header(line) for line in head.split("\n") if line)
    return ArchivedMail(subject=subject, headers=headers, html=html, text=text)


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(": ")
    return name, value


class Codec:
    """zstd with and without a dictionary, one compressor per thread and dictionary."""

    def __init__(self) -> None:
        self._local = threading.local()

    def compress(self, data: bytes, dictionary: Dictionary | None = None) -> bytes:
        return self._compressor(dictionary).compress(data)

    def decompress(self, data: bytes, dictionary: Dictionary | None = None) -> bytes:
        if dictionary is None:
            return zstandard.ZstdDecompressor().decompress(data)
        return zstandard.ZstdDecompressor(dict_data=dictionary.zstd).decompress(data)

    def _compressor(self, dictionary: Dictionary | None) -> zstandard.ZstdCompressor:
        cache: dict[int, zstandard.ZstdCompressor] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        key = 0 if dictionary is None else dictionary.id
        compressor = cache.get(key)
        if compressor is None:
            compressor = zstandard.ZstdCompressor(
                level=LEVEL,
                dict_data=None if dictionary is None else dictionary.zstd,
                write_checksum=False,
                write_dict_id=False,  # the row names its dictionary
            )
            cache[key] = compressor
        return compressor


@dataclass(frozen=True)
class Dictionary:
    """A stored dictionary: its row id and its bytes, ready for zstd."""

    id: int
    content: bytes

    @property
    def zstd(self) -> zstandard.ZstdCompressionDict:
        return _zstd_dictionary(self.content)


_DICTIONARIES: dict[bytes, zstandard.ZstdCompressionDict] = {}
_DICTIONARIES_LOCK = threading.Lock()


def _zstd_dictionary(content: bytes) -> zstandard.ZstdCompressionDict:
    """Raw-content dictionaries, made once per content (they are a few KB; a handful exist)."""
    with _DICTIONARIES_LOCK:
        found = _DICTIONARIES.get(content)
        if found is None:
            if len(_DICTIONARIES) > 256:
                _DICTIONARIES.clear()
            found = zstandard.ZstdCompressionDict(content, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            _DICTIONARIES[content] = found
        return found
