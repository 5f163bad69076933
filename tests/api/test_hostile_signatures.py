"""Odd signature headers on both hooks get 401, never a 500 with a traceback: non-ASCII bytes,
timestamps of 309 digits or in other scripts' digits, empty and whitespace values."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from orchestrator.enrollment.signature import sign, verify
from orchestrator.errors import InvalidSignature
from tests.fakes.sendgrid_events import SIGNATURE, TIMESTAMP
from tests.support.environment import SECRET, START
from tests.support.hostile import SIGNER, armed_client, armed_runtime

__all__ = ["armed_client", "armed_runtime"]

NOW = SG_NOW = str(int(START.timestamp()))  # the armed runtime's frozen clock: both hooks
HUGE = "9" * 309  # float(HUGE) overflows
ODD_TIMESTAMPS = [
    pytest.param(HUGE, id="309-digits"),
    pytest.param("-" + HUGE, id="minus-309-digits"),
    pytest.param("١٧٠٠٠٠٠٠٠٠", id="arabic-indic-digits"),
    pytest.param("१२३", id="devanagari-digits"),
    pytest.param("1e9", id="exponent"),
    pytest.param(" ", id="blank"),
    pytest.param("0x10", id="hex"),
]
ODD_SIGNATURES = [
    pytest.param(b"v1=\xe9", id="latin1-byte"),
    pytest.param(b"\xff\xfe", id="ff-fe"),
    pytest.param("v1=" + "é" * 64, id="utf8-letters"),
    pytest.param("", id="empty"),
    pytest.param(",,,", id="commas"),
    pytest.param("v1=" + "0" * 10_000, id="long"),
]


def _signup(client: TestClient, timestamp: str | bytes, signature: str | bytes) -> int:
    headers = {"X-Stepmail-Timestamp": timestamp, "X-Stepmail-Signature": signature}
    response = client.post("/hooks/signup", content=b"{}", headers=headers)
    return int(response.status_code)


def _sendgrid(client: TestClient, timestamp: str | bytes, signature: str | bytes) -> int:
    headers = {TIMESTAMP: timestamp, SIGNATURE: signature}
    response = client.post("/hooks/sendgrid", content=b"[]", headers=headers)
    return int(response.status_code)


def test_an_odd_timestamp_is_a_401_on_both_hooks(armed_client: TestClient) -> None:
    for param in ODD_TIMESTAMPS:
        [timestamp] = param.values
        assert isinstance(timestamp, str)
        good_sg = SIGNER.sign(b"[]", timestamp)
        good_hmac = sign(SECRET, timestamp, b"{}")
        assert _signup(armed_client, timestamp.encode(), good_hmac) == 401, param.id
        assert _sendgrid(armed_client, timestamp.encode(), good_sg) == 401, param.id


def test_an_odd_signature_is_a_401_on_both_hooks(armed_client: TestClient) -> None:
    for param in ODD_SIGNATURES:
        [signature] = param.values
        encoded = signature.encode() if isinstance(signature, str) else signature
        assert isinstance(encoded, bytes)
        assert _signup(armed_client, NOW, encoded) == 401, param.id
        assert _sendgrid(armed_client, SG_NOW, encoded) == 401, param.id


def test_a_good_signature_among_odd_ones_still_counts(armed_client: TestClient) -> None:
    """Rotation: several values separated by commas; a non-ASCII one must not break the rest."""
    good = sign(SECRET, NOW, b"{}")
    assert _signup(armed_client, NOW, f"v1=é,{good}".encode()) == 422  # verified, then parsed


@pytest.mark.parametrize("signature", ["v1=é", "v1=あ", "v1=\x00"])
def test_verify_refuses_non_ascii_signatures_cleanly(signature: str) -> None:
    with pytest.raises(InvalidSignature, match="no v1="):
        verify(SECRET, NOW, signature, b"{}", now=float(NOW), tolerance=300)


@pytest.mark.parametrize("timestamp", ODD_TIMESTAMPS)
def test_verify_refuses_odd_timestamps_cleanly(timestamp: str) -> None:
    with pytest.raises(InvalidSignature, match="unix seconds"):
        verify(SECRET, timestamp, "v1=00", b"{}", now=float(NOW), tolerance=300)
