"""What a batch's sends say in the log and the metrics.

A mail that went out is one DEBUG line (``send 42 sent: journey=… provider_id=…``) and, for
the whole batch, one INFO line that counts every outcome (``batch of 100 sends: 98 sent,
2 deferred (transport=sendgrid)``). Every other outcome (a retry, a failure, a hold, a skip,
a deferral) is still one INFO line of its own. A line through Python's logging costs
~30–50 µs of CPU (the record, the redaction filters, the formatter, the write to Dramatiq's
pipe): one a mail was ~6% of a worker's CPU (bench/README, "Session 19"), spent on the one
outcome nobody has to act on. Where each sent mail went is in the database (its row's
``provider_message_id`` and archive); ``STEPMAIL_LOG_LEVEL=DEBUG`` prints the lines again.

The recipient's address is never logged (personal data in logs outlives its erasure): the
send id leads to it, for whoever may look in the database.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence

from orchestrator.journeys.decide import Claim
from orchestrator.observability.metrics import SENDS

log = logging.getLogger(__name__)

QUIET_OUTCOMES = frozenset({"sent"})  # one DEBUG line each, counted in the batch's line
UNLOGGED_OUTCOMES = frozenset({"ignored"})  # another worker's row, or one already done


def report_batch(
    claims: Sequence[Claim],
    outcomes: Mapping[int, str],
    tiers: Mapping[int, str],
    provider_ids: Mapping[int, str | None],
    transport: str,
) -> None:
    """One line per outcome that matters, one DEBUG line per mail sent, the batch's count line,
    and the ``stepmail_sends_total`` counters (added once per label set, not once per mail)."""
    counted: Counter[tuple[str, str, str]] = Counter()
    for claim in claims:
        outcome = outcomes[claim.send_id]
        if outcome in UNLOGGED_OUTCOMES:
            continue
        counted[(outcome, claim.journey_id, claim.step_id)] += 1
        level = logging.DEBUG if outcome in QUIET_OUTCOMES else logging.INFO
        if log.isEnabledFor(level):
            _send_line(level, claim, outcome, tiers[claim.send_id], transport, provider_ids)
    for (outcome, journey, step), count in counted.items():
        SENDS.labels(outcome, transport, journey, step).inc(count)
    if counted:  # the sends this worker dealt with: an ignored row is not one of them
        _batch_line(sum(counted.values()), counted, transport)


def _send_line(
    level: int,
    claim: Claim,
    outcome: str,
    tier: str,
    transport: str,
    provider_ids: Mapping[int, str | None],
) -> None:
    provider_id = provider_ids.get(claim.send_id)
    log.log(
        level,
        "send %d %s: journey=%s step=%s tier=%s transport=%s provider_id=%s",
        claim.send_id,
        outcome,
        claim.journey_id,
        claim.step_id,
        tier,
        transport,
        provider_id or "-",
        extra={
            "send_id": claim.send_id,
            "outcome": outcome,
            "journey": claim.journey_id,
            "step": claim.step_id,
            "tier": tier,
            "transport": transport,
            "provider_id": provider_id,
        },
    )


def _batch_line(sends: int, counted: Counter[tuple[str, str, str]], transport: str) -> None:
    by_outcome: Counter[str] = Counter()
    for (outcome, _, _), count in counted.items():
        by_outcome[outcome] += count
    summary = ", ".join(f"{count} {outcome}" for outcome, count in by_outcome.most_common())
    log.info(
        "batch of %d sends: %s (transport=%s)",
        sends,
        summary,
        transport,
        extra={"sends": sends, "outcomes": dict(by_outcome.most_common()), "transport": transport},
    )
