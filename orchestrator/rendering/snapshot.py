"""The templates a journey uses, and rendering from a version's copy of them.

A journey *uses* every file the documented fallback chain (:mod:`orchestrator.rendering.lookup`)
can pick for one of its steps, for each tier the step is for and each locale: the locales its
template files are written in, and the installation's default (any other locale falls back to
one of those). Add the layouts and macros those files extend, import or include, and the
stylesheet inlined into them: that is what a customer's mail can be made of, so it is what a
version keeps (:mod:`orchestrator.journeys.versions`).

A :class:`SnapshotRenderer` renders from such a copy held in memory, with the same chain, the
same sandbox and the same stylesheet inlining as the folder: a customer who finishes a journey
on the version they started (``in_flight: finish_started``) gets that version's text even
after the files changed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path

from jinja2 import BaseLoader, Environment, TemplateNotFound, TemplateSyntaxError, meta

from orchestrator.guards.jinja_nesting import BoundedNesting
from orchestrator.journeys.model import ALL_TIERS, Journey
from orchestrator.rendering.css import STYLESHEET, Stylesheet
from orchestrator.rendering.environment import mail_environment
from orchestrator.rendering.lookup import candidate_names, is_template_file
from orchestrator.rendering.mail_files import MailFileTooLarge, read_mail_file, template_path
from orchestrator.rendering.renderer import MailRenderer

SUFFIXES = ("html", "txt")
SNAPSHOT_FRAMES = "snapshot:"  # the file name a snapshot template's compiled code carries


def used_templates(journey: Journey, templates_dir: Path, default_locale: str) -> dict[str, str]:
    """Name (under ``templates_dir``) → text of every template file ``journey`` may render."""
    found: dict[str, str] = {}
    for step in journey.steps:
        for locale in template_locales(templates_dir, step.template, default_locale):
            for tier in step.tiers:
                for suffix in SUFFIXES:
                    names = candidate_names(step.template, tier, locale, default_locale, suffix)
                    name = next((n for n in names if is_template_file(templates_dir / n)), None)
                    if name is not None:
                        _read_into(found, templates_dir, name)
    _add_references(found, templates_dir)
    if any(name.endswith(".html") for name in found):
        _read_into(found, templates_dir, STYLESHEET)
    return found


def template_locales(templates_dir: Path, template: str, default_locale: str) -> list[str]:
    """The locales ``template``'s files are written in (``welcome.high.en.html`` → ``en``),
    and the default locale."""
    path = templates_dir / template
    locales = {default_locale}
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return [default_locale]
    for entry in entries:
        name = entry.name
        if not name.startswith(f"{path.name}."):
            continue
        parts = name[len(path.name) + 1 :].split(".")
        if len(parts) < 2 or parts[-1] not in SUFFIXES:
            continue
        locales.update(part for part in parts[:-1] if part and part not in ALL_TIERS)
    return sorted(locales)


def _read_into(found: dict[str, str], templates_dir: Path, name: str) -> bool:
    """Add the template ``name`` to ``found``; False when it is none.

    The name is resolved as the folder's loader resolves it, and read only if it is a regular
    file within the bound (:mod:`orchestrator.rendering.mail_files`): an ``{% include %}`` of
    ``"../../etc/hostname"`` or ``"/dev/zero"`` is not stored in the version (rendering from
    it then fails as rendering from the folder does)."""
    if name in found:
        return True
    path = template_path(templates_dir, name)
    if path is None:
        return False
    try:
        found[name] = read_mail_file(path)
    except (OSError, UnicodeDecodeError, MailFileTooLarge):
        return False  # gone since it was listed, or unreadable: rendering would fail the same
    return True


def _add_references(found: dict[str, str], templates_dir: Path) -> None:
    """Close over ``{% extends %}``, ``{% import %}`` and ``{% include %}`` of literal names."""
    queue = list(found)
    while queue:
        name = queue.pop()
        for reference in _references(found[name]):
            if reference not in found and _read_into(found, templates_dir, reference):
                queue.append(reference)


_PARSER = BoundedNesting(autoescape=True)  # parsing only: nothing is rendered with it


@functools.lru_cache(maxsize=2048)
def _references(source: str) -> tuple[str, ...]:
    """The names a template's text refers to; cached by the text, since every look at the
    files (and every journey sharing a layout) would parse the same text again."""
    try:
        tree = _PARSER.parse(source)
        return tuple(name for name in meta.find_referenced_templates(tree) if name is not None)
    except (TemplateSyntaxError, RecursionError):
        # a broken template renders as broken from the copy too; so does one the walk of its
        # tree cannot finish (thousands of chained filters or lookups: the walk recurses)
        return ()


class SnapshotLoader(BaseLoader):
    """Templates from a version's copy; they never change, so they never go stale."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self.files = dict(files)

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        if template not in self.files:
            raise TemplateNotFound(template)
        return self.files[template], f"{SNAPSHOT_FRAMES}{template}", lambda: True


class SnapshotStylesheet:
    """The stylesheet as the version kept it (the interface of ``css.StylesheetFile``)."""

    def __init__(self, css: str | None) -> None:
        self.path = Path(STYLESHEET)
        self._css = css
        self._parsed: Stylesheet | None = None

    def version(self) -> int:
        return 1

    def load(self) -> Stylesheet | None:
        if self._css is None:
            return None
        if self._parsed is None:
            self._parsed = Stylesheet(self._css)
        return self._parsed


_FOUND_KEPT = 4096


class SnapshotRenderer(MailRenderer):
    """A :class:`MailRenderer` over a version's copy of the templates: same chain, same
    sandbox, same stylesheet inlining; nothing is read from the folder."""

    def __init__(self, files: Mapping[str, str], default_locale: str = "ja") -> None:
        super().__init__(Path(SNAPSHOT_FRAMES), default_locale)
        self.files = dict(files)
        self.env = mail_environment(
            SnapshotLoader(self.files), SnapshotStylesheet(self.files.get(STYLESHEET))
        )
        self._frames = SNAPSHOT_FRAMES
        self._found: dict[tuple[str, str, str, str], str | None] = {}

    def resolve(self, template: str, tier: str, locale: str, suffix: str = "html") -> str | None:
        """The first name of the chain in the copy. The copy never changes, so each answer is
        kept (every mail asks twice, for its HTML and its text; walking the chain was ~2.4
        µs each: bench/README, "Session 26"); at most ``_FOUND_KEPT`` of them, as a locale is
        the customer's own text."""
        key = (template, tier, locale, suffix)
        try:
            return self._found[key]
        except KeyError:
            pass
        names = candidate_names(template, tier, locale, self.default_locale, suffix)
        found = next((name for name in names if name in self.files), None)
        if len(self._found) >= _FOUND_KEPT:
            self._found.clear()
        self._found[key] = found
        return found

    def template_names(self) -> list[str]:
        return sorted(name for name in self.files if name.endswith((".html", ".txt")))
