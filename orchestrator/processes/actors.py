"""The send actor a worker runs: row ids in, each row delivered by the delivery service.

Its name (``deliver_scheduled_send``), queue and options are what messages already in Redis
name, so they stay as they are across upgrades; only this function's module moved.
"""

from __future__ import annotations

import dramatiq

from orchestrator.runtime import current_runtime
from orchestrator.scheduling.broker import DELIVER_ACTOR
from orchestrator.services.delivery import deliver_batch


def deliver_scheduled_send(send_ids: list[int] | int) -> None:
    """Render and send scheduled rows; duplicates and redeliveries are no-ops. The outcome
    lives in the database, so nothing is returned through the broker. (A single id is what
    messages enqueued by earlier versions carry.)"""
    ids = [send_ids] if isinstance(send_ids, int) else send_ids
    deliver_batch(current_runtime().delivery_deps(), ids)


def register_actors(
    broker: dramatiq.Broker, queue_name: str
) -> dramatiq.Actor[[list[int] | int], None]:
    """Declare our actors on ``broker``. Delivery retries live in the database (backoff with a
    lease), so Dramatiq retries only what escaped it, such as a database outage."""
    return dramatiq.Actor(
        deliver_scheduled_send,
        broker=broker,
        actor_name=DELIVER_ACTOR,
        queue_name=queue_name,
        priority=0,
        options={"max_retries": 5, "min_backoff": 1_000, "max_backoff": 60_000},
    )
