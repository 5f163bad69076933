"""Signed unsubscribe tokens. They carry the customer's random ``public_id``, never a
sequential id, and a tampered token fails verification."""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature, Signer

from orchestrator.errors import StepmailError

_SALT = "stepmail.unsubscribe.v1"


class InvalidUnsubscribeToken(StepmailError):
    """Raised when an unsubscribe token was not signed by us (tampered or truncated)."""


def make_unsubscribe_token(secret: str, public_id: str) -> str:
    return Signer(secret, salt=_SALT, digest_method=hashlib.sha256).sign(public_id).decode()


def read_unsubscribe_token(secret: str, token: str) -> str:
    """The ``public_id`` inside ``token``; InvalidUnsubscribeToken if the signature is wrong."""
    try:
        return Signer(secret, salt=_SALT, digest_method=hashlib.sha256).unsign(token).decode()
    except (BadSignature, UnicodeDecodeError):
        raise InvalidUnsubscribeToken("invalid unsubscribe token") from None


def unsubscribe_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/unsubscribe/{token}"
