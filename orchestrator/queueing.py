"""Dramatiq plumbing: the broker (Redis when configured, else in-process), the dispatcher the
scheduler hands due row ids to, and the actor that delivers them.

Kept in the library so ``stepmail run`` can host a worker in-process; the ``workers``
package is only the entry point ``dramatiq workers`` imports."""

from __future__ import annotations

from collections.abc import Sequence

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from orchestrator.delivery import deliver
from orchestrator.runtime import current_runtime
from orchestrator.settings import Settings

DELIVER_ACTOR = "deliver_scheduled_send"


def make_broker(settings: Settings) -> dramatiq.Broker:
    """A broker with only the middleware we use (no Prometheus, no results backend)."""
    middleware = [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(),
    ]
    if settings.redis_url:
        broker: dramatiq.Broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=settings.redis_url, middleware=middleware
        )
    else:
        broker = StubBroker(middleware=middleware)
    broker.declare_queue(settings.queue_name)
    return broker


class BrokerDispatcher:
    """The scheduler's way out: one small message per due row, carrying only the row id."""

    def __init__(self, broker: dramatiq.Broker, queue_name: str) -> None:
        self.broker = broker
        self.queue_name = queue_name

    def dispatch(self, send_ids: Sequence[int]) -> None:
        for send_id in send_ids:
            self.broker.enqueue(
                dramatiq.Message(
                    queue_name=self.queue_name,
                    actor_name=DELIVER_ACTOR,
                    args=(send_id,),
                    kwargs={},
                    options={},
                )
            )


def deliver_scheduled_send(send_id: int) -> None:
    """Render and send one scheduled row; duplicates and redeliveries are no-ops. The outcome
    lives in the database, so nothing is returned through the broker."""
    deliver(current_runtime(), send_id)


def register_actors(broker: dramatiq.Broker, queue_name: str) -> dramatiq.Actor[[int], None]:
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
