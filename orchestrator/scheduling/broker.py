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

from orchestrator.runtime import current_runtime
from orchestrator.services.delivery import deliver_many
from orchestrator.settings import Settings

DELIVER_ACTOR = "deliver_scheduled_send"
DeliverActor = dramatiq.Actor[[list[int] | int], None]


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
    """The scheduler's way out: small messages carrying only row ids, ``batch_size`` at most.

    A worker handles a message's rows with shared database round trips, so larger messages
    mean fewer statements per mail; smaller ones spread a burst over more worker threads.
    The worker renews the batch's lease as it goes, so a slow provider is no reason to keep
    messages small.
    """

    def __init__(self, broker: dramatiq.Broker, queue_name: str, batch_size: int = 25) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self.batch_size = batch_size

    def dispatch(self, send_ids: Sequence[int]) -> None:
        for start in range(0, len(send_ids), self.batch_size):
            self.broker.enqueue(
                dramatiq.Message(
                    queue_name=self.queue_name,
                    actor_name=DELIVER_ACTOR,
                    args=(list(send_ids[start : start + self.batch_size]),),
                    kwargs={},
                    options={},
                )
            )


def deliver_scheduled_send(send_ids: list[int] | int) -> None:
    """Render and send scheduled rows; duplicates and redeliveries are no-ops. The outcome
    lives in the database, so nothing is returned through the broker. (A single id is what
    messages enqueued by earlier versions carry.)"""
    deliver_many(current_runtime(), [send_ids] if isinstance(send_ids, int) else send_ids)


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
