"""The customer's facts as templates see them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from orchestrator.rendering.samples import sample_customer

_FACTS = sample_customer("low", "ja", datetime(2026, 11, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("locale", "language"), [("ja", "ja"), ("en-US", "en"), ("pt_BR", "pt"), ("zh-Hant-TW", "zh")]
)
def test_the_language_is_the_locale_s_first_part(locale: str, language: str) -> None:
    facts = dataclasses.replace(_FACTS, locale=locale)
    assert facts.language == language
    assert facts.language == language  # worked out once, the same again
    assert facts.as_dict()["language"] == language


def test_a_replaced_locale_gives_its_own_language() -> None:
    """The language is kept with the facts it came from: a copy with another locale (as the
    renderer makes with dataclasses.replace) works its own out."""
    assert _FACTS.language == "ja"
    english = dataclasses.replace(_FACTS, locale="en-GB")
    assert english.language == "en"
    assert _FACTS.language == "ja"
    assert english == dataclasses.replace(_FACTS, locale="en-GB")  # equality by fields alone
