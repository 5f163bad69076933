"""``stepmail consent export``: every consent record, to a file or stdout."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.db.tables import consent_records
from orchestrator.runtime import Runtime
from tests.support.signups import post_signup, signup_payload

runner = CliRunner()
CONSENT = {
    "source": "webinar-form",
    "given_at": "2026-10-30T09:15:00+09:00",
    "text_version": "terms-2026-10",
    "details": {"form_url": "https://relay.example/webinars/signup"},
}


def records(runtime: Runtime) -> list[Any]:
    with runtime.engine.connect() as connection:
        return list(connection.execute(select(consent_records)).all())


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
    assert result.exit_code == 74
    assert f"{out}: cannot write" in result.output and "Traceback" not in result.output


def test_consent_export_filters_by_customer_and_date_range(
    client: TestClient, database_url: str
) -> None:
    """A data-subject request asks for one person's records; an audit for a period's."""
    for n, given in enumerate(("2026-09-30T23:30:00+00:00", "2026-10-15T10:00:00+00:00")):
        consent = {**CONSENT, "given_at": given}
        post_signup(client, signup_payload(f"c{n}", consent=consent))
    env = {"STEPMAIL_DATABASE_URL": database_url}

    def exported(*flags: str) -> list[str]:
        result = runner.invoke(app, ["consent", "export", "--format", "json", *flags], env=env)
        assert result.exit_code == 0, result.output
        return [row["customer_external_id"] for row in json.loads(result.stdout)]

    assert exported() == ["c0", "c1"]
    assert exported("--customer", "c1") == ["c1"]
    assert exported("--customer", "nobody") == []
    assert exported("--since", "2026-10-01") == ["c1"]
    assert exported("--until", "2026-09-30") == ["c0"]  # a date includes its whole day
    assert exported("--since", "2026-09-30T23:00:00Z", "--until", "2026-10-01") == ["c0"]
    bad = runner.invoke(app, ["consent", "export", "--since", "last week"], env=env)
    assert bad.exit_code == 2 and "--since: not a date or ISO 8601 time" in bad.stderr
    backwards = runner.invoke(
        app, ["consent", "export", "--since", "2026-10-02", "--until", "2026-10-01"], env=env
    )
    assert backwards.exit_code == 2 and "--since must be before --until" in backwards.stderr
