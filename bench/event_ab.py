"""One function of the event path against its version in another checkout, in one process:
batches of 1,000 events over 1,000 customers (``event_cpu.py``'s set-up), the old and the new
function swapped in before each batch in turn, and the CPU of each pair compared. The host's
speed, which drifts by tens of percent within minutes on the shared machine, cancels out of
a pair taken milliseconds apart; whole runs of ``event_cpu.py`` on two trees could not tell
a 3 ms change from the drift.

    git worktree add --detach /tmp/old <rev>
    .venv/bin/python bench/event_ab.py --old-tree /tmp/old \\
        --swap orchestrator.usage.reactions:_active_enrollments
    .venv/bin/python bench/event_ab.py --old-tree /tmp/old --pairs 30 \\
        --swap orchestrator.services.events:store_new_events=orchestrator.usage.events \\
        --swap orchestrator.db.fast_arrays:flat_array_literal

``--swap MODULE:NAME[=SOURCE]``: during the old half of a pair, ``MODULE.NAME`` is the
attribute ``NAME`` of module ``SOURCE`` (default: ``MODULE``) as the old tree defines it (its
file loaded on its own, importing everything else from this tree). Swap the name where it
is looked up: a function imported into another module is swapped there. ``NAME`` may be
``CLASS.METHOD``: the method is swapped on this tree's class (instances made before see it).
The database name must contain ``bench`` (it is rebuilt).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from event_cpu import (
    BATCH,
    CUSTOMERS,
    DEFAULT_DATABASE_URL,
    batch_events,
    seeded_database,
    shipped_runtime,
)

from orchestrator.runtime import settle_heap_for_serving
from orchestrator.services.events import track_events
from orchestrator.usage.events import EventSubmission


@dataclass(frozen=True)
class Swap:
    """``module.name`` is ``old`` in the old half of a pair and ``new`` in the other (the
    module, or a class of it: ``MODULE:CLASS.NAME`` swaps a method)."""

    module: ModuleType | type
    name: str
    old: Any
    new: Any


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--old-tree", type=Path, required=True, help="the other checkout")
    parser.add_argument("--swap", action="append", required=True, metavar="MODULE:NAME[=SOURCE]")
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    swaps = [read_swap(spec, args.old_tree) for spec in args.swap]
    engine = seeded_database(args.database_url)
    runtime = shipped_runtime(args.database_url)
    counter = iter(range(10**9))

    def batch(n: int) -> float:
        """One batch's CPU (this process's), in seconds."""
        events = batch_events(n, lambda _k: f"ab-{next(counter)}")
        started = time.process_time()
        track_events(
            runtime.engine,
            EventSubmission(events, True),
            rules=runtime.usage_rules(),
            clock=runtime.clock,
            notify=lambda _ids: None,
        )
        return time.process_time() - started

    try:
        print(f"{CUSTOMERS} customers, shipped rules; swapped: {', '.join(args.swap)}")
        for n in range(CUSTOMERS // BATCH):  # every customer once: the first touch
            batch(n)
        settle_heap_for_serving()
        old, new = compare(batch, swaps, args.pairs, start=CUSTOMERS // BATCH)
    finally:
        runtime.close()
        engine.dispose()
    differences = [a - b for a, b in zip(old, new, strict=True)]
    for label, values in (("old", old), ("new", new)):
        median, mean = statistics.median(values), statistics.mean(values)
        print(f"{label}: median {ms(median)}, mean {ms(mean)}")
    print(
        f"old - new per pair: median {ms(statistics.median(differences))}, "
        f"mean {ms(statistics.mean(differences))} ({len(differences)} pairs)"
    )


def compare(
    batch: Callable[[int], float], swaps: Sequence[Swap], pairs: int, *, start: int
) -> tuple[list[float], list[float]]:
    """Each pair's old and new CPU; which half goes first alternates, so neither always
    runs on the caches the other left."""
    old: list[float] = []
    new: list[float] = []
    n = start
    for pair in range(pairs):
        halves = ("old", "new") if pair % 2 == 0 else ("new", "old")
        for half in halves:
            for swap in swaps:
                setattr(swap.module, swap.name, swap.old if half == "old" else swap.new)
            (old if half == "old" else new).append(batch(n))
            n += 1
    for swap in swaps:
        setattr(swap.module, swap.name, swap.new)
    return old, new


def read_swap(spec: str, old_tree: Path) -> Swap:
    """``MODULE:NAME[=SOURCE]`` as a Swap; SystemExit naming what is missing."""
    target, _, source = spec.partition("=")
    module_name, _, name = target.partition(":")
    if not module_name or not name:
        raise SystemExit(f"--swap {spec!r}: expected MODULE:NAME[=SOURCE]")
    module = importlib.import_module(module_name)
    source_name = source or module_name
    path = old_tree.joinpath(*source_name.split(".")).with_suffix(".py")
    if not path.is_file():
        raise SystemExit(f"--swap {spec!r}: no {path}")
    old_module = load_file(f"old_tree.{source_name}", path)
    owner: ModuleType | type = module
    old_owner: ModuleType | type = old_module
    *classes, name = name.split(".")
    for class_name in classes:
        if not hasattr(owner, class_name) or not hasattr(old_owner, class_name):
            raise SystemExit(f"--swap {spec!r}: {class_name} is not defined in both trees")
        owner, old_owner = getattr(owner, class_name), getattr(old_owner, class_name)
    if not hasattr(owner, name) or not hasattr(old_owner, name):
        raise SystemExit(f"--swap {spec!r}: {name} is not defined in both trees")
    return Swap(owner, name, getattr(old_owner, name), getattr(owner, name))


def load_file(name: str, path: Path) -> ModuleType:
    """The module at ``path`` under ``name`` (registered first: dataclasses look it up)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f} ms"


if __name__ == "__main__":
    main()
