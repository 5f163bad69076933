"""The archive insert runs in a savepoint inside the transaction that records a batch's mails
as ``sent`` (archive/store.py ``write_archive``): an archive error is logged and the mails stay
recorded as sent. Without it PostgreSQL aborts the whole transaction, the rows stay
``sending`` and the lease hands the mails out again: sent twice."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from orchestrator.archive.store import write_archive
from orchestrator.db.tables import message_archive, scheduled_sends
from orchestrator.runtime import Runtime
from orchestrator.services.delivery import deliver_batch
from orchestrator.services.scheduling import claim_due_sends
from tests.support.signups import post_signup, signup_payload


def test_an_archive_error_never_undoes_sent(
    client: TestClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(2):
        assert post_signup(client, signup_payload(f"c{n}")).status_code == 202
    ids = claim_due_sends(runtime.engine, runtime.clock.now(), 10, timedelta(seconds=120))
    assert len(ids) == 2
    with runtime.engine.begin() as connection:  # the archive row is already there: a conflict
        connection.execute(
            insert(message_archive).values(
                send_id=ids[0],
                archived_at=runtime.clock.now(),
                subject="x",
                template_name="x",
                dictionary_id=None,
                size=1,
                body=b"x",
            )
        )
    with caplog.at_level(logging.WARNING):
        assert deliver_batch(runtime.delivery_deps(), ids) == ["sent", "sent"]
    with runtime.engine.connect() as connection:
        states = connection.execute(
            select(scheduled_sends.c.state).where(scheduled_sends.c.id.in_(ids))
        ).scalars()
        assert sorted(states) == ["sent", "sent"]
    assert any("not archived" in r.getMessage() for r in caplog.records)


def test_archive_rows_are_written_as_they_are(client: TestClient, runtime: Runtime) -> None:
    """PostgreSQL takes the rows in one COPY (text format, escaped by the driver): text that
    COPY would read as its own syntax, and every byte of a body, come back unchanged."""
    assert post_signup(client, signup_payload("c0")).status_code == 202
    ids = claim_due_sends(runtime.engine, runtime.clock.now(), 10, timedelta(seconds=120))
    subject = "tab\there, back\\slash \\N, \\x41 and 日本語"
    body = bytes(range(256)) * 3
    row = {
        "send_id": ids[0],
        "archived_at": runtime.clock.now(),
        "subject": subject,
        "template_name": "onboarding/welcome\\.html",
        "dictionary_id": None,
        "size": len(body),
        "body": body,
    }
    with runtime.engine.begin() as connection:
        write_archive(connection, [row])
    with runtime.engine.connect() as connection:
        stored = connection.execute(select(message_archive)).one()
    assert stored._asdict() == row


def test_a_key_the_table_does_not_have_is_left_out(client: TestClient, runtime: Runtime) -> None:
    """As SQLAlchemy's INSERT did (and still does on SQLite), the COPY takes the columns the
    table has."""
    assert post_signup(client, signup_payload("c0")).status_code == 202
    ids = claim_due_sends(runtime.engine, runtime.clock.now(), 10, timedelta(seconds=120))
    row = {
        "send_id": ids[0],
        "archived_at": runtime.clock.now(),
        "subject": "s",
        "template_name": "t",
        "dictionary_id": None,
        "size": 1,
        "body": b"x",
    }
    with runtime.engine.begin() as connection:
        write_archive(connection, [{**row, "no_such_column": 1}])
    with runtime.engine.connect() as connection:
        assert connection.execute(select(message_archive)).one()._asdict() == row
