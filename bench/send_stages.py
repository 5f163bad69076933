"""Where a worker's CPU goes per mail, in-process and on one thread: N welcome mails due on
PostgreSQL, delivered by ``deliver_batch`` in messages of ``DISPATCH_MESSAGE_SIZE`` (its default:
100; 25 before session 18) through the SendGrid transport
to the fast stand-in (a child process), with each stage's CPU time (``time.process_time``,
so another process's load does not count, only contention's cache and scheduling effects).
Before the first batch it does what a worker process does when it starts: every template of
each journey compiled (since session 26), then the heap settled (``ready_to_serve``: start-up's
objects frozen, young collections every 100,000 allocations; since session 27).

    .venv/bin/python bench/send_stages.py [--mails 2000] [--step welcome]
        [--acted-every 2] [--frequency-cap '1/day,3/week'] [--profile [--sort ncalls]]

``--step`` picks the onboarding step that is due: ``activation_nudge`` is one whose
condition reads the customer's usage (``not usage.seen('report_created')``) at send time.
``--acted-every N``: every Nth due customer created a report an hour ago, so the nudge
skips them (a row ended without a mail). ``--frequency-cap`` runs with that cap: each mail
is then counted against the customer's other sends under a lock on the customer.

``--profile`` adds a cProfile (CPU clock) of the same run, sorted by cumulative time
(``--sort tottime`` or ``ncalls`` for another order). The
database name must contain ``bench`` (it is rebuilt); Redis is not used.

``--old-tree DIR --swap MODULE:NAME[=SOURCE]`` compares instead, as ``event_ab.py`` does: the
batches go in pairs, one with the old tree's version of each swapped name and one with
this tree's, and the CPU of each pair is compared (the host's drift cancels out of a pair).
To compare the whole send path: ``--swap orchestrator.services.delivery:deliver_batch``; a
renderer method: ``--swap orchestrator.rendering.renderer:MailRenderer.draft``.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import pstats
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import host_speed
from bench_db import DUE_STEP, analyze, prepare_database, seed_due, seed_events
from event_ab import Swap, compare, read_swap
from proc_stats import backend_cpu_ms, server_cpu
from provider import FakeSendGridProcess
from sqlalchemy.engine import make_url

import orchestrator.delivery.hand_over as hand_over
import orchestrator.services.delivery as delivery
import orchestrator.transports.sendgrid as sendgrid
from orchestrator.runtime import Runtime, build_runtime, ready_to_serve
from orchestrator.services.scheduling import claim_due_sends
from orchestrator.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench"
MESSAGE: int = Settings.model_fields["dispatch_message_size"].default
WARM = 100


def timed(owner: Any, name: str, label: str, spent: dict[str, float]) -> None:
    """Wrap ``owner.name`` so its CPU time adds up under ``label``."""
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - started

    setattr(owner, name, wrapper)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--step", default=DUE_STEP, help="the onboarding step that is due")
    parser.add_argument(
        "--frequency-cap", help="STEPMAIL_FREQUENCY_CAP for the run, e.g. '1/day,3/week'"
    )
    parser.add_argument(
        "--acted-every",
        type=int,
        help="every Nth due customer has created a report (the nudge skips them)",
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--sort",
        default="cumulative",
        choices=("cumulative", "tottime", "ncalls"),
        help="with --profile: its order (ncalls: what runs per mail, per value, per link)",
    )
    parser.add_argument("--old-tree", type=Path, help="compare with this checkout (A/B pairs)")
    parser.add_argument("--swap", action="append", default=[], metavar="MODULE:NAME[=SOURCE]")
    parser.add_argument("--pairs", type=int, default=40, help="with --old-tree")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    if args.old_tree is not None and not args.swap:
        parser.error("--old-tree needs at least one --swap")
    swaps = [read_swap(spec, args.old_tree) for spec in args.swap] if args.old_tree else []
    if swaps:
        args.mails = max(args.mails, 2 * MESSAGE * args.pairs)
    engine = prepare_database(args.database_url)
    seed_due(engine, args.mails + WARM, datetime.now(UTC), args.step)
    if args.acted_every:
        seed_events(engine, "report_created", args.acted_every, datetime.now(UTC))
    analyze(engine)
    fake = FakeSendGridProcess("SG.bench", validating=False)
    settings = load_settings(
        environment="development",
        database_url=args.database_url,
        mail_transport="sendgrid",
        sendgrid_api_key="SG.bench",
        sendgrid_api_host=fake.url,
        journeys_dir=ROOT / "journeys",
        templates_dir=ROOT / "templates" / "mail",
        frequency_cap=args.frequency_cap,
    )
    runtime = build_runtime(settings)
    runtime.catalog.compile_templates()  # as a worker process does when it starts,
    ready_to_serve(runtime, sends_only=True)  # then its heap settled (session 27)
    try:
        ids = claim_due_sends(engine, datetime.now(UTC), args.mails + WARM, timedelta(minutes=2))
        for start in range(0, WARM, MESSAGE):  # templates compiled, connections open
            delivery.deliver_batch(runtime.delivery_deps(), ids[start : start + MESSAGE])
        ids = ids[WARM:]
        if swaps:
            compare_halves(runtime, ids, swaps, args.pairs)
            return
        spent: dict[str, float] = defaultdict(float)
        stages = [
            (delivery, "claim_many", "claim (dispatched -> sending)"),
            (delivery, "load_send_facts_many", "facts (one joined SELECT)"),
            (delivery, "_usage_answers", "conditions' usage (one statement)"),
            (delivery, "_decide", "decide"),
            (delivery, "_end_without_sending", "rows ended without a mail"),
            (delivery, "_apply_pacing", "pacing (window, frequency cap)"),
            (delivery, "_render", "render + compose"),  # before session 14
            (delivery, "_draft", "render (subject, HTML)"),
            (delivery, "_compose_all", "text parts + compose"),
            (hand_over.HandOverLog, "hand_over", "hand-over (committed statement)"),
            (sendgrid.SendGridTransport, "send", "transport.send"),
            (sendgrid.SendGridTransport, "build_payload", "  of which the JSON body's dict"),
            (sendgrid, "json_body", "  of which json.dumps"),
            (hand_over.HandOverLog, "finish", "finish (sent rows)"),
            (hand_over, "write_archive", "  of which the archive's INSERT"),
        ]
        if not args.profile:
            for owner, name, label in stages:
                if hasattr(owner, name):  # an older tree may not have the stage (A/B runs)
                    timed(owner, name, label, spent)
        profile = cProfile.Profile(time.process_time)
        host_ms = host_speed.loop_ms()
        database = make_url(args.database_url).database
        backends_before = server_cpu(database=database)
        started_cpu, started = time.process_time(), time.perf_counter()
        if args.profile:
            profile.enable()
        for start in range(0, len(ids), MESSAGE):
            delivery.deliver_batch(runtime.delivery_deps(), ids[start : start + MESSAGE])
        if args.profile:
            profile.disable()
        cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
        backend_ms = backend_cpu_ms(backends_before, server_cpu(database=database))
        accepted = fake.stats().accepted - WARM
        print(
            f"{len(ids)} rows ({accepted} mails accepted): {1000 * cpu / len(ids):.3f} ms CPU"
            f" per row on one thread, PostgreSQL's backends {backend_ms / len(ids):.3f} ms"
            f" (wall {wall:.1f} s)"
        )
        print(host_speed.describe(host_ms))
        for _, _, label in stages:
            if label in spent:
                print(f"  {label:<36} {1000 * spent[label] / len(ids):.3f} ms")
        if args.profile:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(50)
            print(out.getvalue())
    finally:
        fake.stop()
        runtime.close()
        engine.dispose()


def compare_halves(runtime: Runtime, ids: Sequence[int], swaps: Sequence[Swap], pairs: int) -> None:
    """Batches of ``ids`` in old/new pairs; prints the CPU a row of each half and their
    difference."""

    def batch(n: int) -> float:
        started = time.process_time()
        delivery.deliver_batch(runtime.delivery_deps(), ids[n * MESSAGE : (n + 1) * MESSAGE])
        return time.process_time() - started

    old, new = compare(batch, swaps, pairs, start=0)
    old_rows = [1000 * seconds / MESSAGE for seconds in old]
    new_rows = [1000 * seconds / MESSAGE for seconds in new]
    differences = [a - b for a, b in zip(old_rows, new_rows, strict=True)]
    print(f"swapped: {', '.join(f'{swap.module.__name__}:{swap.name}' for swap in swaps)}")
    for label, values in (("old", old_rows), ("new", new_rows)):
        print(f"{label}: CPU a row median {statistics.median(values):.3f} ms")
    print(
        f"old - new per pair: median {statistics.median(differences):.3f} ms a row, "
        f"mean {statistics.mean(differences):.3f} ({len(differences)} pairs of {MESSAGE})"
    )


if __name__ == "__main__":
    main()
