"""A mail's render alone: the CPU of drafting and finishing a step's mail (subject, HTML with
signed click links, text part), in process, with no database, no transport and no Dramatiq.

It renders the shipped journey's step for every tier and language in turn, sample customers
as ``stepmail preview`` draws them, from the journey's templates as a version keeps them (a
worker renders a journey with a stored version so), each compiled first as a worker process
does when it starts. Use it
under ``py-spy record`` to see where a render's time goes, or to compare two checkouts in
alternating rounds (``--tree``): the host's drift cancels out of neighbouring rounds.

    .venv/bin/python bench/render_cpu.py                        # welcome, 5 rounds of 3,000
    .venv/bin/python bench/render_cpu.py --tree /tmp/old --rounds 8
    .venv/bin/python bench/render_cpu.py --journey health_upsell --step upsell
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIERS = ("high", "low", "tech")
LANGUAGES = ("en", "ja")


def measure(root: Path, journey_id: str, step_id: str | None, mails: int) -> float:
    """µs of this process's CPU a mail, drafted and finished, for ``mails`` mails, with the
    code, journeys and templates of the checkout at ``root``."""
    sys.path.insert(0, str(root))
    import orchestrator

    if not Path(orchestrator.__file__ or "").resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"the code imported is not {root}'s: {orchestrator.__file__}")
    from orchestrator.journeys.loader import load_journey
    from orchestrator.rendering.context import SenderIdentity, mail_context
    from orchestrator.rendering.samples import sample_customer
    from orchestrator.rendering.snapshot import SnapshotRenderer, used_templates
    from orchestrator.runtime import settle_heap_for_serving
    from orchestrator.tracking.links import ClickLinks

    journey = load_journey(root / "journeys" / f"{journey_id}.yaml")
    step = next((s for s in journey.steps if step_id in (None, s.id)), None)
    if step is None:
        raise SystemExit(f"{journey_id} has no step {step_id!r}")
    renderer = SnapshotRenderer(used_templates(journey, root / "templates" / "mail", "ja"))
    for name in renderer.template_names():
        renderer.compile(name)
    settle_heap_for_serving()  # as a worker does once its templates are compiled
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    sender = SenderIdentity(
        "Stepmail", "team@example.com", "1-2-3 Chiyoda, Tokyo", "help@example.com"
    )
    drafts = []
    for tier in TIERS:
        for language in LANGUAGES:
            customer = sample_customer(tier, language, now)
            context = mail_context(
                customer=customer,
                journey=journey,
                step=step,
                sender=sender,
                unsubscribe_url="https://stepmail.example/unsubscribe/sample",
                now=now,
            )
            drafts.append((tier, language, context))
    key = b"bench-click-key-0123456789abcdef"

    def one(n: int) -> None:
        tier, language, context = drafts[n % len(drafts)]
        links = ClickLinks(key, "https://stepmail.example", n)
        renderer.draft(step.template, tier, language, context, links=links).finish()

    for n in range(300):  # the layouts' text parts learnt, the caches warm
        one(n)
    started = time.process_time()
    for n in range(mails):
        one(n)
    return (time.process_time() - started) / mails * 1e6


def _round(tree: Path, args: argparse.Namespace) -> float:
    """One round in a fresh interpreter, with ``tree``'s code and templates."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        str(tree),
        "--journey",
        args.journey,
        "--mails",
        str(args.mails),
        *(["--step", args.step] if args.step else []),
    ]
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"a round in {tree} failed:\n{done.stderr}")
    return float(done.stdout.split()[0])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--journey", default="onboarding")
    parser.add_argument("--step", help="the step's id (default: the journey's first)")
    parser.add_argument("--mails", type=int, default=3000, help="mails a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tree", type=Path, help="another checkout, its rounds alternating")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a round in this process
    args = parser.parse_args(argv)
    if args.one is not None:
        print(f"{measure(args.one, args.journey, args.step, args.mails):.1f}")
        return
    trees = [ROOT] if args.tree is None else [args.tree.resolve(), ROOT]
    results: dict[Path, list[float]] = {tree: [] for tree in trees}
    for _ in range(args.rounds):
        for tree in trees:
            results[tree].append(_round(tree, args))
    for tree, rounds in results.items():
        shown = ", ".join(f"{r:.1f}" for r in rounds)
        print(f"{tree}: median {statistics.median(rounds):.1f} µs a mail ({shown})")
    if args.tree is not None:
        old, new = results[trees[0]], results[trees[1]]
        differences = [b - a for a, b in zip(old, new, strict=True)]
        median = statistics.median(differences)
        print(f"this tree minus the other, round by round: median {median:+.1f} µs")


if __name__ == "__main__":
    main()
