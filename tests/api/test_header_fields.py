"""Header-bound fields end to end: what the API, the CSV import and the CLI refuse, and what
a legitimate but hostile-looking value becomes in the mail.

A raw control character (CR, LF, NUL, NEL, VT, U+2028 …) in a field that reaches a header is
refused with 422 (or one CLI line) naming the field. An RFC 2047 encoded-word is legitimate
text: it is stored, and arrives in the inbox as that literal text, with exactly the headers
the mail should have, on the outbox and over SMTP (Python before 3.11.10 would decode it and
write its CR/LF back as new header lines: CVE-2024-6923).
"""

from __future__ import annotations

import base64
import email
import re
from collections.abc import Iterator
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.db.migrate import upgrade
from orchestrator.db.tables import customers, scheduled_sends
from orchestrator.errors import ConfigurationError
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.transports.smtp import SmtpTransport
from tests.fakes.smtp_server import RecordingHandler, start_server
from tests.support.delivery import run_due, with_transport
from tests.support.environment import make_settings
from tests.support.signups import outbox_files, post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, event, post_events

_B = base64.b64encode(b"x\r\nBcc: victim@evil.com\r\nX-Injected: 1").decode()
ENCODED_WORDS = {
    "q": "=?utf-8?q?x=0D=0ABcc=3A_victim=40evil.com=0D=0AX-Injected=3A_1?=",
    "q, blank line": "=?utf-8?q?x=0D=0A=0D=0AX-Injected=3A_1?=",
    "b": f"=?utf-8?b?{_B}?=",
}
CONTROLS = {
    "CR LF": "x\r\nBcc: victim@evil.com",
    "LF": "x\nX-Injected: 1",
    "NUL": "x\x00y",
    "NEL": "x\x85y",
    "VT": "x\x0by",
    "FF": "x\x0cy",
    "U+2028": "x\u2028y",
    "U+2029": "x\u2029y",
}
CUSTOMER_MAIL_HEADERS = [
    "Subject",
    "From",
    "To",
    "Reply-To",
    "Message-ID",
    "Date",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
]
TASK_MAIL_HEADERS = ["Subject", "From", "To", "Message-ID", "Date", "MIME-Version", "Content-Type"]
HIGH_TOUCH = {
    "tier": "high",
    "locale": "en",
    "annual_contract_value": 3_600_000,
    "csm_email": "hanako@vendor.example",
}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


@pytest.fixture
def smtp_server() -> Iterator[tuple[RecordingHandler, Controller]]:
    handler = RecordingHandler()
    controller = start_server(handler)
    yield handler, controller
    controller.stop()


def unfolded(value: Any) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", str(value))


def decoded(value: Any) -> str:
    return str(make_header(decode_header(unfolded(value))))


def display_name(value: Any) -> str:
    return decoded(unfolded(value).rpartition("<")[0].strip())


def checked(data: bytes, expected_headers: list[str], html_ends: str = "</html>") -> Message:
    """The message with exactly the expected headers, each once, and an intact body."""
    message = email.message_from_bytes(data, policy=policy.compat32)
    assert message.keys() == expected_headers
    parsed = email.message_from_bytes(data, policy=policy.default)
    types = [part.get_content_type() for part in parsed.iter_parts()]
    assert types == ["text/plain", "text/html"]
    html = parsed.get_body(preferencelist=("html",))
    assert html is not None
    assert str(html.get_content()).rstrip().endswith(html_ends)
    return message


def assert_literal_in_welcome(message: Message, hostile: str) -> None:
    subject = decoded(message["Subject"])
    assert subject == f"Welcome to Relay, {hostile}: let's plan your rollout"
    assert display_name(message["To"]) == hostile
    assert display_name(message["From"]) == f"{hostile} (Acme Cloud)"
    assert display_name(message["Reply-To"]) == hostile
    assert "hanako@vendor.example" in message["Reply-To"]


@pytest.mark.parametrize("form", list(ENCODED_WORDS))
def test_an_encoded_word_in_a_signup_arrives_as_text_in_the_outbox(
    client: TestClient, runtime: Runtime, settings: Settings, form: str
) -> None:
    hostile = ENCODED_WORDS[form]
    payload = signup_payload("c1", company=hostile, name=hostile, csm_name=hostile, **HIGH_TOUCH)
    assert post_signup(client, payload).status_code == 202
    assert run_due(runtime) == ["sent"]

    [path] = outbox_files(settings)
    assert_literal_in_welcome(checked(path.read_bytes(), CUSTOMER_MAIL_HEADERS), hostile)


@pytest.mark.parametrize("form", list(ENCODED_WORDS))
def test_an_encoded_word_in_a_signup_arrives_as_text_over_smtp(
    client: TestClient,
    runtime: Runtime,
    smtp_server: tuple[RecordingHandler, Controller],
    form: str,
) -> None:
    handler, controller = smtp_server
    with_transport(runtime, SmtpTransport("127.0.0.1", controller.port, timeout=2.0))
    hostile = ENCODED_WORDS[form]
    payload = signup_payload("c1", company=hostile, name=hostile, csm_name=hostile, **HIGH_TOUCH)
    assert post_signup(client, payload).status_code == 202
    assert run_due(runtime) == ["sent"]

    [received] = handler.received
    assert received.rcpt_tos == ["c1@customer.example"]
    assert_literal_in_welcome(checked(received.data, CUSTOMER_MAIL_HEADERS), hostile)


