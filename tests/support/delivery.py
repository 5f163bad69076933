"""Delivery without a broker: one scheduler tick whose dispatcher runs the send actor's body
inline, and a runtime whose transport a test swaps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from orchestrator.runtime import Runtime
from orchestrator.services.delivery import deliver_batch
from orchestrator.services.scheduling import tick
from orchestrator.transports.base import Transport


class DirectDispatcher:
    """Runs the send actor's body inline: scheduling tests without a broker."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.results: list[str] = []

    def dispatch(self, send_ids: Sequence[int]) -> None:
        """In batches of three, so every scheduling test also crosses batch boundaries."""
        for start in range(0, len(send_ids), 3):
            self.results += deliver_batch(self.runtime.delivery_deps(), send_ids[start : start + 3])


def run_due(runtime: Runtime) -> list[str]:
    """One scheduler tick with inline delivery; returns each handled row's final state."""
    dispatcher = DirectDispatcher(runtime)
    settings = runtime.settings
    tick(
        runtime.engine,
        dispatcher,
        runtime.clock.now(),
        settings.dispatch_batch_size,
        timedelta(seconds=settings.send_lease),
    )
    return dispatcher.results


def with_transport(runtime: Runtime, transport: Transport) -> Runtime:
    runtime.transport = transport
    return runtime
