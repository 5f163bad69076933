"""Japanese and English for the console, from gettext catalogs read at start-up.

Why gettext ``.po`` files (read with Babel) rather than a dictionary in code: they are the
format translators and their tools (Poedit, Weblate, Crowdin) work in; English source strings
stay readable in the templates (``{% trans %}Customers{% endtrans %}``); Babel extracts every
marked string, so a test proves both catalogs hold each one (``tests/console/test_i18n.py``).
The ``.po`` text is compiled in memory when the console starts: no binary ``.mo`` in git.
English is the source language, so its catalog may leave a message untranslated (the message
is the English); Japanese must translate every one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "console"


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class Catalogs:
    """One ``Translations`` per UI language."""

    by_language: dict[str, Translations]

    def gettext(self, language: str, message: str) -> str:
        return self.by_language[_known(language)].ugettext(message)

    def ngettext(self, language: str, singular: str, plural: str, n: int) -> str:
        return self.by_language[_known(language)].ungettext(singular, plural, n)


@lru_cache(maxsize=1)
def load_catalogs(locale_dir: Path = LOCALE_DIR) -> Catalogs:
    """Read and compile each language's ``console.po`` (once per process)."""
    return Catalogs({language: _compile(locale_dir, language) for language in LANGUAGES})


def _compile(locale_dir: Path, language: str) -> Translations:
    path = locale_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def negotiate(chosen: str | None, accept_language: str | None) -> str:
    """The UI language: the one chosen and remembered (a cookie), else the browser's first
    supported preference by weight, else Japanese."""
    if chosen in LANGUAGES:
        return chosen
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "")[:500].split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = tag.strip().lower().split("-")[0]
        if language in LANGUAGES and quality > 0:
            weighted.append((-quality, index, language))
    return min(weighted)[2] if weighted else DEFAULT_LANGUAGE


def _known(language: str) -> str:
    return language if language in LANGUAGES else DEFAULT_LANGUAGE
