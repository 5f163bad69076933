"""Requests that arrive while their service is busy, handed to it together (group commit).

The first request of a quiet moment runs at once and alone, so nothing waits at low load;
requests that arrive while a group runs wait for it and go together as the next group, one
call in the thread pool and one transaction for all of them. Under load the groups grow with
the load, and so does what each transaction's fixed cost is shared by.

A moment right after a group is not quiet: its clients (a sender's pool of connections, each
posting again once answered) come back within a round trip. Run at once, the first of them
would go alone and the rest as the group after it, or the pool would split into two halves
taking turns: twice the transactions (bench/README.md, session 12). So after a group of
several, the drain waits until the requests it just answered are back beside those already
waiting, for at most a quarter of that group's run (never more than ``LINGER_CAP``), and
whoever came by then goes together. A lone request is never followed by a wait; a sender
whose answered requests do not come back pays at most that wait in latency.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi.concurrency import run_in_threadpool

from orchestrator.observability.metrics import REQUEST_GROUPS

LINGER_SHARE = 0.25  # of the last group's run: the longest wait for its clients to come back
LINGER_CAP = 0.005  # seconds, whatever the last group took

Item = TypeVar("Item")
Answer = TypeVar("Answer")

# Runs one group in a worker thread: one outcome per item, in order, an exception for an item
# that failed (the others still get theirs).
GroupRunner = Callable[[Sequence[Item]], Sequence[Answer | Exception]]


class Coalescer(Generic[Item, Answer]):
    """Groups of at most ``max_group`` items, ``in_flight`` groups running at once (a second
    group fills the event loop's wait on the first one's commit)."""

    def __init__(
        self,
        run_group: GroupRunner[Item, Answer],
        *,
        kind: str,
        max_group: int,
        in_flight: int = 1,
        linger_share: float = LINGER_SHARE,
        linger_cap: float = LINGER_CAP,
    ) -> None:
        self._run_group = run_group
        self._sizes = REQUEST_GROUPS.labels(kind)
        self._max_group = max_group
        self._in_flight = in_flight
        self._linger_share, self._linger_cap = linger_share, linger_cap
        self._waiting: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._draining = 0  # groups running: counted here, not by task, see _drain
        self._tasks: set[asyncio.Task[None]] = set()  # held, or the loop may drop them
        self._lingering: list[_Linger] = []  # drains waiting for their clients to come back

    @property
    def idle(self) -> bool:
        """No group running, and none waiting for its clients to come back."""
        return self._draining == 0

    async def submit(self, item: Item) -> Answer:
        """The item's answer once its group ran (its exception raised here)."""
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, answer))
        for linger in self._lingering:
            if len(self._waiting) >= linger.expected:
                linger.back.set()
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
        loop = asyncio.get_running_loop()
        while self._waiting:
            group = self._waiting[: self._max_group]
            del self._waiting[: self._max_group]
            self._sizes.observe(len(group))
            started = loop.time()
            try:
                outcomes = await run_in_threadpool(self._run_group, [item for item, _ in group])
            except Exception as exc:  # the runner itself failed: every item gets the error
                outcomes = [exc] * len(group)
            ran = loop.time() - started
            for (_, answer), outcome in zip(group, outcomes, strict=True):
                if answer.done():  # the request went away; its items were run all the same
                    continue
                if isinstance(outcome, Exception):
                    answer.set_exception(outcome)
                else:
                    answer.set_result(outcome)
            if len(group) > 1:
                expected = min(len(self._waiting) + len(group), self._max_group)
                await self._linger(expected, min(ran * self._linger_share, self._linger_cap))

    async def _linger(self, expected: int, seconds: float) -> None:
        """Wait until ``expected`` requests wait (or ``seconds`` pass): the clients of the
        group just answered, coming back (see the module)."""
        if len(self._waiting) >= expected or seconds <= 0:
            return
        linger = _Linger(expected, asyncio.Event())
        self._lingering.append(linger)
        try:
            async with asyncio.timeout(seconds):
                await linger.back.wait()
        except TimeoutError:
            pass  # whoever came goes now; nobody: the drain ends
        finally:
            self._lingering.remove(linger)


@dataclass(frozen=True)
class _Linger:
    expected: int  # requests waiting that end the wait
    back: asyncio.Event
