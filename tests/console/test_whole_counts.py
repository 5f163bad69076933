"""The console counts and lists everything, not a window of it: the home page's tiles are
whole counts (a tile once said 100 unknown sends, or 200 overdue tasks, where the chart on the
same page said more), the inbox pages through every task, and a customer's timeline leaves
out older mails exactly where it leaves out older events. On PostgreSQL each list reads its
page through an index, never a scan of the table's whole history."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, insert, select, text

from orchestrator.db.tables import (
    csm_tasks,
    customers,
    enrollments,
    provider_events,
    scheduled_sends,
    send_holds,
    suppressions,
    usage_events,
)
from orchestrator.handoff.tasks import TaskStatus
from orchestrator.runtime import Runtime
from orchestrator.services import customer_directory, operations, task_inbox
from orchestrator.services.suppressions import list_suppressions_page
from orchestrator.services.tasks import list_tasks_page
from tests.support.console import address, console_client, sign_in
from tests.support.delivery import run_due
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import event_row

EN = {"Accept-Language": "en"}


@pytest.fixture
def console(runtime: Runtime) -> Iterator[TestClient]:
    yield from console_client(runtime)


def test_the_home_tiles_are_whole_counts(console: TestClient, runtime: Runtime) -> None:
    customer_id, enrollment_id = _signed_up(console, runtime, "c1")
    now = runtime.clock.now()
    _store(
        runtime,
        scheduled_sends,
        [_send(customer_id, enrollment_id, n, "unknown", now) for n in range(120)],
    )
    overdue = [_task(customer_id, n, now - timedelta(days=1, minutes=n)) for n in range(230)]
    later = [_task(customer_id, 300 + n, now + timedelta(days=2)) for n in range(5)]
    mine = [
        {**_task(customer_id, 400 + n, now + timedelta(days=3)), "assignee": address("viewer")}
        for n in range(15)
    ]
    _store(runtime, csm_tasks, overdue + later)
    _store(runtime, csm_tasks, mine)  # one set of columns a statement
    sign_in(console, "viewer")
    page = console.get("/console/", headers=EN).text

    assert _figure(page, "sends whose outcome is unknown") == 120
    assert _figure(page, "overdue tasks in the team") == 230
    assert re.search(r'<span class="muted">\(250 open\)</span>', page)
    assert _figure(page, "open tasks assigned to you") == 15
    assert page.count('<li class="">') == 10  # the first ten of mine are listed


def test_the_inbox_pages_through_every_task(console: TestClient, runtime: Runtime) -> None:
    customer_id, _ = _signed_up(console, runtime, "c1")
    now = runtime.clock.now()
    due = [now + timedelta(hours=n // 3) for n in range(230)]  # three share each moment
    _store(runtime, csm_tasks, [_task(customer_id, n, at) for n, at in enumerate(due)])
    closed = [
        {
            **_task(customer_id, 500 + n, now, kind="old_kind" if n == 0 else "at_risk"),
            "status": "closed",
            "closed_at": now - timedelta(days=30) + timedelta(hours=n // 4),
        }
        for n in range(150)
    ]
    _store(runtime, csm_tasks, closed)
    sign_in(console, "viewer")

    open_ids = _every_page(console, "/console/inbox?scope=team")
    closed_ids = _every_page(console, "/console/inbox?scope=team&status=closed")
    with runtime.engine.connect() as connection:
        ordered = (
            connection.execute(
                select(csm_tasks.c.id)
                .where(csm_tasks.c.status == "open")
                .order_by(csm_tasks.c.due_at, csm_tasks.c.id)
            )
            .scalars()
            .all()
        )
        latest_closed = (
            connection.execute(
                select(csm_tasks.c.id)
                .where(csm_tasks.c.status == "closed")
                .order_by(csm_tasks.c.closed_at.desc(), csm_tasks.c.id.desc())
            )
            .scalars()
            .all()
        )
    assert open_ids == ordered and len(open_ids) == 230
    assert closed_ids == latest_closed and len(closed_ids) == 150
    page = console.get("/console/inbox?scope=team&status=closed", headers=EN).text
    assert '<option value="old_kind">' in page  # the oldest closed task's kind, in the filter
    nowhere = console.get("/console/inbox?scope=team&after=2147483647", headers=EN)
    assert _ids(nowhere.text) == ordered[:100]  # a task that is not there: the first page
    assert console.get("/console/inbox?after=x%0d%0a", headers=EN).status_code == 404


def test_the_timeline_leaves_out_older_mails_where_it_leaves_out_older_events(
    client: TestClient, runtime: Runtime
) -> None:
    """The welcome mail is older than the latest events shown: left out with the event
    between them, and the page says older lines are not shown."""
    assert post_signup(client, signup_payload("a1")).status_code == 202
    assert run_due(runtime) == ["sent"]
    with runtime.engine.connect() as connection:
        customer_id = connection.execute(select(customers.c.id)).scalar_one()
    start = runtime.clock.now()
    first = event_row(customer_id, "fr", "first_report", start + timedelta(days=1))
    logins = [
        event_row(customer_id, f"l{n}", "login", start + timedelta(days=5, minutes=n))
        for n in range(customer_directory.EVENTS_SHOWN)
    ]
    few = customer_directory.customer_profile(runtime.engine, "a1", journeys=runtime.journeys)
    _store(runtime, usage_events, [first, *logins])
    full = customer_directory.customer_profile(runtime.engine, "a1", journeys=runtime.journeys)

    assert [m.kind for m in few.timeline] == ["mail"] and not few.timeline_cut
    assert full.timeline_cut
    assert {m.kind for m in full.timeline} == {"event"}
    assert len(full.timeline) == customer_directory.EVENTS_SHOWN


@pytest.mark.parametrize("status", ["open", "closed", None])
def test_the_task_api_pages_through_every_task(
    console: TestClient, runtime: Runtime, status: TaskStatus | None
) -> None:
    customer_id, _ = _signed_up(console, runtime, "c1")
    now = runtime.clock.now()
    due = [now + timedelta(hours=n // 3) for n in range(60)]  # three share each moment
    _store(runtime, csm_tasks, [_task(customer_id, n, at) for n, at in enumerate(due)])
    closed = [
        {**_task(customer_id, 100 + n, at), "status": "closed", "closed_at": now}
        for n, at in enumerate(due[::2])
    ]
    _store(runtime, csm_tasks, closed)
    seen: list[int] = []
    cursor = None
    while True:
        page = list_tasks_page(runtime.engine, status=status, cursor=cursor, limit=7)
        seen += [task.id for task in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    query = select(csm_tasks.c.id).order_by(csm_tasks.c.due_at, csm_tasks.c.id)
    if status is not None:
        query = query.where(csm_tasks.c.status == status)
    with runtime.engine.connect() as connection:
        assert seen == list(connection.execute(query).scalars())
    assert len(seen) == {"open": 60, "closed": 30, None: 90}[status]


def test_each_list_reads_its_page_through_an_index(console: TestClient, runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    customer_id, enrollment_id = _signed_up(console, runtime, "c1")
    other, _ = _signed_up(console, runtime, "c2")
    now = runtime.clock.now()
    many = 3_000
    _store(
        runtime,
        scheduled_sends,
        [
            _send(customer_id, enrollment_id, n, "unknown" if n < 3 else "sent", now)
            for n in range(many)
        ],
    )
    _store(
        runtime,
        csm_tasks,
        [{**_task(customer_id, n, now), "status": "closed", "closed_at": now} for n in range(many)],
    )
    _store(
        runtime,
        provider_events,
        [
            {
                "provider": "sendgrid",
                "event_id": f"e{n}",
                "content_hash": f"h{n}",
                "event_type": "spamreport" if n == 0 else "delivered",
                "occurred_at": now,
                "received_at": now,
                "payload": {},
            }
            for n in range(many)
        ],
    )
    _store(
        runtime,
        suppressions,
        [
            {
                "email": f"s{n}@example.com",
                "reason": "bounce" if n % 100 == 0 else "unsubscribe",  # a rare reason
                "source": "",
                "created_at": now - timedelta(minutes=n),
            }
            for n in range(many)
        ],
    )
    with runtime.engine.connect() as connection:
        sends = connection.execute(select(scheduled_sends.c.id).limit(many)).scalars().all()
        task_id = connection.execute(select(csm_tasks.c.id)).scalars().first()
    _store(
        runtime,
        send_holds,
        [
            {"scheduled_send_id": send_id, "customer_id": other, "task_id": task_id, "held_at": now}
            for send_id in sends
        ],
    )
    with runtime.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    engine = runtime.engine
    first = list_tasks_page(engine, status=None, limit=50)
    reads: dict[str, tuple[str, Callable[[], Any]]] = {
        "scheduled_send": ("ix_scheduled_send_unknown", lambda: operations.unknown_sends(engine)),
        "send_hold": (
            "ix_send_hold_customer_id",
            lambda: customer_directory.customer_profile(engine, "c1", journeys=runtime.journeys),
        ),
        "provider_event": (
            "ix_provider_event_type",
            lambda: operations.recent_provider_events(engine, event_type="spamreport"),
        ),
        "suppression": (
            "ix_suppression_reason_created",
            lambda: list_suppressions_page(engine, reason="bounce", limit=50),
        ),
        "csm_task": (
            "ix_csm_task_closed",
            lambda: task_inbox.inbox(engine, me="x", scope="team", status="closed", now=now),
        ),
        "csm_task ": (  # the task API's status=all, a page after the first (migration 0018)
            "ix_csm_task_due",
            lambda: list_tasks_page(engine, status=None, cursor=first.next_cursor, limit=50),
        ),
    }
    for key, (index, read) in reads.items():
        table = key.strip()
        plans = [_plan(engine, sql, params) for sql, params in _statements(engine, table, read)]
        assert plans, table
        assert all(f"Seq Scan on {table}" not in plan for plan in plans), (table, plans)
        assert any(index in plan for plan in plans), (table, plans)


# -- helpers -----------------------------------------------------------------------------------


def _signed_up(client: TestClient, runtime: Runtime, external_id: str) -> tuple[int, int]:
    """The customer's id and that of one of its enrollments."""
    assert post_signup(client, signup_payload(external_id)).status_code == 202
    with runtime.engine.connect() as connection:
        customer_id = connection.execute(
            select(customers.c.id).where(customers.c.external_id == external_id)
        ).scalar_one()
        enrollment_id = (
            connection.execute(
                select(enrollments.c.id).where(enrollments.c.customer_id == customer_id)
            )
            .scalars()
            .first()
        )
    return customer_id, int(enrollment_id or 0)


