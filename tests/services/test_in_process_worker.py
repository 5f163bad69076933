"""The embedded mode `stepmail run` uses: an in-process broker and Dramatiq worker threads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import dramatiq
import pytest
from fastapi.testclient import TestClient

from orchestrator.processes.actors import register_actors
from orchestrator.runtime import Runtime, install_runtime
from orchestrator.scheduling.broker import BrokerDispatcher, make_broker
from orchestrator.services.scheduling import tick
from orchestrator.settings import Settings
from tests.support.signups import outbox_files, post_signup, signup_payload


@pytest.fixture
def worker(runtime: Runtime) -> Iterator[dramatiq.Broker]:
    broker = make_broker(runtime.settings)
    register_actors(broker, runtime.settings.queue_name)
    install_runtime(runtime)
    dramatiq_worker = dramatiq.Worker(broker, worker_threads=2)
    dramatiq_worker.start()
    yield broker
    dramatiq_worker.stop()
    install_runtime(None)


def test_ticks_feed_the_in_process_worker_and_duplicates_send_once(
    client: TestClient, runtime: Runtime, settings: Settings, worker: dramatiq.Broker
) -> None:
    dispatcher = BrokerDispatcher(worker, settings.queue_name)
    post_signup(client, signup_payload("a"))
    post_signup(client, signup_payload("b", locale="en"))

    claimed = tick(runtime.engine, dispatcher, runtime.clock.now(), 100, timedelta(minutes=2))
    assert claimed == 2
    dispatcher.dispatch([1, 2])  # the same rows again: redelivered messages
    worker.join(settings.queue_name)

    assert len(outbox_files(settings)) == 2
