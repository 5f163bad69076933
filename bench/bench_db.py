"""The bench's database side: a disposable schema, bulk seeding with server-side SQL, and
the numbers read back from PostgreSQL (lag, row states, its own transaction counters)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import redis
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.journeys.loader import load_journeys

JOURNEY = "onboarding"
DUE_STEP = "welcome"
FUTURE_STEPS = ("basics", "faq", "case_studies", "feedback")


def prepare_database(url: str) -> Engine:
    """A fresh schema at the current migration head. The bench database is disposable, and
    rebuilding it keeps the bench working while the initial migration is still being edited;
    any other database is refused, since every phase truncates it."""
    name = make_url(url).database or ""
    if "bench" not in name:
        raise SystemExit(f"refusing to rebuild database {name!r}: its name must contain 'bench'")
    engine = make_engine(url)
    try:
        connection = engine.connect()
    except OperationalError as exc:
        raise SystemExit(
            f"cannot connect to the bench database {name!r} ({exc.orig}); create it once with"
            f' su postgres -c "createdb -O {make_url(url).username} {name}"'
        ) from None
    connection.close()
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    upgrade(url)
    return engine


def check_journey(journeys_dir: Path) -> None:
    """Fail early if the step ids seeded below no longer exist, rather than measure skips."""
    journey = load_journeys(journeys_dir).get(JOURNEY)
    if journey is None:
        raise SystemExit(f"journey {JOURNEY!r} not found in {journeys_dir}")
    for step_id in (DUE_STEP, *FUTURE_STEPS):
        journey.step(step_id)


def reset(engine: Engine, redis_url: str) -> None:
    """Empty tables and the bench's Redis database so phases never see each other's rows."""
    # The migration's revision stays: workers refuse to start on a database that has none.
    tables = ", ".join(t for t in inspect(engine).get_table_names() if t != "alembic_version")
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


INSERT_CUSTOMERS = text("""
    INSERT INTO customer (external_id, public_id, email, name, company, plan,
        annual_contract_value, currency, locale, timezone, tier, tier_explicit,
        csm_name, csm_email, attributes, signed_up_at, created_at, updated_at, stage, stage_source)
    SELECT :prefix || g, 'pub-' || :prefix || g, :prefix || g || '@customer.example',
        'Customer ' || g, 'Company ' || g, 'business',
        (ARRAY[2000000, 360000, 30000])[1 + g % 3], 'JPY',
        (ARRAY['ja', 'en'])[1 + (g / 3) % 2], 'Asia/Tokyo',
        (ARRAY['high', 'low', 'tech'])[1 + g % 3], false,
        CASE WHEN g % 3 = 0 THEN 'Sato Hanako' END,
        CASE WHEN g % 3 = 0 THEN 'sato@relay.example' END,
        CAST('{}' AS json), :now, :now, :now, 'onboarding', 'signup'
    FROM generate_series(1, :count) AS g
""")

INSERT_ENROLLMENTS = text("""
    INSERT INTO enrollment (customer_id, journey_id, entry_key, state, anchor_at, created_at)
    SELECT id, :journey, 'signup', 'active', :now, :now
    FROM customer WHERE external_id LIKE :prefix || '%'
""")

INSERT_DUE_SENDS = text("""
    INSERT INTO scheduled_send (enrollment_id, customer_id, journey_id, step_id,
        due_at, wake_at, state, attempts, dispatches, open_count, click_count, updated_at)
    SELECT e.id, e.customer_id, e.journey_id, :step, :now, :now, 'pending', 0, 0, 0, 0, :now
    FROM enrollment e JOIN customer c ON c.id = e.customer_id
    WHERE c.external_id LIKE :prefix || '%'
""")

INSERT_FUTURE_SENDS = text("""
    INSERT INTO scheduled_send (enrollment_id, customer_id, journey_id, step_id,
        due_at, wake_at, state, attempts, dispatches, open_count, click_count, updated_at)
    SELECT enrollment_id, customer_id, journey_id, step_id, due, due, 'pending', 0, 0, 0, 0, :now
    FROM (
        SELECT e.id AS enrollment_id, e.customer_id, e.journey_id, s.step_id,
            CAST(:now AS timestamptz) + (1 + random() * 29) * interval '1 day' AS due
        FROM enrollment e JOIN customer c ON c.id = e.customer_id
        CROSS JOIN unnest(CAST(:steps AS text[])) AS s(step_id)
        WHERE c.external_id LIKE :prefix || '%'
        LIMIT :count
    ) AS future
