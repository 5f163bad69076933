"""Render a step's mail for one tier and locale: subject, HTML and plain text.

The HTML needs no post-processing: the stylesheet was inlined when the template was compiled,
and its links are turned into signed redirect links as it renders when the mail tracks
clicks (see :mod:`orchestrator.rendering.css`). A text template's links are rewritten after
it renders; a text part derived from the HTML carries the HTML's links.
"""

from __future__ import annotations

import html as html_lib
import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import (
    Template,
    TemplateNotFound,
    TemplateRuntimeError,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context

from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import TemplateError
from orchestrator.guards import jinja_steps
from orchestrator.guards.jinja_steps import step_budget
from orchestrator.guards.mail_headers import single_line
from orchestrator.rendering.environment import make_mail_environment
from orchestrator.rendering.lookup import candidate_names, is_template_file
from orchestrator.rendering.slots import cut, marking, note_template
from orchestrator.rendering.text_part import LayoutTexts, plain_text
from orchestrator.tracking.links import ClickLinks, tracking

_RENDER_ERRORS = (
    UndefinedError,
    SecurityError,
    TypeError,
    ValueError,
    AttributeError,
    LookupError,  # an index or key the template asks for that is not there ('{0}'.format())
    TemplateNotFound,  # a missing layout or macro file, found only when extended or imported
    TemplateSyntaxError,  # ... or a broken one
    RecursionError,  # a template that includes itself, a macro that calls itself without end
    ArithmeticError,  # a division by zero, a float out of range
    TemplateRuntimeError,  # {% extends %} twice in one template
)
_ENDLESS = (
    "nested without end: a template that includes, extends or imports itself (through "
    "others too), or a macro that calls itself without end"
)


def _endless(frames: list[tuple[str, int]], rendered: str) -> TemplateError | None:
    """A recursion's cycle, named at the same line wherever Python's limit struck: the
    outermost line that comes round again starts it; of its lines, the rendered template's
    last is named (the include or call its author wrote), the cycle's others in the message."""
    first_seen: dict[tuple[str, int], int] = {}
    for index, frame in enumerate(frames):
        start = first_seen.setdefault(frame, index)
        if start != index:
            cycle = frames[start:index]
            own = [i for i, (name, _) in enumerate(cycle) if name == rendered]
            at = own[-1] if own else 0  # its last: the include or call that goes round again
            cycle = cycle[at:] + cycle[:at]  # from the named line round to it again
            shown = " → ".join(f"{name}:{line}" for name, line in [*cycle, cycle[0]])
            detail = f" ({shown} → …)" if len(cycle) > 1 else ""
            return TemplateError(cycle[0][0], cycle[0][1], _ENDLESS + detail)
    return None


_UNENCODABLE = (
    'renders a lone surrogate (U+D800 to U+DFFF, such as "\\ud800" in a string), which no mail '
    "can carry: in the template or a value it shows (a journey's vars)"
)


# A mail's HTML or text past this is refused as a template error (Gmail clips a mail's HTML
# past 102 KB, and `stepmail check` reports that; this bounds what a worker holds and sends,
# and what the text part's converter reads). Its values and markup are charged on the
# render's step budget as they are written, so no render comes near it for long.
MAX_MAIL_CHARS = 2_000_000


def _too_large(size: int, part: str) -> str:
    return (
        f"renders {size:,} characters of {part}; at most {MAX_MAIL_CHARS:,} (Gmail clips a "
        f"mail past 102 KB)"
    )


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    html: str
    text: str
    template_name: str


@dataclass(frozen=True)
class DraftMail:
    """A mail rendered but for the text part made from its HTML (``text`` is None when it is
    still to be made; a text template's is there already).

    A batch drafts all its mails, then finishes them all: the HTML-to-text converter is C++
    with its own code and tables, and run between two Jinja renders it found none of them in
    the CPU's caches and took about twice as long (~140 against ~70 µs a mail; a worker's CPU
    a mail fell by ~0.09 ms, 8–9%: bench/README, "Session 14").

    ``pieces`` is the HTML cut at its values (fixed HTML and values alternating), when it
    was drawn with marks, and ``texts`` the renderer's layouts: the text part is then filled
    from the layout's (:mod:`orchestrator.rendering.text_part`)."""

    subject: str
    html: str
    text: str | None
    template_name: str
    pieces: list[str] | None = field(default=None, repr=False, compare=False)
    texts: LayoutTexts | None = field(default=None, repr=False, compare=False)

    def finish(self) -> RenderedMail:
        text = self.text
        if text is None:
            try:
                text = (
                    plain_text(self.html)
                    if self.texts is None
                    else self.texts.text(self.html, self.pieces)
                )
            except TypeError:  # the converter takes only text UTF-8 can carry
                raise TemplateError(self.template_name, None, _UNENCODABLE) from None
        return RenderedMail(self.subject, self.html, text, self.template_name)


class MailRenderer:
    """Finds, renders and post-processes mail templates. Safe to share between threads."""

    def __init__(
        self,
        templates_dir: Path,
        default_locale: str = "ja",
        recheck_after: float = 1.0,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.templates_dir = templates_dir
        self.default_locale = default_locale
        self.recheck_after = recheck_after
        self._clock = clock or SystemClock()
        self.env = make_mail_environment(templates_dir, recheck_after, self._clock)
        self._lock = threading.Lock()
        self._resolved: dict[tuple[str, str, str, str], tuple[float, int, str | None]] = {}
        self._frames = str(templates_dir.resolve()) + os.sep  # where our templates' code comes from
        self.texts = LayoutTexts()
        # Templates a marked render could not trust (see _render_marked), until recompiled.
        self._unmarked: weakref.WeakKeyDictionary[Template, bool] = weakref.WeakKeyDictionary()

    def resolve(self, template: str, tier: str, locale: str, suffix: str = "html") -> str | None:
        """The first template name of the fallback chain that exists, or None.

        Remembered per folder version, and the folder is looked at again only after
        ``recheck_after`` seconds: a file added or removed is seen within that time.
        """
        key = (template, tier, locale, suffix)
        cached = self._resolved.get(key)
        now = self._clock.monotonic()
        if cached is not None and now - cached[0] < self.recheck_after:
            return cached[2]
        folder = (self.templates_dir / template).parent
        try:
            version = folder.stat().st_mtime_ns
        except OSError:
            return None
        if cached is not None and cached[1] == version:
            self._resolved[key] = (now, version, cached[2])
            return cached[2]
        found = next(
            (
                name
                for name in candidate_names(template, tier, locale, self.default_locale, suffix)
                if is_template_file(self.templates_dir / name)
            ),
            None,
        )
        self._resolved[key] = (now, version, found)
        return found

    def render(
        self,
        template: str,
        tier: str,
        locale: str,
        context: Mapping[str, Any],
        *,
        links: ClickLinks | None = None,
    ) -> RenderedMail:
        """``links``: the mail's click links, when it tracks clicks (None: links as written)."""
        return self.draft(template, tier, locale, context, links=links).finish()

    def draft(
        self,
        template: str,
        tier: str,
        locale: str,
        context: Mapping[str, Any],
        *,
        links: ClickLinks | None = None,
    ) -> DraftMail:
        """The mail as :meth:`render` makes it, but for a text part made from the HTML: a batch
        finishes its drafts together (see :class:`DraftMail`)."""
        html_name = self.resolve(template, tier, locale, "html")
        if html_name is None:
            raise TemplateError(
                template, None, f"no HTML template for tier {tier!r}, locale {locale!r}"
            )
        html_template = self._load(html_name)  # (its code runs once: its load not charged)
        # One step budget for the whole mail (subject, HTML, text template), opened inline:
        # a mail's every Python call counts (guards/jinja_steps).
        budget = jinja_steps.BUDGET.set([jinja_steps.MAX_STEPS])
        try:
            # The subject and the HTML are drawn in one context: the subject's block first, which
            # leaves it as it was (what a block assigns is its own), and making a second cost
            # ~3.8 µs a mail (bench/README, "Session 26").
            shared = html_template.new_context(dict(context))
            subject = self._subject(html_template, html_name, shared)
            text_name = self.resolve(template, tier, locale, "txt")
            with tracking(links):
                if text_name is None:  # the text part will be made from the HTML's layout
                    body, pieces = self._render_marked(html_template, html_name, context, shared)
                else:
                    body, pieces = self._render_in(html_template, html_name, shared), None
            if len(body) > MAX_MAIL_CHARS:
                raise TemplateError(html_name, None, _too_large(len(body), "HTML"))
            text = None  # made from the HTML when the draft is finished
            if text_name is not None:
                text = self._render(self._load(text_name), text_name, context)
                if len(text) > MAX_MAIL_CHARS:
                    raise TemplateError(text_name, None, _too_large(len(text), "text"))
                if links is not None:
                    text = links.track_text(text)
            return DraftMail(subject, body, text, html_name, pieces=pieces, texts=self.texts)
        finally:
            jinja_steps.BUDGET.reset(budget)

    def _render_marked(
        self, template: Template, name: str, context: Mapping[str, Any], first: Context
    ) -> tuple[str, list[str] | None]:
        """The HTML (its stylesheet was inlined at compile time), and the same cut at its
        values when it was drawn with marks (:mod:`orchestrator.rendering.slots`).

        ``first`` is the Jinja context of ``context`` the first drawing uses. A marked render
        that cannot be trusted (a template that does not pass its values on, a mark's
        character in a value) is drawn again unmarked, in a new one; a template whose own
        templates failed is drawn unmarked from then on, until it is compiled again."""
        if template in self._unmarked:
            return self._render_in(template, name, first), None
        with marking() as marks:
            note_template(template)
            marked = self._render_in(template, name, first)
        pieces = cut(marked, marks)
        if pieces is not None:
            return "".join(pieces), pieces
        if not marks.templates_pass:
            with self._lock:
                self._unmarked[template] = True
        with step_budget():  # drawn again: the mail is not charged twice for being marked
            return self._render(template, name, context), None

    def template_names(self) -> list[str]:
        """The mail templates this renderer can load (``.html`` and ``.txt``), sorted."""
        return sorted(self.env.list_templates(extensions=("html", "txt")))

    def compile(self, name: str) -> bool:
        """Compile ``name`` now if it is not already (False if it cannot be: rendering a mail
        that needs it reports why, with its line)."""
        try:
            self._load(name)
        except TemplateError:
            return False
        return True

    def _load(self, name: str) -> Template:
        try:
            with self._lock:  # Jinja's cache is thread-safe; compiling the same file twice is waste
                return self.env.get_template(name)
        except TemplateNotFound as exc:
            raise TemplateError(name, None, f"template not found: {exc.name}") from None
        except TemplateSyntaxError as exc:
            where = exc.name or self._template_name(exc.filename) or name
            raise TemplateError(where, exc.lineno, exc.message or "syntax error") from None

    def _render(self, template: Template, name: str, context: Mapping[str, Any]) -> str:
        try:
            return template.render(context)
        except _RENDER_ERRORS as exc:
            raise self._located(exc, name) from None

    def _render_in(self, template: Template, name: str, jinja_context: Context) -> str:
        """What :meth:`_render` draws, in a Jinja context already made (``Template.render``
        does this with a new one)."""
        try:
            try:
                return self.env.concat(template.root_render_func(jinja_context))
            except Exception:
                self.env.handle_exception()  # re-raises with template lines in the traceback
        except _RENDER_ERRORS as exc:
            raise self._located(exc, name) from None

    def _subject(self, template: Template, name: str, jinja_context: Context) -> str:
        block = template.blocks.get("subject")
        if block is None:
            raise TemplateError(name, None, "the template defines no {% block subject %}")
        try:
            try:
                raw = "".join(block(jinja_context))
            except Exception:
                self.env.handle_exception()  # re-raises with template lines in the traceback
        except _RENDER_ERRORS as exc:
            raise self._located(exc, name) from None
        subject = single_line(html_lib.unescape(raw))
        if not subject:
            raise TemplateError(name, None, "the subject is empty")
        return subject

    def _located(self, exc: BaseException, fallback: str) -> TemplateError:
        """A TemplateError at the innermost template frame of Jinja's rewritten traceback,
        named as under the templates folder (never the folder twice, whatever its form)."""
        if isinstance(exc, TemplateSyntaxError):
            where = exc.name or self._template_name(exc.filename) or fallback
            return TemplateError(where, exc.lineno, exc.message or "syntax error")
        frames = self._template_frames(exc)
        where, line = frames[-1] if frames else (fallback, None)
        if isinstance(exc, TemplateNotFound):
            return TemplateError(where, line, f"template not found: {exc.name}")
        if isinstance(exc, RecursionError):
            return _endless(frames, fallback) or TemplateError(where, line, _ENDLESS)
        return TemplateError(where, line, str(exc))

    def _template_frames(self, exc: BaseException) -> list[tuple[str, int]]:
        """The template lines the exception passed through, outermost first."""
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            name = self._template_name(tb.tb_frame.f_code.co_filename)
            if name is not None:
                frames.append((name, tb.tb_lineno))
            tb = tb.tb_next
        return frames

    def _template_name(self, filename: str | None) -> str | None:
        """``onboarding/welcome.high.en.html`` for a file under the templates folder (Jinja
        names compiled code by the loader's path, relative when the folder is), else None."""
        if not filename or filename.startswith("<"):
            return None
        if filename.startswith(self._frames):  # a version's snapshot (rendering/snapshot)
            return filename[len(self._frames) :]
        root = os.path.realpath(self.templates_dir)
        path = os.path.realpath(filename)
        if not path.startswith(root + os.sep):
            return None
        return path[len(root) + 1 :].replace(os.sep, "/")
