"""The customer as templates and conditions see it: a frozen value, detached from the store."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from orchestrator.customers.relationship import Relationship


@dataclass(frozen=True)
class CustomerFacts:
    """The customer as templates and conditions see it, detached from the database."""

    external_id: str
    email: str
    name: str
    company: str
    plan: str
    tier: str
    locale: str
    timezone: str
    annual_contract_value: Decimal
    currency: str
    csm_name: str | None
    csm_email: str | None
    attributes: dict[str, Any]
    signed_up_at: datetime
    public_id: str = ""  # random id for unsubscribe links; never shown to templates
    stage: str | None = None  # the lifecycle stage (journeys/lifecycle.yaml), if any
    relationship: Relationship = field(default_factory=Relationship)  # cancelled, exited…

    @functools.cached_property
    def language(self) -> str:
        """``ja`` of ``ja-JP``; worked out once (a mail asks ~6 times: bench/README,
        "Session 40")."""
        return self.locale.split("-")[0].split("_")[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "email": self.email,
            "name": self.name,
            "company": self.company,
            "plan": self.plan,
            "tier": self.tier,
            "locale": self.locale,
            "language": self.language,
            "timezone": self.timezone,
            "annual_contract_value": self.annual_contract_value,
            "currency": self.currency,
            "csm_name": self.csm_name,
            "csm_email": self.csm_email,
            "attributes": dict(self.attributes),
            "signed_up_at": self.signed_up_at,
            "stage": self.stage,
        }
