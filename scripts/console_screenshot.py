"""The README's picture of the console's overview, taken in headless Chromium.

A throwaway SQLite database gets a made-up month of an onboarding journey (a few hundred
customers, their mails and what became of them, health scores moving between bands, open
CSM tasks); the rollup job and the band job count it as they would in production (the band
trend is the backfill from the score history). The console is served by uvicorn, an admin
signs in, and the home page is saved as ``docs/images/console-overview.png``.

    make screenshots        # .venv/bin/python scripts/console_screenshot.py [--out PATH]

Needs Debian's chromium (``/usr/bin/chromium``) and Playwright (the dev extra); no test
depends on it.
"""

from __future__ import annotations

import argparse
import random
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine, insert
from sqlalchemy.engine import Connection

from orchestrator.accounts.passwords import make_hasher
from orchestrator.accounts.roles import Role
from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.migrate import upgrade
from orchestrator.db.tables import (
    csm_tasks,
    customers,
    enrollments,
    health_score_history,
    scheduled_sends,
)
from orchestrator.runtime import build_runtime
from orchestrator.services.accounts import add_user
from orchestrator.services.analytics import refresh_rollups, snapshot_bands_if_due
from orchestrator.settings import load_settings
from orchestrator.transports.outbox import OutboxTransport

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # noon in Tokyo
ADMIN, PASSWORD = "admin@acme.example", "correct horse battery staple"
STEPS = (  # onboarding's steps and when each falls due after signup
    ("welcome", 0),
    ("basics", 1),
    ("next_steps", 3),
    ("faq", 7),
    ("activation_nudge", 10),
    ("case_studies", 14),
)
BANDS = ("upsell", "tips", "at_risk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/images/console-overview.png")
    parser.add_argument("--customers", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        take(Path(folder), args.out, args.customers)
    print(f"saved {args.out}")


def take(folder: Path, out: Path, count: int) -> None:
    from playwright.sync_api import sync_playwright

    url = f"sqlite:///{folder / 'demo.db'}"
    upgrade(url)
    with listening() as (listener, base_url):
        settings = load_settings(
            database_url=url,
            outbox_dir=folder / "outbox",
            journeys_dir=ROOT / "journeys",
            templates_dir=ROOT / "templates" / "mail",
            signup_hook_secret="screenshot-" + "s" * 32,
            public_base_url=base_url,
            sender_name="Acme Cloud",
            sender_email="onboarding@acme.example",
            sender_postal_address="1-2-3 Marunouchi, Chiyoda-ku, Tokyo",
            sender_contact="support@acme.example",
        )
        clock = FrozenClock(NOW)
        runtime = build_runtime(settings, clock=clock, transport=OutboxTransport(folder / "out"))
        try:
            seed(runtime.engine, count, random.Random(10))
            rules = runtime.analytics_rules()
            refresh_rollups(runtime.engine, rules=rules, batches=None)
            snapshot_bands_if_due(runtime.engine, rules=rules, now=NOW)
            add_user(runtime.engine, ADMIN, Role.ADMIN, PASSWORD, hasher=make_hasher(), clock=clock)
            with serving(create_app(runtime), listener), sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
                )
                try:
                    screenshot(browser, base_url, out)
                finally:
                    browser.close()
        finally:
            runtime.close()


def screenshot(browser: Any, base_url: str, out: Path) -> None:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}/console/login")
    page.fill("#email", ADMIN)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("#sign-in")
    page.goto(f"{base_url}/console/?from=2026-11-01&to=2026-11-30")
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out), full_page=True)
    context.close()


def seed(engine: Engine, count: int, rng: random.Random) -> None:
    """A month of signups, their onboarding mails and health scores, written directly."""
    with engine.begin() as connection:
        for n in range(count):
            signed_up = NOW - timedelta(days=rng.uniform(0, 30), hours=rng.uniform(0, 8))
            customer_id = _customer(connection, n, signed_up, rng)
            _onboarding(connection, customer_id, signed_up, rng)
            _scores(connection, customer_id, signed_up, rng)
            if rng.random() < 0.06:
                _task(connection, customer_id, signed_up, rng)