""")


def seed_customers(engine: Engine, prefix: str, count: int, now: datetime) -> None:
    """Customers of all three tiers and both locales, each enrolled in onboarding."""
    with engine.begin() as connection:
        connection.execute(INSERT_CUSTOMERS, {"prefix": prefix, "count": count, "now": now})
        connection.execute(INSERT_ENROLLMENTS, {"prefix": prefix, "journey": JOURNEY, "now": now})


def seed_due(engine: Engine, count: int, now: datetime, step: str = DUE_STEP) -> None:
    """``count`` customers whose ``step`` mail (welcome unless said) is due now: the rows the
    phase delivers."""
    seed_customers(engine, "due-", count, now)
    with engine.begin() as connection:
        connection.execute(INSERT_DUE_SENDS, {"prefix": "due-", "step": step, "now": now})


WARM_PREFIX = "warm-"  # customers whose mails warm the workers up, before a phase's clock


def seed_warm(engine: Engine, count: int, now: datetime, step: str = DUE_STEP) -> None:
    """``count`` customers whose ``step`` mail is due now, for the warm-up (the phase's own
    due rows wait a day meanwhile: :func:`park_due`)."""
    seed_customers(engine, WARM_PREFIX, count, now)
    with engine.begin() as connection:
        connection.execute(INSERT_DUE_SENDS, {"prefix": WARM_PREFIX, "step": step, "now": now})


def park_due(engine: Engine, now: datetime, step: str = DUE_STEP) -> None:
    """The phase's due rows (of ``step``) due tomorrow, so a warm-up claims none of them;
    :func:`restamp_due` makes them due again when the clock starts."""
    restamp_due(engine, now + timedelta(days=1), step)


def seed_events(engine: Engine, name: str, every: int, now: datetime) -> int:
    """One ``name`` usage event an hour ago for every ``every``-th due customer (by id), so
    a step whose condition reads it skips them; returns how many were stored."""
    with engine.begin() as connection:
        stored = connection.execute(
            text("""
                INSERT INTO usage_event (customer_id, name, event_key, occurred_at,
                    received_at, properties)
                SELECT id, :name, 'bench-' || id, :at, :at, CAST('{}' AS json)
                FROM customer WHERE external_id LIKE 'due-%' AND id % :every = 0
            """),
            {"name": name, "every": every, "at": now - timedelta(hours=1)},
        )
    return int(stored.rowcount)


def seed_pending(engine: Engine, count: int, now: datetime) -> None:
    """``count`` later steps due in 1 to 30 days, four per customer, all server-side SQL
    (``INSERT … SELECT generate_series``) because a million rows must load in seconds."""
    customers = -(-count // len(FUTURE_STEPS))
    seed_customers(engine, "future-", customers, now)
    params = {"prefix": "future-", "steps": list(FUTURE_STEPS), "count": count, "now": now}
    with engine.begin() as connection:
        connection.execute(INSERT_FUTURE_SENDS, params)


def analyze(engine: Engine) -> None:
    """Fresh planner statistics, as autovacuum would give a long-lived table."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def restamp_due(engine: Engine, now: datetime, step: str = DUE_STEP) -> None:
    """Make the due rows (of ``step``) due *now*, so lag counts from the first tick, not from
    seeding or worker start-up."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE scheduled_send SET due_at = :now, wake_at = :now, updated_at = :now"
                " WHERE state = 'pending' AND step_id = :step"
            ),
            {"now": now, "step": step},
        )


@dataclass(frozen=True)
class Lag:
    """Seconds from ``due_at`` to ``sent_at`` over the sent rows."""

    count: int
    p50: float
    p95: float
    max: float


def sent_lag(engine: Engine) -> Lag:
    query = text("""
        SELECT count(*),
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - due_at)),
            percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - due_at)),
            max(extract(epoch FROM sent_at - due_at))
        FROM scheduled_send WHERE state = 'sent' AND customer_id NOT IN (
            SELECT id FROM customer WHERE external_id LIKE :warm || '%')
    """)
    with engine.connect() as connection:
        count, p50, p95, worst = connection.execute(query, {"warm": WARM_PREFIX}).one()
    return Lag(int(count), float(p50 or 0), float(p95 or 0), float(worst or 0))


def state_counts(engine: Engine) -> dict[str, int]:
    """Every row's state, but the warm-up's: shows failures or rows still pending instead of
    hiding them."""
    query = text("""
        SELECT state, count(*) FROM scheduled_send WHERE customer_id NOT IN (
            SELECT id FROM customer WHERE external_id LIKE :warm || '%')
        GROUP BY state ORDER BY state
    """)
    with engine.connect() as connection:
        rows = connection.execute(query, {"warm": WARM_PREFIX})
        return {state: int(count) for state, count in rows}


@dataclass(frozen=True)
class DbCounters:
    """PostgreSQL's own tally for this database (PostgreSQL 14+): transactions, and sessions,
    i.e. connections opened. Per mail, they show round trips and pool churn."""

    transactions: int
    sessions: int

    def minus(self, earlier: DbCounters) -> DbCounters:
        return DbCounters(
            self.transactions - earlier.transactions, self.sessions - earlier.sessions
        )


def db_counters(engine: Engine) -> DbCounters:
    query = text(
        "SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database"
        " WHERE datname = current_database()"
    )
    with engine.connect() as connection:
        transactions, sessions = connection.execute(query).one()
    return DbCounters(int(transactions), int(sessions))
