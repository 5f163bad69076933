"""The coalescer: the first request of a quiet moment runs alone, the ones that arrive while a
group runs go together next, each gets its own answer or its own error."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from orchestrator.api.coalescer import Coalescer


class Runner:
    """Records each group; the first group waits until ``release`` is set."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.groups.append(list(items))
        self.started.set()
        assert self.release.wait(10)
        return [ValueError(f"bad {item}") if item < 0 else item * 10 for item in items]


async def submit_while_the_first_runs(
    coalescer: Coalescer[int, int], runner: Runner, items: Sequence[int]
) -> list[int | BaseException]:
    first = asyncio.create_task(coalescer.submit(items[0]))
    assert await asyncio.to_thread(runner.started.wait, 10)
    later = [asyncio.create_task(coalescer.submit(item)) for item in items[1:]]
    await asyncio.sleep(0)  # every later request is waiting before the first group ends
    runner.release.set()
    return await asyncio.gather(first, *later, return_exceptions=True)


def test_requests_arriving_during_a_group_go_together_next() -> None:
    runner = Runner()
    coalescer = Coalescer(runner, max_group=100)

    answers = asyncio.run(submit_while_the_first_runs(coalescer, runner, [1, 2, 3, 4]))

    assert answers == [10, 20, 30, 40]
    assert runner.groups == [[1], [2, 3, 4]]


def test_a_group_holds_at_most_max_group_requests() -> None:
    runner = Runner()
    coalescer = Coalescer(runner, max_group=2)

    answers = asyncio.run(submit_while_the_first_runs(coalescer, runner, [1, 2, 3, 4, 5]))

    assert answers == [10, 20, 30, 40, 50]
    assert runner.groups == [[1], [2, 3], [4, 5]]


def test_each_request_gets_its_own_error() -> None:
    runner = Runner()
    coalescer = Coalescer(runner, max_group=100)

    answers = asyncio.run(submit_while_the_first_runs(coalescer, runner, [1, -2, 3]))

    assert answers[0] == 10 and answers[2] == 30
    assert isinstance(answers[1], ValueError) and str(answers[1]) == "bad -2"


def test_a_runner_that_fails_fails_its_whole_group_and_the_next_request_still_runs() -> None:
    """The next request comes the moment the failed one is answered, before the finished
    drain's task is done: it must start a drain of its own, not wait forever."""
    calls: list[list[int]] = []

    def runner(items: Sequence[int]) -> list[int | Exception]:
        calls.append(list(items))
        if len(calls) == 1:
            raise RuntimeError("database gone")
        return list(items)

    async def run() -> None:
        coalescer = Coalescer(runner, max_group=100)
        with pytest.raises(RuntimeError, match="database gone"):
            await coalescer.submit(1)
        assert await asyncio.wait_for(coalescer.submit(2), 10) == 2

    asyncio.run(run())
    assert calls == [[1], [2]]