def _customer(connection: Connection, n: int, signed_up: datetime, rng: random.Random) -> int:
    tier = rng.choice(["high", "low", "low", "tech"])
    values = {
        "external_id": f"demo-{n}",
        "public_id": f"p{n:08d}",
        "email": f"demo-{n}@customer.example",
        "name": f"Customer {n}",
        "company": f"Company {n}",
        "plan": "business",
        "annual_contract_value": Decimal(3_600_000 if tier == "high" else 360_000),
        "currency": "JPY",
        "locale": rng.choice(["ja", "ja", "en"]),
        "timezone": "Asia/Tokyo",
        "tier": tier,
        "tier_explicit": False,
        "attributes": {},
        "signed_up_at": signed_up,
        "created_at": signed_up,
        "updated_at": signed_up,
    }
    return int(
        connection.execute(insert(customers).values(values).returning(customers.c.id)).scalar_one()
    )


def _onboarding(
    connection: Connection, customer_id: int, signed_up: datetime, rng: random.Random
) -> None:
    enrollment = {
        "customer_id": customer_id,
        "journey_id": "onboarding",
        "entry_key": "signup",
        "state": "converted" if rng.random() < 0.12 else "active",
        "anchor_at": signed_up,
        "created_at": signed_up,
    }
    enrollment_id = connection.execute(
        insert(enrollments).values(enrollment).returning(enrollments.c.id)
    ).scalar_one()
    for step_id, after in STEPS:
        due = signed_up + timedelta(days=after)
        state, reason, engagement = _outcome(rng) if due <= NOW else ("pending", None, 0)
        connection.execute(
            insert(scheduled_sends).values(
                enrollment_id=enrollment_id,
                customer_id=customer_id,
                journey_id="onboarding",
                step_id=step_id,
                due_at=due,
                wake_at=due,
                state=state,
                reason=reason,
                sent_at=due if state == "sent" else None,
                updated_at=due,
                engagement=engagement,
            )
        )


def _outcome(rng: random.Random) -> tuple[str, str | None, int]:
    draw = rng.random()
    if draw < 0.86:
        engagement = 1 if rng.random() < 0.97 else 8
        engagement |= 2 if rng.random() < 0.48 else 0
        engagement |= 4 if engagement & 2 and rng.random() < 0.3 else 0
        engagement |= 16 if rng.random() < 0.004 else 0
        return "sent", None, engagement
    if draw < 0.95:
        return "skipped", rng.choice(["step is not for tier low", "customer opted out"]), 0
    return ("failed", "smtp 550", 0) if draw < 0.97 else ("missed", "past its grace", 0)


def _scores(
    connection: Connection, customer_id: int, signed_up: datetime, rng: random.Random
) -> None:
    """A first score the day after signup, then a daily random walk between the bands."""
    band = rng.choice(BANDS)
    at = signed_up + timedelta(days=1)
    rows = []
    while at < NOW:
        rows.append(
            {
                "customer_id": customer_id,
                "score": {"upsell": 85, "tips": 65, "at_risk": 30}[band],
                "band": band,
                "components": {},
                "computed_at": at,
            }
        )
        if rng.random() < 0.12:
            band = rng.choice(BANDS)
        at += timedelta(days=1)
    if rows:
        connection.execute(insert(health_score_history), rows)
        last = rows[-1]
        connection.execute(
            customers.update()
            .where(customers.c.id == customer_id)
            .values(health_score=last["score"], health_band=last["band"], health_updated_at=at)
        )


def _task(
    connection: Connection, customer_id: int, signed_up: datetime, rng: random.Random
) -> None:
    connection.execute(
        insert(csm_tasks).values(
            customer_id=customer_id,
            kind="at_risk",
            reason="health score fell to at_risk",
            created_at=signed_up,
            due_at=NOW + timedelta(days=rng.uniform(-2, 3)),
        )
    )


@contextmanager
def listening() -> Iterator[tuple[socket.socket, str]]:
    """A loopback port, bound first: the settings' public URL names it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    try:
        yield listener, f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@contextmanager
def serving(app: Any, listener: socket.socket) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise SystemExit("uvicorn did not start")
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    main()
