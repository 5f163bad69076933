"""Moving customers through the lifecycle stages by the rules of ``journeys/lifecycle.yaml``,
for the customers an event batch or the daily health job touched (never a scan of all
customers), inside the caller's transaction (which holds their locks).

Rules only move forward (see :mod:`orchestrator.health.lifecycle`): the furthest stage past
the current one whose ``when`` holds. A pinned stage is never moved; a stage set by hand is
moved only when the rules reach a later one. A condition that fails to evaluate is logged and
moves nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from orchestrator.db.tables import customers
from orchestrator.delivery.facts import customer_facts
from orchestrator.enrollment.stages import move_stage
from orchestrator.errors import ConditionError
from orchestrator.health.lifecycle import Lifecycle, Stage
from orchestrator.journeys.conditions import evaluate_condition
from orchestrator.journeys.decide import condition_context
from orchestrator.usage.facts import usage_context

log = logging.getLogger(__name__)


def advance_stages(
    connection: Connection, customer_ids: Sequence[int], lifecycle: Lifecycle, now: datetime
) -> list[dict[str, Any]]:
    """Move each customer as far as the rules say; the ``stage_changed`` event rows to store."""
    if not customer_ids:
        return []
    rows = connection.execute(
        select(customers.c.id, customers.c.stage, customers.c.stage_source).where(
            customers.c.id.in_(sorted(set(customer_ids)))
        )
    ).all()
    events = []
    for row in rows:
        if row.stage_source == "pinned":
            continue
        target = _furthest(connection, row.id, lifecycle, lifecycle.rank(row.stage), now)
        if target is None:
            continue
        reason = target.when or "the first stage"
        events.append(move_stage(connection, row.id, row.stage, target.id, "rules", reason, now))
        log.info("customer %d: stage %s -> %s (rules)", row.id, row.stage, target.id)
    return events


def _furthest(
    connection: Connection, customer_id: int, lifecycle: Lifecycle, current: int, now: datetime
) -> Stage | None:
    later = lifecycle.stages[current + 1 :]
    if not later:
        return None
    facts = customer_facts(connection, customer_id)
    context = condition_context(
        facts, now, usage_context(connection, customer_id, facts.signed_up_at, now)
    )
    for stage in reversed(later):
        if stage.when is None:
            return stage  # the first stage, for a customer who has none yet
        try:
            if evaluate_condition(stage.when, context):
                return stage
        except ConditionError as exc:
            log.warning("customer %d: stage %s rule failed: %s", customer_id, stage.id, exc)
            return None
    return None
