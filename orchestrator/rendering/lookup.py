"""The documented fallback chain from (template, tier, locale) to a file under templates/mail.

For template ``onboarding/welcome``, tier ``high`` and locale ``en-US`` (default ``ja``),
the first file that exists wins::

    onboarding/welcome.high.en-US.html
    onboarding/welcome.en-US.html
    onboarding/welcome.high.en.html
    onboarding/welcome.en.html
    onboarding/welcome.high.ja.html     (the installation's default locale)
    onboarding/welcome.ja.html
    onboarding/welcome.high.html
    onboarding/welcome.html

A ``.txt`` file found by the same chain becomes the plain-text part; without one, the text
part is derived from the HTML.
"""

from __future__ import annotations

from pathlib import Path


def locale_chain(locale: str, default_locale: str) -> list[str]:
    """``en-US`` → ``en-US, en, <default>``, without repeats."""
    chain: list[str] = []
    for candidate in (locale, locale.split("-")[0].split("_")[0], default_locale):
        if candidate and candidate not in chain:
            chain.append(candidate)
    return chain


def candidate_names(
    template: str, tier: str, locale: str, default_locale: str, suffix: str
) -> list[str]:
    names = [
        f"{template}.{part}.{suffix}"
        for loc in locale_chain(locale, default_locale)
        for part in (f"{tier}.{loc}", loc)
    ]
    names += [f"{template}.{tier}.{suffix}", f"{template}.{suffix}"]
    return names


def is_template_file(path: Path) -> bool:
    """Whether ``path`` is a file; a name the file system refuses (one too long for it) names
    none, rather than raising as ``Path.is_file`` does."""
    try:
        return path.is_file()
    except OSError:
        return False


def not_utf8(exc: UnicodeDecodeError) -> tuple[int, str]:
    """The line of a mail file's first byte that is not UTF-8 (the file was decoded whole),
    and why it cannot be read."""
    line = exc.object[: exc.start].count(b"\n") + 1
    return line, f"not UTF-8 (byte 0x{exc.object[exc.start]:02x}); save the file as UTF-8"
