"""Signed unsubscribe tokens. They carry the customer's random ``public_id``, never a
sequential id, and a tampered token fails verification."""

from __future__ import annotations

from urllib.parse import quote

from itsdangerous import BadSignature

from orchestrator.customers.addresses import mailto_address
from orchestrator.errors import InvalidUnsubscribeToken
from orchestrator.recipients.signers import prepared_signer

_SALT = "stepmail.unsubscribe.v1"


def make_unsubscribe_token(secret: str, public_id: str) -> str:
    if not secret.strip():
        raise ValueError("an unsubscribe token needs a signing secret")
    return prepared_signer(secret, _SALT).sign(public_id).decode()


def read_unsubscribe_token(secret: str, token: str) -> str:
    """The ``public_id`` inside ``token``; InvalidUnsubscribeToken if the signature is wrong."""
    if not secret.strip():
        raise InvalidUnsubscribeToken("no unsubscribe signing secret")
    try:
        public_id = prepared_signer(secret, _SALT).unsign(token).decode()
    except (BadSignature, UnicodeDecodeError):
        raise InvalidUnsubscribeToken("invalid unsubscribe token") from None
    # base64 has spellings that decode to the same signature (added ``=`` padding, other
    # values of the last character's unused bits): only the one we issued is accepted.
    if make_unsubscribe_token(secret, public_id) != token:
        raise InvalidUnsubscribeToken("invalid unsubscribe token")
    return public_id


def unsubscribe_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/unsubscribe/{token}"


def list_unsubscribe_header(url: str, mailto: str | None = None) -> str:
    """``List-Unsubscribe``: the one-click URL first (RFC 8058), then a ``mailto:`` if set.

    The mailto carries the link in its body, so whoever reads that mailbox knows whom to stop.
    """
    targets = [f"<{url}>"]
    if mailto:
        query = f"subject=unsubscribe&body={quote(url, safe='')}"
        targets.append(f"<mailto:{mailto_address(mailto)}?{query}>")
    return ", ".join(targets)
