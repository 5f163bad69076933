"""The itsdangerous signers of the recipients' links (unsubscribe, survey, session), made once
per process: every mail carries an unsubscribe link and often a survey or session links, and a
new ``Signer`` derives its key and keys a new HMAC on every ``sign``.

A :class:`PreparedSigner` signs exactly as ``Signer(secret, salt=salt,
digest_method=hashlib.sha256)`` does (tests/unit/test_link_signers.py holds the two equal), so
links signed before still verify and links signed now verify anywhere; only the key derivation
and the HMAC's keying are done once. Verifying (``unsign``) is itsdangerous's own.
"""

from __future__ import annotations

import functools
import hashlib

from itsdangerous import Signer
from itsdangerous.encoding import base64_encode, want_bytes

from orchestrator.keyed_hash import PreparedHmac


class PreparedSigner(Signer):
    """A ``Signer`` (SHA-256, itsdangerous's default key derivation) whose derived key is
    prepared for HMAC once (:mod:`orchestrator.keyed_hash`). Safe to share between threads."""

    def __init__(self, secret: str, salt: str) -> None:
        super().__init__(secret, salt=salt, digest_method=hashlib.sha256)
        self._keyed = PreparedHmac(self.derive_key())

    def get_signature(self, value: str | bytes) -> bytes:
        return base64_encode(self._keyed.digest(want_bytes(value)))


@functools.lru_cache(maxsize=32)
def prepared_signer(secret: str, salt: str) -> PreparedSigner:
    """The process's signer for ``secret`` and ``salt`` (a handful of pairs exist)."""
    return PreparedSigner(secret, salt)
