"""The signup payload: what the product's signup flow sends to enroll a new customer."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, WithJsonSchema

from orchestrator.bounds import Moment, StrippedText
from orchestrator.consent import ConsentIn
from orchestrator.links import check_link_attributes
from orchestrator.mail_headers import refuse_unsafe_characters
from orchestrator.tiers import Tier
from orchestrator.timezones import validate_timezone

Locale = Annotated[str, Field(pattern=r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", max_length=35)]
# Text that can reach a mail header (To, From, Reply-To, a subject): one line, no control
# characters, NUL or Unicode line breaks. The mail layer would neutralise them anyway
# (orchestrator/mail_headers.py); refusing them here tells the sender which field was wrong.
OneLine = AfterValidator(refuse_unsafe_characters)
SingleLine = Annotated[str, Field(max_length=200), OneLine]
# Free JSON, but a top-level key ending in _url is a link a template may put in an href.
Attributes = Annotated[dict[str, Any], AfterValidator(check_link_attributes)]
# A yearly contract value: at most 14 digits before the point and 2 after (the database holds
# Numeric(18, 2)). The schema states the bound that pydantic's own schema leaves out.
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=16, decimal_places=2),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "exclusiveMaximum": 10**14},
                {"type": "string", "description": 'a decimal number, e.g. "1200000.50"'},
            ]
        }
    ),
]


class SignupRequest(StrippedText):
    """A new customer. Unknown fields are refused so typos surface instead of vanishing."""

    model_config = ConfigDict(extra="forbid")

    external_id: Annotated[str, OneLine] = Field(
        min_length=1, max_length=255, description="The customer's id in your product."
    )
    email: EmailStr
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
    csm_email: EmailStr | None = None
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
