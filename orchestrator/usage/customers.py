"""``PATCH /v1/customers/{external_id}``: attributes, plan, contract value, tier, CSM.

The tier follows the contract value through :func:`orchestrator.customers.tiers.derive_tier`
(the one place with the thresholds) unless it was set explicitly; ``"tier": null`` makes it derived
again. A tier change is recorded as a ``tier_changed`` event (``{from, to}``), so journeys
can be entered on it (``trigger: {event: tier_changed, properties: {to: high}}``); a move
into ``high`` also opens a CSM task. Mails render with the tier at send time, so the next
mail of a running journey already reads as the new tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, field_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from orchestrator.customers.fields import Attributes, Locale, Money, OneLine, SingleLine
from orchestrator.customers.tiers import Tier, derive_tier
from orchestrator.customers.timezones import validate_timezone
from orchestrator.db.tables import customers
from orchestrator.errors import CustomerNotFound
from orchestrator.guards.bounds import StrippedText
from orchestrator.handoff.tasks import open_task
from orchestrator.usage.events import UsageRules, lock_customers, react, store_new_events

NOT_NULL = (
    "email",
    "name",
    "company",
    "plan",
    "annual_contract_value",
    "currency",
    "locale",
    "timezone",
    "attributes",
)
NEW_HIGH_TOUCH_TASK_DUE = timedelta(days=2)


def _null_only_where_allowed(schema: dict[str, Any]) -> None:
    """The OpenAPI document says what the API takes: the ``NOT_NULL`` fields may be left out
    but not sent as null, so their schema drops the ``null`` their Python type needs."""
    for name in NOT_NULL:
        field = schema["properties"][name]
        field.pop("default", None)
        branches = [b for b in field.pop("anyOf", []) if b.get("type") != "null"]
        if len(branches) == 1:
            field.update(branches[0])
        elif branches:
            field["anyOf"] = branches


class CustomerPatch(StrippedText):
    """Only the fields given change. ``attributes`` merge (a key set to null is removed)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_null_only_where_allowed)

    email: EmailStr | None = None
    name: SingleLine | None = Field(default=None, min_length=1)
    company: SingleLine | None = None
    plan: Annotated[str, Field(max_length=100), OneLine] | None = None
    annual_contract_value: Money | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    locale: Locale | None = None
    timezone: Annotated[str | None, AfterValidator(lambda v: v and validate_timezone(v))] = None
    tier: Tier | None = Field(default=None, description="null: derive from the contract value")
    csm_name: SingleLine | None = None
    csm_email: EmailStr | None = None
    attributes: Attributes | None = None

    @field_validator(*NOT_NULL, mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        """Runs only for the fields sent, before their type's check: the error names the field."""
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class CustomerView(BaseModel):
    external_id: str
    email: str
    name: str
    company: str
    plan: str
    annual_contract_value: Decimal
    currency: str
    locale: str
    timezone: str
    tier: str
    tier_explicit: bool
    csm_name: str | None
    csm_email: str | None
    attributes: dict[str, Any]
    health_score: int | None
    health_band: str | None


@dataclass(frozen=True)
class CustomerUpdate:
    customer: CustomerView
    tier_changed: bool
    task_ids: list[int]


def update_customer(
    session: Session, external_id: str, patch: CustomerPatch, rules: UsageRules, now: datetime
) -> CustomerUpdate:
    row = _row(session, external_id)
    lock_customers(session, [row.id])
    row = _row(session, external_id)  # re-read under the lock
    values = {name: getattr(patch, name) for name in patch.model_fields_set if name != "attributes"}
    if patch.attributes is not None:
        merged = {**row.attributes, **patch.attributes}
        values["attributes"] = {k: v for k, v in merged.items() if v is not None}
    for name in ("email", "csm_email"):
        if values.get(name) is not None:
            values[name] = str(values[name])
    tier, explicit = _tier(row, patch, rules)
    values.update(tier=tier, tier_explicit=explicit, updated_at=now)
    session.execute(update(customers).where(customers.c.id == row.id).values(**values))
    tasks: list[int] = []
    if tier != row.tier:
        tasks = _tier_moved(session, row.id, row.tier, tier, rules, now)
    return CustomerUpdate(
        CustomerView.model_validate(_row(session, external_id), from_attributes=True),
        tier != row.tier,
        tasks,
    )


def _row(session: Session, external_id: str) -> Any:
    row = session.execute(select(customers).where(customers.c.external_id == external_id)).first()
    if row is None:
        raise CustomerNotFound(f"no customer with external_id {external_id!r}")
    return row


def _tier(row: Any, patch: CustomerPatch, rules: UsageRules) -> tuple[Tier, bool]:
    settings = rules.settings
    value = patch.annual_contract_value
    acv = row.annual_contract_value if value is None else value
    given = "tier" in patch.model_fields_set
    explicit = patch.tier is not None if given else bool(row.tier_explicit)
    if explicit:
        return (patch.tier or row.tier), True
    return derive_tier(acv, settings.tier_high_threshold, settings.tier_low_threshold), False


def _tier_moved(
    session: Session, customer_id: int, old: str, new: str, rules: UsageRules, now: datetime
) -> list[int]:
    """Record ``tier_changed`` (journeys react to it); a move into high opens a CSM task."""
    event = {
        "customer_id": customer_id,
        "name": "tier_changed",
        "event_key": f"tier_changed:{now.isoformat()}:{old}->{new}",
        "occurred_at": now,
        "received_at": now,
        "properties": {"from": old, "to": new},
    }
    tasks = react(session, store_new_events(session, [event]), rules, now)
    if new == "high":
        reason = f"moved from {old} touch to high touch: introduce yourself as their CSM"
        task = open_task(
            session.connection(),
            customer_id,
            "new_high_touch",
            reason,
            NEW_HIGH_TOUCH_TASK_DUE,
            now,
        )
        if task is not None:
            tasks.append(task)
    return tasks
