"""Consent records (特定電子メール法): stored at enrollment, exported by the CLI; and the
footer check that refuses a template without the sender's legal identity."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.db.tables import consent_records
from orchestrator.runtime import Runtime
from tests.conftest import ROOT, START, post_signup, signup_payload
from tests.journey_files import write_journeys

runner = CliRunner()
ONE_STEP = "name: News\nsteps:\n  - id: hello\n    after: 0d\n    template: onboarding/welcome\n"
CONSENT = {
    "source": "webinar-form",
    "given_at": "2026-10-30T09:15:00+09:00",
    "text_version": "terms-2026-10",
    "details": {"form_url": "https://relay.example/webinars/signup"},
}


def records(runtime: Runtime) -> list[Any]:
    with runtime.engine.connect() as connection:
        return list(connection.execute(select(consent_records)).all())


def test_the_signups_consent_is_recorded_once(client: TestClient, runtime: Runtime) -> None:
    payload = signup_payload(consent=CONSENT)
    assert post_signup(client, payload).status_code == 202
    assert post_signup(client, payload).status_code == 202  # a repeated hook adds nothing

    (record,) = records(runtime)
    assert (record.source, record.text_version) == ("webinar-form", "terms-2026-10")
    assert record.given_at == datetime(2026, 10, 30, 0, 15, tzinfo=UTC)
    assert record.recorded_at == START
    assert record.details == {
        "form_url": "https://relay.example/webinars/signup",
        "email": "cust-1@customer.example",
    }


def test_without_consent_the_signup_itself_is_recorded(
    client: TestClient, runtime: Runtime
) -> None:
    signed_up = "2026-11-01T08:00:00+09:00"
    assert post_signup(client, signup_payload(signed_up_at=signed_up)).status_code == 202
    (record,) = records(runtime)
    assert (record.source, record.text_version) == ("signup", "signup-terms-v1")
    assert record.given_at == datetime.fromisoformat(signed_up)


def test_a_partial_consent_takes_the_defaults_for_the_rest(
    client: TestClient, runtime: Runtime
) -> None:
    post_signup(client, signup_payload(consent={"text_version": "v7"}))
    (record,) = records(runtime)
    assert (record.source, record.text_version, record.given_at) == ("signup", "v7", START)


@pytest.mark.parametrize(
    ("consent", "field"),
    [
        ({"given_at": "2026-10-30T09:15:00"}, "given_at"),
        ({"source": ""}, "source"),
        ({"source": "a\nb"}, "source"),
        ({"text_version": "x" * 101}, "text_version"),
        ({"agreed": True}, "agreed"),
    ],
)
def test_a_bad_consent_is_a_422_naming_the_field_and_stores_nothing(
    client: TestClient, runtime: Runtime, consent: dict[str, Any], field: str
) -> None:
    response = post_signup(client, signup_payload(consent=consent))
    assert response.status_code == 422
    assert ["body", "consent", field] in [error["loc"] for error in response.json()["detail"]]
    assert records(runtime) == []


@pytest.mark.parametrize("format", ["csv", "json"])
def test_consent_export_contains_the_record(
    client: TestClient, runtime: Runtime, database_url: str, tmp_path: Path, format: str
) -> None:
    post_signup(client, signup_payload(consent=CONSENT))
    post_signup(client, signup_payload("cust-2", name="Emily Tanaka"))
    out = tmp_path / f"consent.{format}"
    env = {"STEPMAIL_DATABASE_URL": database_url}

    result = runner.invoke(
        app, ["consent", "export", "--format", format, "--out", str(out)], env=env
    )

    assert result.exit_code == 0, result.output
    assert f"2 consent record(s) written to {out}" in result.output
    text = out.read_text("utf-8")
    rows: list[dict[str, Any]] = (
        list(csv.DictReader(io.StringIO(text))) if format == "csv" else json.loads(text)
    )
    assert [row["customer_external_id"] for row in rows] == ["cust-1", "cust-2"]
    first = rows[0]
    assert first["source"] == "webinar-form" and first["text_version"] == "terms-2026-10"
    assert first["given_at"] == "2026-10-30T00:15:00+00:00"
    assert first["email"] == "cust-1@customer.example"
    details = json.loads(first["details"]) if format == "csv" else first["details"]
    assert details["form_url"] == "https://relay.example/webinars/signup"


def test_consent_export_to_stdout(client: TestClient, database_url: str) -> None:
    post_signup(client, signup_payload())
    result = runner.invoke(app, ["consent", "export"], env={"STEPMAIL_DATABASE_URL": database_url})
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == (
        "customer_external_id,email,source,given_at,text_version,recorded_at,details"
    )


def test_consent_export_to_an_unwritable_place_is_a_clear_error(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "missing" / "consent.csv"
    result = runner.invoke(
        app, ["consent", "export", "--out", str(out)], env={"STEPMAIL_DATABASE_URL": database_url}
    )
    assert result.exit_code == 1
    assert f"{out}: cannot write" in result.output and "Traceback" not in result.output


def test_check_fails_a_template_whose_footer_lacks_the_postal_address(tmp_path: Path) -> None:
    journeys = write_journeys(tmp_path / "journeys", {"news": ONE_STEP})
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates" / "mail", templates)
    layout = templates / "layouts" / "base.html"
    text = layout.read_text("utf-8")
    assert text.count("{{ sender.postal_address }}<br>") == 2  # the ja and en footers
    layout.write_text(text.replace("{{ sender.postal_address }}<br>", ""), "utf-8")
    env = {
        "STEPMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'check.db'}",
        "STEPMAIL_JOURNEYS_DIR": str(journeys),
        "STEPMAIL_TEMPLATES_DIR": str(templates),
    }

    result = runner.invoke(app, ["check"], env=env)

    assert result.exit_code == 1
    output = result.output.replace("\n", "")
    for tier in ("high", "low", "tech"):
        for locale in ("ja", "en"):
            assert (
                f"onboarding/welcome.{tier}.{locale}.html: footer lacks the postal address "
                f"(news/hello, {tier}, {locale})"
            ) in output
    assert "footer lacks the sender name" not in output
    assert "6 problem(s)" in output
