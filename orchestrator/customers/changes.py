"""A customer patch (``PATCH /v1/customers/{external_id}``) as pure data: which fields it may
change, the view it answers with, and the tier that follows from it.

The tier follows the contract value (:class:`~orchestrator.customers.tiers.TierThresholds`)
unless it was set explicitly; ``"tier": null`` makes it derived again.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from orchestrator.customers.fields import (
    Address,
    Attributes,
    Locale,
    Money,
    OneLine,
    SingleLine,
    check_attributes_size,
)
from orchestrator.customers.tiers import Tier, TierThresholds
from orchestrator.customers.timezones import validate_timezone
from orchestrator.errors import InvalidRequest
from orchestrator.guards.bounds import StrippedText

NOT_NULL = (
    "cancelled",
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

    email: Address | None = None
    name: SingleLine | None = Field(default=None, min_length=1)
    company: SingleLine | None = None
    plan: Annotated[str, Field(max_length=100), OneLine] | None = None
    annual_contract_value: Money | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    locale: Locale | None = None
    timezone: Annotated[str | None, AfterValidator(lambda v: v and validate_timezone(v))] = None
    tier: Tier | None = Field(default=None, description="null: derive from the contract value")
    csm_name: SingleLine | None = None
    csm_email: Address | None = None
    attributes: Attributes | None = None
    cancelled: bool | None = Field(
        default=None,
        description="true: the subscription ended (recorded as a subscription_cancelled event; "
        "automation steps aside); false: it started again (subscription_reactivated)",
    )

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
    stage: str | None = Field(default=None, description="The lifecycle stage, if any")
    stage_source: str | None = Field(
        default=None,
        description="Who set it: signup, rules, manual (until the rules move past it) or pinned",
    )
    stage_changed_at: datetime | None = None
    cancelled_at: datetime | None = Field(
        default=None, description="When the subscription was cancelled (null: it runs)"
    )


def changed_values(current: Any, patch: CustomerPatch, tiers: TierThresholds) -> dict[str, Any]:
    """The column values the patch sets on ``current`` (a customer row), the tier with them;
    attributes merge, and one set to null is removed."""
    values = {
        name: getattr(patch, name)
        for name in patch.model_fields_set
        if name not in ("attributes", "cancelled")  # cancelling is an event, not a column
    }
    if patch.attributes is not None:
        merged = {**current.attributes, **patch.attributes}
        values["attributes"] = _bounded({k: v for k, v in merged.items() if v is not None})
    for name in ("email", "csm_email"):
        if values.get(name) is not None:
            values[name] = str(values[name])
    tier, explicit = next_tier(current, patch, tiers)
    values.update(tier=tier, tier_explicit=explicit)
    return values


def _bounded(attributes: dict[str, Any]) -> dict[str, Any]:
    """The merged attributes, refused (naming the field) past what one body could carry: a
    caller adding keys patch after patch would otherwise grow them without end."""
    try:
        return check_attributes_size(attributes)
    except ValueError as exc:
        message = f"merged with the customer's, {exc} (set keys to null to remove them)"
        raise InvalidRequest(
            [{"type": "too_long", "loc": ["body", "attributes"], "msg": message}]
        ) from None


def next_tier(current: Any, patch: CustomerPatch, tiers: TierThresholds) -> tuple[Tier, bool]:
    """The tier after the patch, and whether it is explicit (else it follows the contract)."""
    value = patch.annual_contract_value
    acv = current.annual_contract_value if value is None else value
    given = "tier" in patch.model_fields_set
    explicit = patch.tier is not None if given else bool(current.tier_explicit)
    if explicit:
        return (patch.tier or current.tier), True
    return tiers.tier_for(acv), False
