"""``stepmail simulate --start``, scripted tier and contract changes, send windows and the
frequency cap, sends still pending at the end, and ``--json``: a simulation answers what the
pipeline would do from that moment, the same way every time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from tests.support.environment import ROOT, STANDARD_JOURNEYS

runner = CliRunner()
SATURDAY = "2026-11-07T10:00"  # the sample's local time (low, en: America/Los_Angeles)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "STEPMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'never-created.db'}",
        "STEPMAIL_JOURNEYS_DIR": str(STANDARD_JOURNEYS),
        "STEPMAIL_TEMPLATES_DIR": str(ROOT / "templates" / "mail"),
        "STEPMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
    }


def simulate(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = runner.invoke(
        app, ["simulate", "onboarding", "--tier", "low", "--locale", "en", *args, "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def mails(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["at"], e["what"]) for e in document["timeline"] if e["kind"] == "mail"]


def test_start_is_the_customer_s_local_time_and_the_run_is_reproducible(
    env: dict[str, str],
) -> None:
    first = simulate(env, "--start", SATURDAY, "--days", "4")
    assert first["schema"] == "stepmail.simulation/1"
    assert (first["start"], first["timezone"]) == (
        "2026-11-07T10:00:00-08:00",
        "America/Los_Angeles",
    )
    assert mails(first) == [
        ("2026-11-07T10:00:00-08:00", "onboarding/welcome"),
        ("2026-11-08T10:00:00-08:00", "onboarding/basics"),
        ("2026-11-10T10:00:00-08:00", "onboarding/faq"),
        ("2026-11-10T14:00:00-08:00", "onboarding/activation_nudge"),
    ]
    assert simulate(env, "--start", SATURDAY, "--days", "4") == first
    with_offset = simulate(env, "--start", "2026-11-07T18:00Z", "--days", "4")
    assert mails(with_offset) == mails(first)


def test_the_send_window_and_the_frequency_cap_defer_as_the_worker_would(
    env: dict[str, str],
) -> None:
    """Signed up on a Saturday with a weekday window and one mail a day: the welcome waits for
    Monday 09:00, and each later step for the next free day."""
    capped = {
        **env,
        "STEPMAIL_SEND_WINDOW": "Mon-Fri 09:00-18:00",
        "STEPMAIL_FREQUENCY_CAP": "1/day",
    }
    document = simulate(capped, "--start", SATURDAY, "--days", "5")
    assert mails(document) == [
        ("2026-11-09T09:00:00-08:00", "onboarding/welcome"),
        ("2026-11-10T09:00:00-08:00", "onboarding/basics"),
        ("2026-11-11T09:00:00-08:00", "onboarding/faq"),
        ("2026-11-12T09:00:00-08:00", "onboarding/activation_nudge"),
    ]
    assert [(e["what"], e["kind"]) for e in document["pending"]] == [
        ("onboarding/case_studies", "pending"),
        ("onboarding/feedback", "pending"),
    ]


def test_a_contract_change_moves_the_tier_and_what_follows_from_it(env: dict[str, str]) -> None:
    document = simulate(env, "--start", SATURDAY, "--days", "12", "--event", "10d:acv=3600000")
    day_ten = [(e["kind"], e["what"]) for e in document["timeline"] if e["day"] == 10]
    assert day_ten == [
        ("change", "acv"),
        ("event", "tier_changed"),
        ("task", "new_high_touch"),
        ("mail", "csm_introduction/introduction"),
    ]
    explicit = simulate(env, "--start", SATURDAY, "--days", "12", "--event", "10d:tier=high")
    assert ("mail", "csm_introduction/introduction") in [
        (e["kind"], e["what"]) for e in explicit["timeline"]
    ]


def test_the_text_form_lists_what_is_still_pending(env: dict[str, str]) -> None:
    result = runner.invoke(
        app,
        ["simulate", "onboarding", "--tier", "low", "--start", SATURDAY, "--days", "12"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    happened, _, pending = result.output.partition("still pending after day 12:")
    assert "onboarding/case_studies" in happened
    assert "onboarding/feedback" in pending and "onboarding/feedback" not in happened


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "next saturday"], "--start 'next saturday': expected a date and time"),
        (["--days", "0"], "--days must be from 1 to 3650, not 0"),
        (["--days", "3", "--event", "5d:login"], "--event at 5d is after the last simulated day"),
        (["--event", "2d:acv=lots"], "--event acv='lots'"),
        (["--event", "2d:tier=platinum"], "--event tier='platinum'"),
        (["--nps", "11"], "--nps must be from 0 to 10, not 11"),
    ],
)
def test_a_bad_flag_is_one_line(env: dict[str, str], args: list[str], message: str) -> None:
    result = runner.invoke(app, ["simulate", "onboarding", *args], env=env)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert message in " ".join(result.output.split())
