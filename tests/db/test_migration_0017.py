"""Migration 0017 keeps how many enrollments started on each journey version: filled from
the enrollments the rollup job has counted (the others it adds on its next pass), and gone
again on the way down."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, text

from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _seed(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO customer (id, external_id, public_id, email, name, company, "
                    "plan, annual_contract_value, currency, locale, timezone, tier, "
                    "tier_explicit, attributes, signed_up_at, created_at, updated_at) "
                    "VALUES (1, 'c1', 'p1', 'a@example.com', 'A', '', '', 0, 'JPY', 'ja', "
                    "'Asia/Tokyo', 'tech', false, '{}', :now, :now, :now)"
                ),
                {"now": NOW},
            )
            for number in (1, 2):
                connection.execute(
                    text(
                        "INSERT INTO journey_version (id, journey_id, number, content_hash, "
                        "yaml_text, templates, seen_at) "
                        "VALUES (:n, 'flow', :n, :h, 'x', '{}', :now)"
                    ),
                    {"n": number, "h": f"h{number}", "now": NOW},
                )
            # (entry, started on, counted): v1 twice counted, v2 once counted and once not
            for entry, version, counted in (("a", 1, 1), ("b", 1, 3), ("c", 2, 1), ("d", 2, 0)):
                connection.execute(
                    text(
                        "INSERT INTO enrollment (customer_id, journey_id, entry_key, state, "
                        "anchor_at, created_at, counted, started_version_id, version_id) "
                        "VALUES (1, 'flow', :entry, 'active', :now, :now, :counted, :v, :v)"
                    ),
                    {"entry": entry, "v": version, "counted": counted, "now": NOW},
                )
    finally:
        engine.dispose()


def _starts(url: str) -> dict[int, int] | None:
    engine = make_engine(url)
    try:
        if "journey_version_starts" not in inspect(engine).get_table_names():
            return None
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT version_id, enrollments FROM journey_version_starts")
            )
            return {version_id: n for version_id, n in rows}
    finally:
        engine.dispose()


def test_0017_counts_the_counted_starts_and_goes_back_down(empty_url: str) -> None:
    from alembic import command
    from orchestrator.db.migrate import alembic_config

    upgrade(empty_url, "0016")
    _seed(empty_url)
    upgrade(empty_url, "0017")
    assert _starts(empty_url) == {1: 2, 2: 1}  # the uncounted one is the job's to add
    command.downgrade(alembic_config(empty_url), "0016")
    assert _starts(empty_url) is None
    upgrade(empty_url)
