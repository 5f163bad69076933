"""Requests that arrive while their service is busy, handed to it together (group commit).

The first request of a quiet moment runs at once and alone, so nothing waits at low load;
requests that arrive while a group runs wait for it and go together as the next group, one
call in the thread pool and one transaction for all of them. Under load the groups grow with
the load, and so does what each transaction's fixed cost is shared by.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from fastapi.concurrency import run_in_threadpool

Item = TypeVar("Item")
Answer = TypeVar("Answer")

# Runs one group in a worker thread: one outcome per item, in order, an exception for an item
# that failed (the others still get theirs).
GroupRunner = Callable[[Sequence[Item]], Sequence[Answer | Exception]]


class Coalescer(Generic[Item, Answer]):
    """Groups of at most ``max_group`` items, ``in_flight`` groups running at once (a second
    group fills the event loop's wait on the first one's commit)."""

    def __init__(
        self, run_group: GroupRunner[Item, Answer], *, max_group: int, in_flight: int = 1
    ) -> None:
        self._run_group = run_group
        self._max_group = max_group
        self._in_flight = in_flight
        self._waiting: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._draining = 0  # groups running: counted here, not by task, see _drain
        self._tasks: set[asyncio.Task[None]] = set()  # held, or the loop may drop them

    async def submit(self, item: Item) -> Answer:
        """The item's answer once its group ran (its exception raised here)."""
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, answer))
        if self._draining < self._in_flight:
            self._draining += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await answer

    async def _drain(self) -> None:
        """Run groups until none waits. It stops counting itself in the same step as it finds
        the queue empty (a done-callback would come a step later, and an item submitted in
        between would wait for a drain that has already ended)."""
        try:
            await self._drain_waiting()
        finally:
            self._draining -= 1

    async def _drain_waiting(self) -> None:
        while self._waiting:
            group = self._waiting[: self._max_group]
            del self._waiting[: self._max_group]
            try:
                outcomes = await run_in_threadpool(self._run_group, [item for item, _ in group])
            except Exception as exc:  # the runner itself failed: every item gets the error
                outcomes = [exc] * len(group)
            for (_, answer), outcome in zip(group, outcomes, strict=True):
                if answer.done():  # the request went away; its items were run all the same
                    continue
                if isinstance(outcome, Exception):
                    answer.set_exception(outcome)
                else:
                    answer.set_result(outcome)
