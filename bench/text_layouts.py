"""The text part made once per layout against each mail's own conversion, in one process.

    .venv/bin/python bench/text_layouts.py [--pairs 200] [--step welcome] [--batch 25]

Batches of ``--batch`` mails of one onboarding step (tiers in turn, Japanese and English in
turn, another customer name each, click tracking on) are drafted, then finished, as the
delivery service does. Each pair renders one batch with marks (the text filled from the
layout) and one without (the renderer's fallback: drawn unmarked, the text converted), so
the host's drift cancels out of a pair. Prints the thread CPU a mail of each, the median
saving and the share of mails whose text came from a layout. No database, no network.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.journeys.loader import load_journeys
from orchestrator.journeys.model import ALL_TIERS, Step
from orchestrator.rendering.context import mail_context, sender_identity
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.rendering.samples import sample_customer
from orchestrator.settings import Settings
from orchestrator.tracking.links import ClickLinks, click_key

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SENDER = sender_identity(Settings(_env_file=None))  # the shipped defaults
KEY = click_key("bench-signing-secret-" * 2)
Mails = list[tuple[str, str, dict[str, Any]]]  # tier, locale and context of each mail


def contexts(step: Step, count: int) -> Mails:
    journey = load_journeys(ROOT / "journeys")["onboarding"]
    made: Mails = []
    for n in range(count):
        tier, locale = ALL_TIERS[n % len(ALL_TIERS)], ("ja", "en")[n // 3 % 2]
        customer = sample_customer(tier, locale, NOW)
        customer = replace(customer, name=f"{customer.name}{n}", email=f"c{n}@example.com")
        context = mail_context(
            customer=customer,
            journey=journey,
            step=step,
            sender=SENDER,
            unsubscribe_url=f"https://relay.example/unsubscribe/token-{n}",
            now=NOW,
        )
        made.append((tier, locale, context))
    return made


def batch(renderer: MailRenderer, step: Step, mails: Mails, first_id: int) -> float:
    """Thread CPU seconds a mail: the batch drafted, then finished."""
    started = time.thread_time()
    drafts = []
    for n, (tier, locale, context) in enumerate(mails):
        links = ClickLinks(KEY, "https://relay.example", first_id + n)
        drafts.append(renderer.draft(step.template, tier, locale, context, links=links))
    for draft in drafts:
        draft.finish()
    return (time.thread_time() - started) / len(mails)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--step", default="welcome")
    parser.add_argument("--batch", type=int, default=25)
    args = parser.parse_args()
    journey = load_journeys(ROOT / "journeys")["onboarding"]
    step = next(s for s in journey.steps if s.id == args.step)
    mails = contexts(step, args.batch)
    marked = MailRenderer(ROOT / "templates" / "mail", "ja")
    unmarked = MailRenderer(ROOT / "templates" / "mail", "ja")
    for tier, locale, _ in mails:  # the fallback for a template that cannot be marked
        name = unmarked.resolve(step.template, tier, locale)
        assert name is not None
        unmarked._unmarked[unmarked.env.get_template(name)] = True
    for renderer in (marked, unmarked):
        batch(renderer, step, mails, 0)  # compile, learn the layouts
        batch(renderer, step, mails, 0)
    with_marks, without = [], []
    for pair in range(args.pairs):
        first = (pair + 1) * args.batch
        if pair % 2:
            without.append(batch(unmarked, step, mails, first))
            with_marks.append(batch(marked, step, mails, first))
        else:
            with_marks.append(batch(marked, step, mails, first))
            without.append(batch(unmarked, step, mails, first))
    savings = [b - a for a, b in zip(with_marks, without, strict=True)]
    layouts = len(marked.texts._texts)
    print(f"{args.pairs} pairs of {args.batch} {args.step} mails, tracking on, {layouts} layouts")
    print(f"  each mail converted:       {statistics.median(without) * 1e6:7.1f} µs a mail")
    print(f"  text from the layout:      {statistics.median(with_marks) * 1e6:7.1f} µs a mail")
    print(f"  saving (median of pairs):  {statistics.median(savings) * 1e6:7.1f} µs a mail")


if __name__ == "__main__":
    main()
