"""Touch tiers: derived from the annual contract value unless the signup names one."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Tier = Literal["high", "low", "tech"]
# More touch first: a move to a later tier is a move down (fewer humans, more self-serve).
TIER_ORDER: tuple[Tier, ...] = ("high", "low", "tech")


def is_move_down(old: str, new: str) -> bool:
    """True when ``new`` gives the customer less human touch than ``old``."""
    order: dict[str, int] = {tier: rank for rank, tier in enumerate(TIER_ORDER)}
    return order.get(new, 0) > order.get(old, 0)


def derive_tier(
    annual_contract_value: Decimal, high_threshold: Decimal, low_threshold: Decimal
) -> Tier:
    """High touch from ``high_threshold`` up, low touch from ``low_threshold``, tech below."""
    if annual_contract_value >= high_threshold:
        return "high"
    if annual_contract_value >= low_threshold:
        return "low"
    return "tech"


@dataclass(frozen=True)
class TierThresholds:
    """``STEPMAIL_TIER_HIGH_THRESHOLD`` and ``_LOW_THRESHOLD``: the first values of each tier."""

    high: Decimal
    low: Decimal

    def tier_for(self, annual_contract_value: Decimal) -> Tier:
        return derive_tier(annual_contract_value, self.high, self.low)
