"""The console's two catalogs hold every message its templates and code mark, Japanese
translates each one with the same placeholders, and the UI language is chosen as documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from orchestrator.console.i18n import LOCALE_DIR, load_catalogs, negotiate

CONSOLE = Path(__file__).resolve().parents[2] / "orchestrator" / "console"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> set[str | tuple[str, ...]]:
    method_map = [("templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found: set[str | tuple[str, ...]] = set()
    for _, _, message, _, _ in extract_from_dir(
        str(CONSOLE),
        method_map,
        options,
        keywords=keywords,
        callback=lambda *args: None,
    ):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def catalog(language: str) -> dict[str | tuple[str, ...], Message]:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "console.po").open("rb") as handle:
        read = read_po(handle, locale=language)
    return {m.id if isinstance(m.id, str) else tuple(m.id): m for m in read if m.id}


@pytest.mark.parametrize("language", ["ja", "en"])
def test_each_catalog_holds_every_message_the_console_shows(language: str) -> None:
    missing = extracted() - set(catalog(language))
    assert not missing, f"run `make messages`, then translate: {sorted(map(str, missing))}"


def test_japanese_translates_every_message_with_the_same_placeholders() -> None:
    problems = []
    for message in catalog("ja").values():
        ids = (message.id,) if isinstance(message.id, str) else tuple(message.id)
        texts = (
            (message.string,) if isinstance(message.string, str) else tuple(message.string or ())
        )
        if "fuzzy" in message.flags or not all(texts):
            problems.append(f"untranslated: {ids[0]!r}")
            continue
        wanted = set(PLACEHOLDER.findall(ids[0]))
        for text in texts:
            if set(PLACEHOLDER.findall(text)) != wanted:
                problems.append(f"placeholders differ: {ids[0]!r} → {text!r}")
    assert not problems, "\n".join(problems)


def test_the_compiled_catalogs_translate() -> None:
    catalogs = load_catalogs()
    assert catalogs.gettext("ja", "Customers") == "顧客"
    assert catalogs.gettext("en", "Customers") == "Customers"
    assert catalogs.ngettext("ja", "%(num)d note", "%(num)d notes", 2) == "メモ %(num)d 件"
    assert catalogs.ngettext("en", "%(num)d note", "%(num)d notes", 2) == "%(num)d notes"
    assert catalogs.gettext("fr", "Customers") == "顧客"  # unknown: the default language


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, None, "ja"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "fr-FR,en;q=0.8,ja;q=0.9", "ja"),
        (None, "fr-FR,de;q=0.5", "ja"),
        (None, "en;q=0, ja;q=0.1", "ja"),
        (None, "en;q=abc", "ja"),
        ("en", "ja", "en"),
        ("xx", "en", "en"),
        (None, "en," * 5000, "en"),
    ],
)
def test_the_language_is_the_choice_then_the_browsers_then_japanese(
    cookie: str | None, header: str | None, expected: str
) -> None:
    assert negotiate(cookie, header) == expected
