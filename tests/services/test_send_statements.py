"""What a batch of mails costs the database, counted (never timed): the claim, what the
decisions read and the sent rows are shared by the batch; each mail adds exactly its one
hand-over statement, committed before its transport call, on a connection the batch keeps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from orchestrator.db.tables import message_archive
from orchestrator.delivery.hand_over import HandOverLog
from orchestrator.runtime import Runtime
from orchestrator.services.delivery import deliver_batch
from orchestrator.services.scheduling import claim_due_sends
from orchestrator.webhooks import outbox
from tests.support.signups import post_signup, signup_payload

LEASE = timedelta(seconds=120)


def deliver_counting(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, send_ids: list[int]
) -> dict[str, int]:
    tally = {"statements": 0, "commits": 0, "hand_overs": 0, "checkouts": 0}

    def statement(*_args: Any) -> None:
        tally["statements"] += 1

    def commit(*_args: Any) -> None:
        tally["commits"] += 1

    def checkout(*_args: Any) -> None:
        tally["checkouts"] += 1

    original = HandOverLog.hand_over

    def hand_over(self: HandOverLog, *args: Any) -> dict[int, int]:
        tally["hand_overs"] += 1
        return original(self, *args)

    monkeypatch.setattr(HandOverLog, "hand_over", hand_over)
    event.listen(runtime.engine, "before_cursor_execute", statement)
    event.listen(runtime.engine, "commit", commit)
    event.listen(runtime.engine.pool, "checkout", checkout)
    try:
        outcomes = deliver_batch(runtime.delivery_deps(), send_ids)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", statement)
        event.remove(runtime.engine, "commit", commit)
        event.remove(runtime.engine.pool, "checkout", checkout)
        monkeypatch.setattr(HandOverLog, "hand_over", original)
    assert outcomes == ["sent"] * len(send_ids)
    return tally


def test_a_batch_costs_its_hand_overs_and_a_fixed_number_of_statements(
    client: TestClient, runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite hands each mail over in a transaction of its own (BEGIN IMMEDIATE)")
    monkeypatch.setattr(outbox, "QUIET_FOR", 3600.0)  # as the first batch found: nobody listens
    for n in range(8):
        assert post_signup(client, signup_payload(f"c{n}")).status_code == 202
    ids = claim_due_sends(runtime.engine, runtime.clock.now(), 100, LEASE)
    assert len(ids) == 8
    # the first batch also stores the template's compression dictionary (once per template:
    # orchestrator/archive) and asks which webhook endpoints take mail.sent (none: believed
    # for QUIET_FOR seconds in this process), so the counts are taken after it
    deliver_counting(runtime, monkeypatch, ids[:1])
    small = deliver_counting(runtime, monkeypatch, ids[1:3])
    large = deliver_counting(runtime, monkeypatch, ids[3:])
    assert (small["hand_overs"], large["hand_overs"]) == (2, 5)  # one per mail, before its call
    # claim + facts + the customers' open CSM tasks (a journey's mails are held while one it
    # names is open) in one transaction; then in one transaction the last attempt, the sent
    # rows, a savepoint and its release around the archived mails (an archive error must not
    # undo "sent", tests/services/test_archive_savepoint.py), which go in one COPY through the
    # driver, not counted here: the archive has a row for each mail
    assert small["statements"] == large["statements"] == 7
    assert small["commits"] == large["commits"] == 2
    with runtime.engine.connect() as connection:
        archived = connection.execute(select(func.count()).select_from(message_archive))
        assert archived.scalar_one() == len(ids)
    # the claim, the hand-overs' own connection, the end: never one check-out per mail
    assert small["checkouts"] == large["checkouts"] == 3
