"""Signed signups as the product's signup flow posts them, and the outbox they end in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from orchestrator.enrollment.signature import sign
from orchestrator.settings import Settings
from tests.support.environment import SECRET


def hook_time(client: TestClient) -> int:
    """Now, by the clock of the app behind ``client``: what the hook's freshness check reads."""
    return int(client.app.state.runtime.clock.now().timestamp())  # type: ignore[attr-defined]


def signed_headers(body: bytes, secret: str = SECRET, *, timestamp: int) -> dict[str, str]:
    ts = str(timestamp)
    return {
        "Content-Type": "application/json",
        "X-Stepmail-Timestamp": ts,
        "X-Stepmail-Signature": sign(secret, ts, body),
    }


def post_signup(
    client: TestClient, payload: dict[str, Any], secret: str = SECRET, timestamp: int | None = None
) -> Any:
    body = json.dumps(payload, ensure_ascii=False).encode()
    at = hook_time(client) if timestamp is None else timestamp
    return client.post(
        "/hooks/signup", content=body, headers=signed_headers(body, secret, timestamp=at)
    )


def signup_payload(external_id: str = "cust-1", **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "external_id": external_id,
        "email": f"{external_id}@customer.example",
        "name": "山田 太郎",
        "company": "株式会社サンプル",
        "plan": "business",
        "annual_contract_value": 360000,
        "locale": "ja",
        "timezone": "Asia/Tokyo",
    }
    payload.update(overrides)
    return payload


def outbox_files(settings: Settings) -> list[Path]:
    return sorted(settings.outbox_dir.glob("*.eml")) if settings.outbox_dir.exists() else []
