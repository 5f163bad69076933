"""What hand-off tests share: a high-touch customer with a named CSM, and settings that send
CSM notices to a recording Slack endpoint (:func:`tests.support.webhook_receiver`)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from orchestrator.settings import Settings
from tests.support.environment import START, make_settings
from tests.support.signups import signup_payload
from tests.support.usage import API_KEY
from tests.support.webhook_receiver import Receiver

CSM = {"csm_name": "Hanako Sato", "csm_email": "hanako@vendor.example"}


def high_touch(external_id: str, **extra: Any) -> dict[str, Any]:
    """A signup 30 days old whose contract value makes it high touch, with its CSM."""
    signed_up = (START - timedelta(days=30)).isoformat()
    return signup_payload(
        external_id, annual_contract_value=3_600_000, signed_up_at=signed_up, **CSM, **extra
    )


def handoff_settings(tmp_path: Path, database_url: str, slack: Receiver) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        api_key=API_KEY,
        slack_webhook_url=slack.url,
        csm_team_email="cs-team@vendor.example",
    )


def slack_posts(slack: Receiver) -> list[dict[str, Any]]:
    """The JSON bodies the Slack endpoint received, in order."""
    return [json.loads(body) for body in slack.bodies()]
