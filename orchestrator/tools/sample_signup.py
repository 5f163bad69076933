"""Post a signed sample signup to a running Stepmail (``make signup``).

Usage: ``python -m orchestrator.tools.sample_signup [TIER] [LOCALE]``; it prints the answer
and where the welcome mail will land.
"""

from __future__ import annotations

import json
import sys
import uuid

import httpx

from orchestrator.clock import SystemClock
from orchestrator.enrollment.signature import sign
from orchestrator.settings import DEVELOPMENT_SIGNUP_HOOK_SECRET, Settings, load_settings

SAMPLE_VALUES = {"high": 3_600_000, "low": 360_000, "tech": 36_000}


def main(argv: list[str]) -> int:
    tier = argv[0] if argv else "tech"
    locale = argv[1] if len(argv) > 1 else "ja"
    settings = load_settings()
    external_id = f"demo-{uuid.uuid4().hex[:8]}"
    payload = {
        "external_id": external_id,
        "email": f"{external_id}@example.com",
        "name": "山田 太郎" if locale == "ja" else "Jane Doe",
        "company": "株式会社サンプル" if locale == "ja" else "Sample Inc.",
        "annual_contract_value": SAMPLE_VALUES.get(tier, 36_000),
        "locale": locale,
        "csm_name": "佐藤 花子" if locale == "ja" else "Hanako Sato",
        "csm_email": "csm@example.com",
    }
    body = json.dumps(payload, ensure_ascii=False).encode()
    timestamp = str(int(SystemClock().now().timestamp()))  # a live server: real time
    headers = {
        "Content-Type": "application/json",
        "X-Stepmail-Timestamp": timestamp,
        "X-Stepmail-Signature": sign(_hook_secret(settings), timestamp, body),
    }
    url = f"http://{settings.host}:{settings.port}/hooks/signup"
    response = httpx.post(url, content=body, headers=headers, timeout=10)
    print(response.status_code, response.text)
    print(f"the welcome mail lands in {settings.outbox_dir.resolve()} within seconds")
    return 0 if response.status_code == 202 else 1


def _hook_secret(settings: Settings) -> str:
    """The server's secret if this shell has it, else the one `make run` accepts."""
    secret = settings.signup_hook_secret
    return secret.get_secret_value() if secret is not None else DEVELOPMENT_SIGNUP_HOOK_SECRET


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
