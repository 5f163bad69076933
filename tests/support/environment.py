"""The test installation: paths, the signing secret, the start of frozen time, and settings
built the way every test builds them."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
# A frozen copy of the shipped journeys: behaviour tests never move when those are edited.
STANDARD_JOURNEYS = ROOT / "tests" / "journeys" / "standard"
SECRET = "test-signup-secret"
START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # a Monday, 10:00 in Tokyo
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_server(variable: str) -> str:
    """The URL of a real server for an integration test: skip locally, fail in CI."""
    url = os.environ.get(variable)
    if not url:
        if IN_CI:
            pytest.fail(f"{variable} is not set; CI must run integration tests on real servers")
        pytest.skip(f"{variable} not set")
    return url


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings for one test: its database, its outbox, the test journeys (a frozen copy of
    the shipped ones, so editing those never moves a behaviour test) and the shipped templates."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "outbox_dir": tmp_path / "outbox",
        "journeys_dir": STANDARD_JOURNEYS,
        "templates_dir": ROOT / "templates" / "mail",
        "signup_hook_secret": SECRET,
        "public_base_url": "https://stepmail.example.com",
        "sender_name": "Acme Cloud",
        "sender_email": "onboarding@acme.example",
        "sender_postal_address": "1-2-3 Marunouchi, Chiyoda-ku, Tokyo",
        "sender_contact": "support@acme.example",
    }
    values.update(overrides)
    return load_settings(**values)


class FixedDraw:
    """A random source that always draws ``value``: retry jitter made predictable (0 = none)."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def random(self) -> float:
        return self.value
