"""Signed survey links: one token per customer and survey, carrying the customer's random
``public_id`` and the survey id; the score rides in the query (``?score=7``), because every
score on the scale is an equally valid answer for whoever holds the link. A tampered token
fails verification; a token signed for the unsubscribe page is refused here (another salt)."""

from __future__ import annotations

from itsdangerous import BadSignature, Signer

from orchestrator.errors import InvalidUnsubscribeToken
from orchestrator.recipients.signers import prepared_signer

_SALT = "stepmail.survey.v1"
NPS_SCORES = range(11)  # 0-10


def _signer(secret: str) -> Signer:
    if not secret.strip():
        raise InvalidUnsubscribeToken("no signing secret")
    return prepared_signer(secret, _SALT)


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


_PROGRAM_SALT = "stepmail.program.v1"


def make_program_token(secret: str, public_id: str, program_id: str) -> str:
    """The signed registration link of one session for one customer."""
    return prepared_signer(secret, _PROGRAM_SALT).sign(f"{public_id}:{program_id}").decode()


def read_program_token(secret: str, token: str) -> tuple[str, str]:
    """``(public_id, program_id)``; InvalidUnsubscribeToken if not signed by us."""
    if not secret.strip():
        raise InvalidUnsubscribeToken("no signing secret")
    try:
        value = prepared_signer(secret, _PROGRAM_SALT).unsign(token)
    except BadSignature:
        raise InvalidUnsubscribeToken("invalid program token") from None
    public_id, _, program_id = value.decode("utf-8", "replace").rpartition(":")
    if not public_id or not program_id:
        raise InvalidUnsubscribeToken("invalid program token")
    return public_id, program_id


def program_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/programs/{token}"
