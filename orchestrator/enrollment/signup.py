"""The signup payload: what the product's signup flow sends to enroll a new customer."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from orchestrator.customers.fields import (
    Address,
    Attributes,
    Locale,
    Money,
    OneLine,
    SingleLine,
)
from orchestrator.customers.tiers import Tier
from orchestrator.customers.timezones import validate_timezone
from orchestrator.guards.bounds import Moment, StrippedText
from orchestrator.recipients.consent import ConsentIn


class SignupRequest(StrippedText):
    """A new customer. Unknown fields are refused so typos surface instead of vanishing."""

    model_config = ConfigDict(extra="forbid")

    external_id: Annotated[str, OneLine] = Field(
        min_length=1, max_length=255, description="The customer's id in your product."
    )
    email: Address
    name: SingleLine = Field(min_length=1)
    company: SingleLine = ""
    plan: Annotated[str, OneLine] = Field(default="", max_length=100)
    annual_contract_value: Money = Decimal(0)
    currency: str = Field(default="JPY", pattern=r"^[A-Z]{3}$")
    locale: Locale = "ja"
    timezone: Annotated[str, AfterValidator(validate_timezone)] = "Asia/Tokyo"
    signed_up_at: Moment | None = None
    tier: Tier | None = None
    csm_name: SingleLine | None = None
    csm_email: Address | None = None
    attributes: Attributes = Field(default_factory=dict)
    consent: ConsentIn | None = Field(
        default=None, description="How and when the customer agreed to receive mail."
    )


class SignupAccepted(BaseModel):
    """The hook's answer: the ids to correlate with, whether this call created them or not."""

    customer_id: int
    external_id: str
    tier: Tier
    enrollment_ids: list[int]
    created: bool