@pytest.mark.parametrize("form", list(ENCODED_WORDS))
def test_an_encoded_word_set_by_patch_arrives_as_text(
    client: TestClient, runtime: Runtime, settings: Settings, form: str
) -> None:
    assert post_signup(client, signup_payload("c1", **HIGH_TOUCH)).status_code == 202
    hostile = ENCODED_WORDS[form]
    response = client.patch(
        "/v1/customers/c1",
        json={"company": hostile, "name": hostile, "csm_name": hostile},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    assert run_due(runtime) == ["sent"]  # rendered with the data of send time

    [path] = outbox_files(settings)
    assert_literal_in_welcome(checked(path.read_bytes(), CUSTOMER_MAIL_HEADERS), hostile)


@pytest.mark.parametrize("field", ["company", "external_id"])
@pytest.mark.parametrize("form", list(ENCODED_WORDS))
def test_an_encoded_word_in_the_csm_task_mail_subject_stays_text(
    client: TestClient, runtime: Runtime, settings: Settings, form: str, field: str
) -> None:
    hostile = ENCODED_WORDS[form]
    ids = {"company": "", "external_id": hostile, field: hostile}
    payload = signup_payload(
        ids["external_id"], email="c1@customer.example", company=ids["company"], **HIGH_TOUCH
    )
    assert post_signup(client, payload).status_code == 202
    detractor = event(ids["external_id"], "nps_submitted", properties={"score": 2})
    assert post_events(client, detractor).status_code == 202

    [task_mail] = [
        data
        for data in (path.read_bytes() for path in outbox_files(settings))
        if decoded(email.message_from_bytes(data)["Subject"]).startswith("[Stepmail] Task")
    ]
    message = checked(task_mail, TASK_MAIL_HEADERS, html_ends="</pre>")
    assert decoded(message["Subject"]).endswith(f"nps_detractor - {hostile}")


@pytest.mark.parametrize("field", ["name", "company", "csm_name", "plan", "external_id"])
def test_a_signup_with_a_control_character_in_a_header_field_gets_422(
    client: TestClient, runtime: Runtime, field: str
) -> None:
    for control, text in CONTROLS.items():
        payload = signup_payload("c1", **{**HIGH_TOUCH, "csm_name": "Hanako"})
        payload[field] = f"Acme {text}"
        response = post_signup(client, payload)

        assert response.status_code == 422, (control, response.text)
        assert ["body", field] in [error["loc"] for error in response.json()["detail"]], control
    with runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(customers)).scalar() == 0


@pytest.mark.parametrize("field", ["email", "csm_email"])
def test_a_signup_with_a_control_character_in_an_address_gets_422(
    client: TestClient, field: str
) -> None:
    for control in ["CR LF", "NUL", "NEL", "U+2028"]:
        payload = signup_payload("c1", **HIGH_TOUCH)
        payload[field] = f"a{CONTROLS[control]}@customer.example"
        response = post_signup(client, payload)
        assert response.status_code == 422, control
        assert ["body", field] in [error["loc"] for error in response.json()["detail"]]


@pytest.mark.parametrize("field", ["name", "company", "csm_name", "plan", "email", "csm_email"])
def test_a_patch_with_a_control_character_in_a_header_field_gets_422(
    client: TestClient, runtime: Runtime, field: str
) -> None:
    assert post_signup(client, signup_payload("c1", **HIGH_TOUCH)).status_code == 202
    for control, text in CONTROLS.items():
        value = f"a{text}@customer.example" if field.endswith("email") else f"Acme {text}"
        response = client.patch("/v1/customers/c1", json={field: value}, headers=AUTH)

        assert response.status_code == 422, (control, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", field], control
    with runtime.engine.connect() as connection:
        row = connection.execute(select(customers)).one()
    assert (row.company, row.name, row.plan) == ("株式会社サンプル", "山田 太郎", "business")


def test_a_csv_row_or_a_flag_with_a_control_character_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(database)
    env = {"STEPMAIL_DATABASE_URL": database, "STEPMAIL_OUTBOX_DIR": str(tmp_path / "outbox")}
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(
        "external_id,email,name,company\n"
        "c1,c1@example.com,C One,Good Inc.\n"
        "c2,c2@example.com,C Two,Bad\u2028Inc.\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(app, ["enroll", "--csv", str(csv_path)], env=env)
    assert result.exit_code == 2
    assert f"{csv_path}:3: company:" in result.output.replace("\n", "")
    assert "U+2028" in result.output and "Traceback" not in result.output

    flags = ["enroll", "--external-id", "c3", "--email", "c3@example.com", "--name", "C\x85Three"]
    result = runner.invoke(app, flags, env=env)
    assert result.exit_code == 2
    assert "--name:" in result.output and "U+0085" in result.output


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("sender_name", "Acme\r\nBcc: victim@evil.com"),
        ("sender_name", "Acme\u2028Cloud"),
        ("sender_email", "onboarding@acme.example>, victim@evil.com"),
        ("csm_team_email", "cs team@acme.example"),
    ],
)
def test_a_header_bound_setting_stops_start_up_naming_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"STEPMAIL_{variable.upper()}"):
        make_settings(tmp_path, "sqlite://", **{variable: value})


def test_a_stored_address_no_header_can_carry_fails_that_send_for_good(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    """Data written around the API reaches the mail layer, which refuses it on its own."""
    assert post_signup(client, signup_payload("c1", **HIGH_TOUCH)).status_code == 202
    with runtime.engine.begin() as connection:
        connection.execute(update(customers).values(email="c1@customer.example>, victim@evil.com"))
    assert run_due(runtime) == ["failed"]
    assert outbox_files(settings) == []
    with runtime.engine.connect() as connection:
        [reason] = connection.execute(
            select(scheduled_sends.c.reason).where(scheduled_sends.c.state == "failed")
        ).scalars()
    assert "not a plain local@domain" in reason
