"""HMAC-SHA256 (RFC 2104) with its key prepared once: the key's inner and outer blocks are
hashed when it is made, and each tag is two copies of those hashes, fed the message.

Every mail carries three or four signed links (clicks, unsubscribe, survey). A copy of a
keyed OpenSSL 3 HMAC context costs ~19,800 instructions a tag, two copies of SHA-256
contexts ~14,500 (bench/README, "Session 27"). The tags are HMAC's own bytes, so every link
signed before verifies as it did.
"""

from __future__ import annotations

import hashlib

_BLOCK = 64  # SHA-256's block size in bytes
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


class PreparedHmac:
    """HMAC-SHA256 under one key. Safe to share between threads: the prepared hashes are
    only ever copied, never fed."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        block = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(block.translate(_INNER_PAD))
        self._outer = hashlib.sha256(block.translate(_OUTER_PAD))

    def digest(self, message: bytes) -> bytes:
        """``hmac.new(key, message, hashlib.sha256).digest()``."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()
