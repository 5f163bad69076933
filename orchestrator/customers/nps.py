"""The NPS bands an answer falls in: pure, so the survey store and the read API share them."""

from __future__ import annotations

from typing import Literal

Category = Literal["detractor", "passive", "promoter"]


def nps_category(score: int) -> Category:
    """0-6 detractor, 7-8 passive, 9-10 promoter (the usual NPS bands)."""
    return "detractor" if score <= 6 else "passive" if score <= 8 else "promoter"