def _store(runtime: Runtime, table: Any, rows: list[dict[str, Any]]) -> None:
    with runtime.engine.begin() as connection:
        connection.execute(insert(table), rows)


def _send(customer_id: int, enrollment_id: int, n: int, state: str, now: Any) -> dict[str, Any]:
    return {
        "enrollment_id": enrollment_id,
        "customer_id": customer_id,
        "journey_id": "onboarding",
        "step_id": f"x{n}",
        "due_at": now,
        "wake_at": now,
        "state": state,
        "updated_at": now,
    }


def _task(customer_id: int, n: int, due_at: Any, kind: str = "at_risk") -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "kind": kind,
        "reason": f"r{n}",
        "status": "open",
        "created_at": due_at - timedelta(days=3),
        "due_at": due_at,
    }


def _figure(page: str, label: str) -> int:
    found = re.search(r'<span class="figure">([\d,]+)</span> ' + re.escape(label), page)
    assert found is not None, label
    return int(found.group(1).replace(",", ""))


def _ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr class="[^"]*" id="task-(\d+)">', page)]


def _every_page(console: TestClient, first: str) -> list[int]:
    seen: list[int] = []
    url: str | None = first
    while url is not None:
        page = console.get(url, headers=EN)
        assert page.status_code == 200
        seen += _ids(page.text)
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = unescape(found.group(1)) if found else None
        assert len(seen) < 1_000
    return seen


def _statements(engine: Engine, table: str, read: Callable[[], Any]) -> list[tuple[str, Any]]:
    """The SELECTs that ``read`` runs naming ``table``."""
    seen: list[tuple[str, Any]] = []

    def hook(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if re.search(rf"\b{table}\b", statement) and statement.lstrip().upper().startswith(
            ("SELECT", "WITH")
        ):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", hook)
    try:
        read()
    finally:
        event.remove(engine, "before_cursor_execute", hook)
    return seen


def _plan(engine: Engine, statement: str, parameters: Any) -> str:
    with engine.connect() as connection:
        lines = connection.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
        connection.rollback()
    return "\n".join(lines)
