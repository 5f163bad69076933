"""Dramatiq plumbing: the broker (Redis when configured, else in-process) and the dispatcher
the scheduler hands due row ids to, as messages for the send actor named ``DELIVER_ACTOR``.

A message carries ``args=([row ids],)`` for the actor ``deliver_scheduled_send`` on
``STEPMAIL_QUEUE_NAME``, and nothing else: no module path, nothing pickled, so messages
survive an upgrade. The actor itself is :mod:`orchestrator.processes.actors`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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

from orchestrator.observability.metrics import DISPATCHES
from orchestrator.settings import Settings

DELIVER_ACTOR = "deliver_scheduled_send"


class Dispatcher(Protocol):
    """Hands claimed row ids to whatever runs the send actor (a Dramatiq broker)."""

    def dispatch(self, send_ids: Sequence[int]) -> None: ...


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

    def __init__(
        self,
        broker: dramatiq.Broker,
        queue_name: str,
        batch_size: int = Settings.model_fields["dispatch_message_size"].default,
    ) -> None:
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
            DISPATCHES.inc()
