"""Made-up customers, one per tier and language, for rendering mails without a database.

``stepmail check`` renders every step for every tier and locale with them, ``stepmail preview``
shows a reviewer what a real customer of that tier would get, and ``stepmail simulate`` walks a
journey with them. They are realistic on purpose: a high-touch sample has a CSM and a large
contract, the others do not, so a template that forgets ``csm`` can be None fails in review
rather than in a customer's inbox. All addresses use the reserved ``example`` domains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from orchestrator.customers.facts import CustomerFacts
from orchestrator.journeys.model import ALL_TIERS


@dataclass(frozen=True)
class _Persona:
    name: str
    email: str
    company: str
    plan: str
    timezone: str
    annual_contract_value: Decimal
    seats: int
    industry: str
    csm_name: str | None = None
    csm_email: str | None = None


_PERSONAS: dict[tuple[str, str], _Persona] = {
    ("high", "ja"): _Persona(
        name="山田 太郎",
        email="taro.yamada@tohto-logistics.example",
        company="東都ロジスティクス株式会社",
        plan="Enterprise",
        timezone="Asia/Tokyo",
        annual_contract_value=Decimal(3_600_000),
        seats=400,
        industry="物流",
        csm_name="佐藤 花子",
        csm_email="hanako.sato@example.com",
    ),
    ("low", "ja"): _Persona(
        name="鈴木 一郎",
        email="ichiro.suzuki@minato-kikaku.example",
        company="株式会社みなと企画",
        plan="Business",
        timezone="Asia/Tokyo",
        annual_contract_value=Decimal(360_000),
        seats=40,
        industry="広告・マーケティング",
    ),
    ("tech", "ja"): _Persona(
        name="高橋 美咲",
        email="misaki.takahashi@aoba-design.example",
        company="合同会社あおばデザイン",
        plan="Starter",
        timezone="Asia/Tokyo",
        annual_contract_value=Decimal(36_000),
        seats=5,
        industry="デザイン",
    ),
    ("high", "en"): _Persona(
        name="Emily Carter",
        email="emily.carter@northwind-mfg.example",
        company="Northwind Manufacturing Inc.",
        plan="Enterprise",
        timezone="America/Chicago",
        annual_contract_value=Decimal(3_600_000),
        seats=400,
        industry="Manufacturing",
        csm_name="Daniel Brooks",
        csm_email="daniel.brooks@example.com",
    ),
    ("low", "en"): _Persona(
        name="Michael Chen",
        email="michael.chen@harborview-marketing.example",
        company="Harborview Marketing LLC",
        plan="Business",
        timezone="America/Los_Angeles",
        annual_contract_value=Decimal(360_000),
        seats=40,
        industry="Marketing",
    ),
    ("tech", "en"): _Persona(
        name="Sophie Turner",
        email="sophie@brightleaf-studio.example",
        company="Brightleaf Studio",
        plan="Starter",
        timezone="Europe/London",
        annual_contract_value=Decimal(36_000),
        seats=5,
        industry="Design",
    ),
}


def sample_customer(
    tier: str,
    locale: str,
    now: datetime,
    *,
    csm: bool | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> CustomerFacts:
    """A sample customer of ``tier`` who signed up at ``now`` and reads ``locale``.

    English locales (``en``, ``en-US``) get an English-speaking customer; every other locale
    gets a Japanese one, as the installation's default language is Japanese. The locale itself
    is kept as given, so the template fallback chain is exercised exactly as for a real customer.
    ``csm`` gives (True) or takes away (False) the customer's CSM, whatever the tier's usual;
    ``attributes`` are added to the persona's own (``stepmail check`` renders both sides of
    each attribute a template tests for).
    """
    if tier not in ALL_TIERS:
        raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(ALL_TIERS)}")
    language = "en" if locale.split("-")[0].split("_")[0] == "en" else "ja"
    persona = _PERSONAS[(tier, language)]
    if csm is not None and csm != (persona.csm_name is not None):
        lead = _PERSONAS[("high", language)]
        persona = replace(
            persona,
            csm_name=lead.csm_name if csm else None,
            csm_email=lead.csm_email if csm else None,
        )
    base = {"seats": persona.seats, "industry": persona.industry, "sample": True}
    return CustomerFacts(
        external_id=f"sample-{tier}-{locale}",
        email=persona.email,
        name=persona.name,
        company=persona.company,
        plan=persona.plan,
        tier=tier,
        locale=locale,
        timezone=persona.timezone,
        annual_contract_value=persona.annual_contract_value,
        currency="JPY",
        csm_name=persona.csm_name,
        csm_email=persona.csm_email,
        attributes={**base, **(attributes or {})},
        signed_up_at=now,
    )
