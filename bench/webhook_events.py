"""Events a second through ``POST /hooks/sendgrid``: signature check, JSON parse, idempotent
insert and the effects on sends and the suppression list, all in the real app (in-process
ASGI through Starlette's TestClient, so no network is measured). It prints numbers only.

    .venv/bin/python bench/webhook_events.py                       # SQLite in a temp folder
    .venv/bin/python bench/webhook_events.py --database-url \\
        postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench --batch 1000

A PostgreSQL database is emptied first (TRUNCATE of every table), so its name must contain
``bench`` or ``test``. The mix per batch is what one mail produces over its life: processed,
delivered, opens and clicks, with a few deferrals, soft bounces and unsubscribes. The second
pass replays every batch (SendGrid's retries): all duplicates, no effects.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")  # as pytest does

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

from orchestrator.api.app import create_app  # noqa: E402
from orchestrator.db.migrate import upgrade  # noqa: E402
from orchestrator.db.tables import customers, enrollments, scheduled_sends  # noqa: E402
from orchestrator.runtime import build_runtime  # noqa: E402
from orchestrator.settings import load_settings  # noqa: E402
from tests.fakes.sendgrid_events import EventSigner  # noqa: E402

MIX = [("processed", 30), ("delivered", 30), ("open", 20), ("click", 10), ("deferred", 5),
       ("bounce", 3), ("unsubscribe", 1), ("spamreport", 1)]  # fmt: skip


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--sends", type=int, default=2000, help="sent mails events refer to")
    parser.add_argument("--batch", type=int, default=500, help="events per webhook request")
    parser.add_argument("--batches", type=int, default=20, help="requests per pass")
    return parser.parse_args(argv)


def empty_tables(url: str) -> None:
    upgrade(url)
    if not url.startswith("postgresql"):
        return
    name = make_url(url).database or ""
    if "bench" not in name and "test" not in name:
        raise SystemExit(f"refusing to empty database {name!r}: its name must contain bench/test")
    from orchestrator.db.engine import make_engine

    engine = make_engine(url)
    tables = ", ".join(t.name for t in reversed(SQLModel.metadata.sorted_tables))
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def seed_sent_mails(engine: Engine, count: int) -> list[tuple[int, str, str]]:
    """``count`` customers with one sent welcome mail each: (send id, email, message id)."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(customers),
            [
                {"external_id": f"b-{n}", "public_id": f"pub-{n}", "email": f"b-{n}@example.jp",
                 "name": f"Bench {n}", "tier": "tech", "attributes": {}, "signed_up_at": now,
                 "annual_contract_value": 0,
                 "created_at": now, "updated_at": now}
                for n in range(1, count + 1)
            ],
        )  # fmt: skip
        connection.execute(
            insert(enrollments),
            [
                {"customer_id": n, "journey_id": "onboarding", "anchor_at": now, "created_at": now}
                for n in range(1, count + 1)
            ],
        )
        connection.execute(
            insert(scheduled_sends),
            [
                {"enrollment_id": n, "customer_id": n, "journey_id": "onboarding",
                 "step_id": "welcome", "due_at": now, "wake_at": now, "state": "sent",
                 "sent_at": now, "provider_message_id": f"msg{n}", "updated_at": now}
                for n in range(1, count + 1)
            ],
        )  # fmt: skip
    return [(n, f"b-{n}@example.jp", f"msg{n}") for n in range(1, count + 1)]


def make_batches(
    sends: Sequence[tuple[int, str, str]], batch: int, batches: int
) -> list[list[dict[str, Any]]]:
    pick = random.Random(7)
    names = [name for name, weight in MIX for _ in range(weight)]
    base = int(time.time())
    result = []
    for b in range(batches):
        events = []
        for i in range(batch):
            send_id, email, message_id = pick.choice(sends)
            name = pick.choice(names)
            event: dict[str, Any] = {
                "email": email, "timestamp": base + b * batch + i, "event": name,
                "sg_event_id": f"bench-{b}-{i}", "sg_message_id": f"{message_id}.filter-1.0",
                "stepmail_send_id": str(send_id), "stepmail_journey": "onboarding",
                "stepmail_step": "welcome", "category": ["onboarding"],
            }  # fmt: skip
            if name == "bounce":
                event.update(type="blocked", status="5.7.1", reason="blocked by policy")
            elif name == "click":
                event["url"] = "https://relay.example/guides"
            events.append(event)
        result.append(events)
    return result


def post_all(
    client: TestClient, signer: EventSigner, bodies: Sequence[bytes]
) -> tuple[float, list[float], int]:
    """Seconds for all requests, per-request ms, and events recorded as new."""
    latencies, recorded = [], 0
    start = time.perf_counter()
    for body in bodies:
        stamp = int(time.time())
        began = time.perf_counter()
        response = client.post("/hooks/sendgrid", content=body, headers=signer.headers(body, stamp))
        latencies.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.text
        recorded += response.json()["recorded"]
    return time.perf_counter() - start, latencies, recorded


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="stepmail-bench-") as directory:
        url = args.database_url or f"sqlite:///{Path(directory) / 'bench.db'}"
        empty_tables(url)
        signer = EventSigner()
        settings = load_settings(
            database_url=url,
            journeys_dir=Path(directory),  # no journeys needed: events only
            sendgrid_webhook_public_key=signer.public_key,
            _env_file=None,
        )
        runtime = build_runtime(settings)
        sends = seed_sent_mails(runtime.engine, args.sends)
        batches = make_batches(sends, args.batch, args.batches)
        bodies = [json.dumps(batch).encode() for batch in batches]
        total = args.batch * args.batches
        print(f"database: {runtime.engine.dialect.name}; {args.batches} requests x {args.batch} "
              f"events over {args.sends} sent mails")  # fmt: skip
        with TestClient(create_app(runtime)) as client:
            for label, expect_new in (("new events", True), ("replayed (duplicates)", False)):
                seconds, latencies, recorded = post_all(client, signer, bodies)
                assert (recorded == total) is expect_new or total == 0
                print(
                    f"{label:<22} {total / seconds:8.0f} events/s   "
                    f"request p50 {statistics.median(latencies):7.1f} ms  "
                    f"max {max(latencies):7.1f} ms   recorded {recorded}"
                )
        runtime.close()


if __name__ == "__main__":
    main()
