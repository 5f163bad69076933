"""Touch tiers from the contract value: each threshold is the first value of its tier."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orchestrator.customers.tiers import derive_tier

HIGH, LOW = Decimal(1_000_000), Decimal(100_000)


@pytest.mark.parametrize(
    ("value", "tier"),
    [
        (Decimal(0), "tech"),
        (Decimal("99999.99"), "tech"),
        (Decimal(100_000), "low"),
        (Decimal("999999.99"), "low"),
        (Decimal(1_000_000), "high"),
        (Decimal(10**13), "high"),
    ],
)
def test_thresholds(value: Decimal, tier: str) -> None:
    assert derive_tier(value, HIGH, LOW) == tier


def test_equal_thresholds_leave_no_low_tier() -> None:
    assert derive_tier(Decimal(5), Decimal(5), Decimal(5)) == "high"
    assert derive_tier(Decimal(4), Decimal(5), Decimal(5)) == "tech"
