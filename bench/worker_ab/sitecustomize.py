"""A/B inside ``end_to_end.py``'s Dramatiq workers: each batch in turn runs the old tree's
``deliver_batch`` or this tree's, and the thread CPU of each half is added up a mail. The
host's drift (±15% between neighbouring whole runs) cancels out of batches taken side by
side; whole runs could not see a 9% change.

    git worktree add --detach /tmp/old <rev>
    STEPMAIL_BENCH_OLD_DELIVERY=/tmp/old/orchestrator/services/delivery.py \\
        PYTHONPATH=bench/worker_ab .venv/bin/python bench/end_to_end.py --mails 30000 --pending
    tail -qn1 /tmp/stepmail-worker-ab.*.txt

``STEPMAIL_BENCH_OLD_RENDERER=/tmp/old/orchestrator/rendering/renderer.py`` (instead, or as
well) compares ``MailRenderer.draft`` the same way: the old half's batches draft their mails
with the old tree's ``draft`` (and so its ``DraftMail``), on this tree's renderer.

``STEPMAIL_BENCH_GC=1`` (needs no old tree) times the garbage collector instead: each worker
process appends the wall time its collections took, by generation, and the mails it handled
to ``/tmp/stepmail-worker-gc.PID.txt`` every 200 batches (a collection holds the GIL: every
thread of the process waits for it).

``STEPMAIL_BENCH_UNMARKED=1`` (needs no old tree) compares the text part made once per
layout against each mail converted: the old half's batches draw their mails unmarked, the
renderer's fallback (``orchestrator/rendering/slots.py``), so each text part is converted.

Python imports ``sitecustomize`` at start-up from ``PYTHONPATH``, which the bench passes on
to its workers. Without either variable nothing changes. The old file is
loaded on its own and imports everything else from this tree, so only what
``orchestrator/services/delivery.py`` itself does is compared. Each worker process appends
its running totals to ``/tmp/stepmail-worker-ab.PID.txt`` every 200 batches.
"""

from __future__ import annotations

import builtins
import gc
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

OLD_DELIVERY = os.environ.get("STEPMAIL_BENCH_OLD_DELIVERY")
OLD_RENDERER = os.environ.get("STEPMAIL_BENCH_OLD_RENDERER")
UNMARKED = os.environ.get("STEPMAIL_BENCH_UNMARKED") == "1"
GC_TIMES = os.environ.get("STEPMAIL_BENCH_GC") == "1"
ACTORS = "orchestrator.processes.actors"

_spent = {"old": [0.0, 0], "new": [0.0, 0]}  # thread CPU seconds, mails
_lock = threading.Lock()
_batches = [0]
_import = builtins.__import__
_half = threading.local()  # this thread's batch: "old" or "new"


def _old_module(name: str, path: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _alternate_drafts(path: str) -> None:
    """``MailRenderer.draft`` is the old tree's in an old half's thread."""
    from orchestrator.rendering.renderer import MailRenderer

    new = MailRenderer.draft
    old = _old_module("old_tree_renderer", path).MailRenderer.draft

    def draft(self: Any, *args: Any, **kwargs: Any) -> Any:
        chosen = old if getattr(_half, "value", "new") == "old" else new
        return chosen(self, *args, **kwargs)

    MailRenderer.draft = draft  # type: ignore[method-assign]


def _alternate_marks() -> None:
    """An old half's thread draws its mails unmarked: every text part converted."""
    from orchestrator.rendering.renderer import MailRenderer

    marked = MailRenderer._render_marked

    def render(self: Any, template: Any, name: str, context: Any, first: Any) -> Any:
        if getattr(_half, "value", "new") == "old":
            return self._render_in(template, name, first), None
        return marked(self, template, name, context, first)

    MailRenderer._render_marked = render  # type: ignore[method-assign]


_collected = [0, 0, 0]  # collections by generation
_collecting = [0.0, 0.0, 0.0]  # their seconds
_collection_started = [0.0]


def _time_collections(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _collection_started[0] = time.perf_counter()
        return
    generation = info["generation"]
    _collected[generation] += 1
    _collecting[generation] += time.perf_counter() - _collection_started[0]


def _report_collections() -> None:
    mails = _spent["new"][1]
    spent = sum(_collecting)
    by_generation = " ".join(
        f"gen{n} {_collected[n]} in {1000 * _collecting[n]:.0f} ms" for n in range(3)
    )
    with open(f"/tmp/stepmail-worker-gc.{os.getpid()}.txt", "a") as out:
        out.write(
            f"{1000 * spent / max(mails, 1):.4f} ms a mail ({mails} mails; {by_generation}; "
            f"frozen {gc.get_freeze_count()})\n"
        )


def _count_mails(actors: Any) -> None:
    """Only the mails are counted (as the new half): the collections are timed by the hook."""
    gc.callbacks.append(_time_collections)
    deliver = actors.deliver_batch

    def counted(deps: Any, send_ids: Sequence[int]) -> Any:
        try:
            return deliver(deps, send_ids)
        finally:
            with _lock:
                _batches[0] += 1
                _spent["new"][1] += len(send_ids)
                if _batches[0] % 200 == 0:
                    _report_collections()

    actors.deliver_batch = counted


def _report() -> None:
    totals = " ".join(
        f"{half} {1000 * seconds / max(mails, 1):.3f} ms a mail ({mails})"
        for half, (seconds, mails) in _spent.items()
    )
    with open(f"/tmp/stepmail-worker-ab.{os.getpid()}.txt", "a") as out:
        out.write(totals + "\n")


def _install(actors: Any, old_path: str | None) -> None:
    """The actor looks ``deliver_batch`` up in its module at each call: replaced there."""
    new = actors.deliver_batch
    old = _old_module("old_tree_delivery", old_path).deliver_batch if old_path else new
    if OLD_RENDERER:
        _alternate_drafts(OLD_RENDERER)
    if UNMARKED:
        _alternate_marks()

    def alternating(deps: Any, send_ids: Sequence[int]) -> Any:
        with _lock:
            _batches[0] += 1
            half = "old" if _batches[0] % 2 else "new"
        _half.value = half
        started = time.thread_time()
        try:
            return (old if half == "old" else new)(deps, send_ids)
        finally:
            spent = time.thread_time() - started
            with _lock:
                _spent[half][0] += spent
                _spent[half][1] += len(send_ids)
                if _batches[0] % 200 == 0:
                    _report()

    actors.deliver_batch = alternating


def _watching_import(name: str, *args: Any, **kwargs: Any) -> Any:
    """Installs the A/B once the actors' module has finished loading, then steps aside."""
    module = _import(name, *args, **kwargs)
    actors = sys.modules.get(ACTORS)
    if (OLD_DELIVERY or OLD_RENDERER or UNMARKED or GC_TIMES) and hasattr(actors, "deliver_batch"):
        builtins.__import__ = _import
        if GC_TIMES:
            _count_mails(actors)
        else:
            _install(actors, OLD_DELIVERY)
    return module


if OLD_DELIVERY or OLD_RENDERER or UNMARKED or GC_TIMES:
    builtins.__import__ = _watching_import
