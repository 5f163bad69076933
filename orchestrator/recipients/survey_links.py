"""Signed survey links: one token per customer and survey, carrying the customer's random
``public_id`` and the survey id; the score rides in the query (``?score=7``), because every
score on the scale is an equally valid answer for whoever holds the link. A tampered token
fails verification; a token signed for the unsubscribe page is refused here (another salt)."""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature, Signer

from orchestrator.errors import InvalidUnsubscribeToken

_SALT = "stepmail.survey.v1"
NPS_SCORES = range(11)  # 0-10


def _signer(secret: str) -> Signer:
    if not secret.strip():
        raise InvalidUnsubscribeToken("no signing secret")
    return Signer(secret, salt=_SALT, digest_method=hashlib.sha256)


def make_survey_token(secret: str, public_id: str, survey: str) -> str:
    return _signer(secret).sign(f"{public_id}:{survey}").decode()


def read_survey_token(secret: str, token: str) -> tuple[str, str]:
    """``(public_id, survey)`` inside ``token``; InvalidUnsubscribeToken if it was not signed
    by us."""
    try:
        value = _signer(secret).unsign(token).decode()
    except (BadSignature, UnicodeDecodeError):
        raise InvalidUnsubscribeToken("invalid survey token") from None
    public_id, _, survey = value.rpartition(":")
    if not public_id or not survey:
        raise InvalidUnsubscribeToken("invalid survey token")
    return public_id, survey


def survey_page_url(public_base_url: str, token: str) -> str:
    """The page; each score's link adds ``?score=N``."""
    return f"{public_base_url.rstrip('/')}/nps/{token}"
