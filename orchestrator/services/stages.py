"""A CSM sets a customer's lifecycle stage by hand (the console, ``PUT
/v1/customers/{external_id}/stage``): kept until the rules reach a later stage, or pinned so
the rules leave it alone. One transaction: the move, its history row, its ``stage_changed``
event (journeys entered on it start) and, from the console, the audit row."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.audit.log import Actor, record
from orchestrator.clock import Clock
from orchestrator.customers.changes import CustomerView
from orchestrator.db.locks import lock_customers
from orchestrator.enrollment.customers import customer_row
from orchestrator.enrollment.stages import move_stage
from orchestrator.errors import InvalidRequest
from orchestrator.services.events import UsageRules
from orchestrator.usage.events import store_new_events
from orchestrator.usage.reactions import react_to_events


class StageChoice(BaseModel):
    """``stage``: a stage of journeys/lifecycle.yaml; ``pinned``: the rules never move it."""

    model_config = ConfigDict(extra="forbid")

    stage: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    pinned: bool = False
    reason: Annotated[str, Field(max_length=500)] = ""


def set_stage(
    engine: Engine,
    external_id: str,
    choice: StageChoice,
    *,
    rules: UsageRules,
    clock: Clock,
    actor: Actor | None = None,
) -> CustomerView:
    """Set the stage (a 422 naming ``stage`` for one the lifecycle does not have; no change
    when it is already so); CustomerNotFound for an unknown customer."""
    lifecycle = rules.lifecycle
    if lifecycle is None or lifecycle.get(choice.stage) is None:
        known = ", ".join(s.id for s in lifecycle.stages) if lifecycle else "none (no lifecycle)"
        raise _refused("stage", f"not a stage of journeys/lifecycle.yaml ({known})")
    if "\x00" in choice.reason:
        raise _refused("reason", "no NUL")
    source = "pinned" if choice.pinned else "manual"
    with Session(engine) as session, session.begin():
        connection = session.connection()
        row = customer_row(connection, external_id)
        lock_customers(connection, [row.id])
        now = clock.now()
        if (row.stage, row.stage_source) != (choice.stage, source):
            who = actor.name if actor else "api"
            reason = f"set by {who}" + (f": {choice.reason}" if choice.reason.strip() else "")
            event = move_stage(connection, row.id, row.stage, choice.stage, source, reason, now)
            react_to_events(session, store_new_events(session, [event]), rules.journeys, now)
            if actor is not None:
                record(
                    connection,
                    actor,
                    "customer.stage",
                    ("customer", external_id),
                    now,
                    previous=row.stage,
                    stage=choice.stage,
                    pinned=choice.pinned,
                )
        return CustomerView.model_validate(
            customer_row(connection, external_id), from_attributes=True
        )


def _refused(field: str, message: str) -> InvalidRequest:
    return InvalidRequest([{"type": "value_error", "loc": ["body", field], "msg": message}])
