"""The rollup job counts in SQL (analytics/counting_sql.py) what analytics/counters.py says in
Python: at a day's edge in the analytics time zone, for skip reasons in any case, for locales
with a region or a script, for a tier that moves after a row was stamped. A pass walks the ids
upwards and leaves a row that changes behind it to the next pass; a pass that dies counts
nothing; a row a worker holds is skipped, not waited for, and counted later. SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from orchestrator.analytics.rollups import count_changes
from orchestrator.db.tables import customers, scheduled_sends
from orchestrator.runtime import Runtime
from orchestrator.services.analytics import refresh_rollups
from orchestrator.settings import Settings
from tests.support.environment import make_settings
from tests.support.rollups import recount, rollups, total
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY

EDGE = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)  # midnight of 4 November in Tokyo
JUST_BEFORE = datetime(2026, 11, 3, 14, 59, 59, 999999, tzinfo=UTC)  # still the 3rd there


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def signed_up(client: TestClient, *locales: str) -> None:
    for n, locale in enumerate(locales):
        payload = signup_payload(f"c{n}", locale=locale)
        assert post_signup(client, payload).status_code == 202


def send_ids(runtime: Runtime) -> list[int]:
    with runtime.engine.connect() as connection:
        query = select(scheduled_sends.c.id).order_by(scheduled_sends.c.id)
        return list(connection.execute(query).scalars())


def set_send(runtime: Runtime, send_id: int, **values: Any) -> None:
    with runtime.engine.begin() as connection:
        connection.execute(
            update(scheduled_sends).where(scheduled_sends.c.id == send_id).values(**values)
        )


def counted_state(runtime: Runtime, send_id: int) -> str:
    with runtime.engine.connect() as connection:
        query = select(scheduled_sends.c.counted_state).where(scheduled_sends.c.id == send_id)
        return str(connection.execute(query).scalar_one())


def test_days_skip_kinds_languages_and_stamps_agree_with_the_rules(
    client: TestClient, runtime: Runtime
) -> None:
    signed_up(client, "en-US", "zh_Hant", "ja")
    first, second, third, *_ = send_ids(runtime)
    set_send(runtime, first, state="sent", sent_at=JUST_BEFORE, engagement=1 | 2 | 4 | 64)
    set_send(runtime, second, state="sent", sent_at=EDGE, engagement=1 | 8 | 16 | 32)
    set_send(runtime, third, state="skipped", reason="Step Is Not For Tier low", updated_at=EDGE)
    by_customer = _sends_by_customer(runtime)
    set_send(runtime, by_customer[2][0], state="skipped", reason="ADDRESS SUPPRESSED (x)")
    set_send(runtime, by_customer[2][1], state="skipped", reason=None, updated_at=JUST_BEFORE)
    set_send(runtime, by_customer[3][0], state="failed", updated_at=EDGE)
    rules = runtime.analytics_rules()
    refresh_rollups(runtime.engine, rules=rules)
    counted = rollups(runtime)
    assert counted == recount(runtime)
    assert _days_of(counted, "sent") == {date(2026, 11, 3), date(2026, 11, 4)}
    assert {key[4] for key in counted} == {"en", "zh", "ja"}
    assert (total(runtime, "skipped_tier"), total(runtime, "skipped_suppressed")) == (1, 1)
    assert (total(runtime, "skipped_other"), total(runtime, "failed")) == (1, 1)
    assert (total(runtime, "scanner_clicked"), total(runtime, "converted")) == (1, 1)
    assert _days_of(counted, "skipped_tier") == {date(2026, 11, 4)}  # decided at the edge
    assert _days_of(counted, "skipped_other") == {date(2026, 11, 3)}
    assert _days_of(counted, "failed") == {date(2026, 11, 4)}

    with runtime.engine.begin() as connection:  # a stamped row keeps the tier it was sent for
        connection.execute(update(customers).values(tier="tech", locale="en"))
    set_send(runtime, first, engagement=1)  # the click turned out to be a scanner's only
    refresh_rollups(runtime.engine, rules=rules)
    assert rollups(runtime) == recount(runtime)
    assert total(runtime, "clicked") == 0 and total(runtime, "opened") == 0
    assert not any(key[3] == "tech" for key in rollups(runtime))


def _days_of(counted: dict[Any, dict[str, int]], name: str) -> set[date]:
    return {key[1] for key, values in counted.items() if values.get(name)}


def _sends_by_customer(runtime: Runtime) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    with runtime.engine.connect() as connection:
        query = select(scheduled_sends.c.customer_id, scheduled_sends.c.id).order_by(
            scheduled_sends.c.id
        )
        for customer_id, send_id in connection.execute(query):
            found.setdefault(customer_id, []).append(send_id)
    return found


def test_a_pass_walks_upwards_and_leaves_a_change_behind_it_to_the_next_pass(
    client: TestClient, runtime: Runtime
) -> None:
    signed_up(client, "ja", "en")
    ids = send_ids(runtime)
    for send_id in ids:
        set_send(runtime, send_id, state="sent", sent_at=EDGE)
    zone = runtime.analytics_rules().zone
    with runtime.engine.begin() as connection:
        batch = count_changes(connection, zone, 2)
    assert (batch.sends, batch.last_send_id) == (2, ids[1])
    set_send(runtime, ids[0], engagement=2)  # behind the pass
    with runtime.engine.begin() as connection:
        rest = count_changes(connection, zone, 1000, after_send=batch.last_send_id)
    assert rest.sends == len(ids) - 2 and rest.last_send_id == ids[-1]
    assert total(runtime, "opened") == 0
    with runtime.engine.begin() as connection:
        again = count_changes(connection, zone, 1000, after_send=rest.last_send_id)
    assert again.sends == 0 and again.last_send_id == ids[-1]  # nothing above: this pass ends
    report = refresh_rollups(runtime.engine, rules=runtime.analytics_rules())
    assert report.sends == 1 and total(runtime, "opened") == 1  # the next pass starts at 0
    assert rollups(runtime) == recount(runtime)


def test_a_pass_that_dies_counts_nothing(client: TestClient, runtime: Runtime) -> None:
    signed_up(client, "ja")
    for send_id in send_ids(runtime):
        set_send(runtime, send_id, state="sent", sent_at=EDGE, engagement=3)
    zone = runtime.analytics_rules().zone
    with pytest.raises(RuntimeError), runtime.engine.begin() as connection:
        assert count_changes(connection, zone, 1000).sends > 0
        raise RuntimeError("the process died mid-pass")
    assert rollups(runtime) == {} and counted_state(runtime, send_ids(runtime)[0]) == ""
    refresh_rollups(runtime.engine, rules=runtime.analytics_rules())
    assert rollups(runtime) == recount(runtime) and total(runtime, "sent") == len(send_ids(runtime))


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_row_a_worker_holds_is_skipped_then_counted(client: TestClient, runtime: Runtime) -> None:
    signed_up(client, "ja")
    ids = send_ids(runtime)
    for send_id in ids:
        set_send(runtime, send_id, state="sent", sent_at=EDGE)
    held, release = threading.Event(), threading.Event()

    def worker() -> None:  # a transaction mid-write on the first send
        with runtime.engine.begin() as connection:
            connection.execute(
                text("SELECT id FROM scheduled_send WHERE id = :id FOR UPDATE"), {"id": ids[0]}
            )
            held.set()
            release.wait(30)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert held.wait(30)
        report = refresh_rollups(runtime.engine, rules=runtime.analytics_rules())
        assert report.sends == len(ids) - 1 and counted_state(runtime, ids[0]) == ""
    finally:
        release.set()
        thread.join(30)
    assert refresh_rollups(runtime.engine, rules=runtime.analytics_rules()).sends == 1
    assert rollups(runtime) == recount(runtime) and total(runtime, "sent") == len(ids)
