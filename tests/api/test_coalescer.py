"""The coalescer: the first request of a quiet moment runs alone, the ones that arrive while a
group runs go together next, each gets its own answer or its own error."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest
from prometheus_client import REGISTRY

from orchestrator.api.coalescer import Coalescer

SIZES = "stepmail_request_group_size"


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
    coalescer = Coalescer(runner, kind="test", max_group=100)

    answers = asyncio.run(submit_while_the_first_runs(coalescer, runner, [1, 2, 3, 4]))

    assert answers == [10, 20, 30, 40]
    assert runner.groups == [[1], [2, 3, 4]]


def test_a_group_holds_at_most_max_group_requests() -> None:
    runner = Runner()
    coalescer = Coalescer(runner, kind="test", max_group=2)

    answers = asyncio.run(submit_while_the_first_runs(coalescer, runner, [1, 2, 3, 4, 5]))

    assert answers == [10, 20, 30, 40, 50]
    assert runner.groups == [[1], [2, 3], [4, 5]]


def test_each_request_gets_its_own_error() -> None:
    runner = Runner()
    coalescer = Coalescer(runner, kind="test", max_group=100)

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
        coalescer = Coalescer(runner, kind="test", max_group=100)
        with pytest.raises(RuntimeError, match="database gone"):
            await coalescer.submit(1)
        assert await asyncio.wait_for(coalescer.submit(2), 10) == 2

    asyncio.run(run())
    assert calls == [[1], [2]]


class SlowRunner:
    """Records each group's size; each group takes ``seconds`` (a transaction's time)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sizes: list[int] = []

    def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.sizes.append(len(items))
        time.sleep(self.seconds)
        return list(items)


async def client(coalescer: Coalescer[int, int], position: int, rounds: int) -> None:
    """A connection of a sender's pool: it posts again once answered, a little after the
    connections before it (``position`` turns of the event loop: as a network spreads them)."""
    for round_ in range(rounds):
        for _ in range(position):
            await asyncio.sleep(0)
        await coalescer.submit(round_)


def test_the_clients_of_a_group_come_back_as_one_group_not_one_alone_then_the_rest() -> None:
    """Before, the first client back after a group found no group running and went alone,
    the others as the group after it: every second transaction was one request."""
    runner = SlowRunner(0.05)  # the wait for the clients: at most 200 ms, they take microseconds
    coalescer = Coalescer(runner, kind="test", max_group=100, linger_share=4.0, linger_cap=1.0)

    async def run() -> None:
        await asyncio.gather(*(client(coalescer, position, rounds=4) for position in range(6)))

    asyncio.run(run())

    assert sum(runner.sizes) == 24
    assert runner.sizes[-3:] == [6, 6, 6], runner.sizes  # before: ..., 1, 5, 1, 5


def test_a_lone_request_is_answered_without_waiting_for_more() -> None:
    runner = SlowRunner(0.05)
    coalescer = Coalescer(runner, kind="test", max_group=100, linger_cap=10.0)

    async def run() -> None:
        assert await coalescer.submit(7) == 7
        await asyncio.sleep(0)
        assert coalescer.idle  # a group of one never waits for its client to come back

    asyncio.run(run())
    assert runner.sizes == [1]


def test_a_group_whose_clients_do_not_all_come_back_runs_whoever_came() -> None:
    runner = Runner()  # its second group is instant: the share makes the wait the cap, 50 ms
    coalescer = Coalescer(runner, kind="test", max_group=100, linger_share=1e6, linger_cap=0.05)

    async def run() -> list[int | BaseException]:
        answers = await submit_while_the_first_runs(coalescer, runner, [1, 2, 3])
        late = await asyncio.wait_for(coalescer.submit(4), 10)  # one of three came back
        for _ in range(100):  # the drain ends once its wait is over
            if coalescer.idle:
                break
            await asyncio.sleep(0.01)
        assert coalescer.idle
        return [*answers, late]

    assert asyncio.run(run()) == [10, 20, 30, 40]
    assert runner.groups == [[1], [2, 3], [4]]


def test_two_halves_of_the_clients_merge_into_one_group() -> None:
    """Half the clients arrive while the other half's group runs: before, the halves took
    turns for good, twice the transactions of one group of all."""
    runner = SlowRunner(0.2)
    coalescer = Coalescer(runner, kind="test", max_group=100, linger_share=1.0, linger_cap=1.0)

    async def second_half() -> None:
        await asyncio.sleep(0.05)  # the first half's group is running
        await asyncio.gather(*(client(coalescer, 0, rounds=4) for _ in range(3)))

    async def run() -> None:
        first_half = (client(coalescer, 0, rounds=4) for _ in range(3))
        await asyncio.gather(*first_half, second_half())

    asyncio.run(run())

    assert runner.sizes == [3, 6, 6, 6, 3]  # before: [3, 3, 3, 3, 3, 3, 3, 3]


def test_each_group_size_is_counted_for_the_metrics() -> None:
    def sample(name: str) -> float:
        value = REGISTRY.get_sample_value(name, {"kind": "test-sizes"})
        return value or 0.0

    runner = Runner()
    coalescer = Coalescer(runner, kind="test-sizes", max_group=100, linger_cap=0.0)
    groups, requests = sample(f"{SIZES}_count"), sample(f"{SIZES}_sum")

    asyncio.run(submit_while_the_first_runs(coalescer, runner, [1, 2, 3, 4]))

    assert runner.groups == [[1], [2, 3, 4]]
    assert sample(f"{SIZES}_count") - groups == 2
    assert sample(f"{SIZES}_sum") - requests == 4
