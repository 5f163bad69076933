""" "Nobody subscribes to this event" is believed for QUIET_FOR seconds per process, so a fact
nobody listens to costs no statement (webhooks/outbox.py): an endpoint added through the
service is used at once in that process, one added elsewhere within QUIET_FOR, and one disabled
anywhere gets nothing more at once (an answer naming endpoints is never remembered)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, update

from orchestrator.db.tables import webhook_endpoints, webhook_messages
from orchestrator.runtime import Runtime
from orchestrator.services.webhooks import OutgoingWebhookRules, add_endpoint
from orchestrator.settings import Settings
from orchestrator.webhooks import outbox
from orchestrator.webhooks.events import stored
from tests.support.environment import make_settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


def emit_counting(runtime: Runtime) -> tuple[int, int]:
    """(messages written, statements run) for one ``task.opened`` fact."""
    statements: list[str] = []

    def statement(_c: Any, _cur: Any, text: str, *_args: Any) -> None:
        statements.append(text)

    event.listen(runtime.engine, "before_cursor_execute", statement)
    try:
        with runtime.engine.begin() as connection:
            written = outbox.emit(connection, "task.opened", {"task_id": 1}, runtime.clock.now())
    finally:
        event.remove(runtime.engine, "before_cursor_execute", statement)
    return written, len([s for s in statements if not s.upper().startswith("BEGIN")])


def messages(runtime: Runtime) -> int:
    with runtime.engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(webhook_messages)).scalar_one()
        )


def test_nobody_listening_is_asked_once_per_quiet_period(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(outbox, "_clock", lambda: now[0])
    assert emit_counting(runtime) == (0, 1)  # asked: nobody
    assert emit_counting(runtime) == (0, 0)  # believed: no statement at all

    with runtime.engine.begin() as connection:  # another process adds one (the CLI, say)
        connection.execute(
            insert(webhook_endpoints).values(
                url="https://hooks.example.com/a",
                secret="whsec_x",
                events=stored(["task.opened"]),
                enabled=True,
                description="",
                created_at=runtime.clock.now(),
            )
        )
    now[0] += outbox.QUIET_FOR - 0.1
    assert emit_counting(runtime) == (0, 0)  # within QUIET_FOR: not yet seen here
    now[0] += 0.2
    assert emit_counting(runtime)[0] == 1  # past it: asked again, and written

    with runtime.engine.begin() as connection:  # disabled elsewhere: nothing more, at once
        connection.execute(update(webhook_endpoints).values(enabled=False))
    assert emit_counting(runtime) == (0, 1)
    assert messages(runtime) == 1


def test_an_endpoint_added_through_the_service_is_used_at_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "_clock", lambda: 1000.0)  # the quiet period never ends
    assert emit_counting(runtime) == (0, 1)
    add_endpoint(
        runtime.engine,
        "https://hooks.example.com/b",
        ["task.opened"],
        rules=OutgoingWebhookRules(allow_private=True, timeout=1, max_attempts=1, batch_size=1),
        clock=runtime.clock,
    )
    assert emit_counting(runtime)[0] == 1
