"""A version's renderer finds a step's files by the documented chain in its copy, and keeps
each answer (the copy never changes), a bounded number of them."""

from __future__ import annotations

import pytest

from orchestrator.rendering import snapshot
from orchestrator.rendering.lookup import candidate_names
from orchestrator.rendering.snapshot import SnapshotRenderer

_FILES = {
    "s/w.high.en.html": "{% block subject %}high en{% endblock %}",
    "s/w.ja.html": "{% block subject %}ja{% endblock %}",
    "s/w.html": "{% block subject %}plain{% endblock %}",
    "s/w.tech.txt": "text",
}


def _walked(template: str, tier: str, locale: str, suffix: str) -> str | None:
    names = candidate_names(template, tier, locale, "ja", suffix)
    return next((name for name in names if name in _FILES), None)


@pytest.mark.parametrize(
    ("tier", "locale", "suffix", "expected"),
    [
        ("high", "en-US", "html", "s/w.high.en.html"),
        ("low", "en", "html", "s/w.ja.html"),  # the installation's default locale
        ("low", "fr", "html", "s/w.ja.html"),
        ("tech", "fr", "txt", "s/w.tech.txt"),
        ("high", "en", "txt", None),
    ],
)
def test_the_chain_is_walked_in_the_copy(
    tier: str, locale: str, suffix: str, expected: str | None
) -> None:
    renderer = SnapshotRenderer(_FILES)
    for _ in range(2):  # the kept answer is the walked one
        assert renderer.resolve("s/w", tier, locale, suffix) == expected
        assert expected == _walked("s/w", tier, locale, suffix)
    assert renderer.resolve("s/other", tier, locale, suffix) is None


def test_each_answer_is_kept_and_the_kept_ones_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walks: list[str] = []

    def counting(template: str, tier: str, locale: str, default: str, suffix: str) -> list[str]:
        walks.append(locale)
        return candidate_names(template, tier, locale, default, suffix)

    monkeypatch.setattr(snapshot, "candidate_names", counting)
    monkeypatch.setattr(snapshot, "_FOUND_KEPT", 3)
    renderer = SnapshotRenderer(_FILES)
    for _ in range(3):
        assert renderer.resolve("s/w", "high", "en", "html") == "s/w.high.en.html"
    assert walks == ["en"]
    for locale in ("a", "b", "c", "d"):  # hostile locales do not grow it without bound
        assert renderer.resolve("s/w", "low", locale, "html") == "s/w.ja.html"
    assert len(renderer._found) <= 3
    assert renderer.resolve("s/w", "low", "en", "html") == "s/w.ja.html"
