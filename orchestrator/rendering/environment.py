"""The Jinja environment for mail: sandboxed (templates cannot reach Python), HTML autoescaped,
and strict (an undefined variable is an error, not an empty string in a customer's inbox).

An edited template or stylesheet is picked up without a restart, within ``recheck_after``
seconds of the clock's ``monotonic()``: looking at the files once a second rather than on
every send keeps a worker from making eight ``stat`` calls per mail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, MutableMapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    Undefined,
    nodes,
    select_autoescape,
)
from jinja2.environment import TemplateModule
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.clock import Clock
from orchestrator.errors import TemplateError
from orchestrator.guards import jinja_steps
from orchestrator.guards.jinja_nesting import TOO_LARGE, BoundedNesting
from orchestrator.guards.jinja_operators import BoundedOperators
from orchestrator.rendering import slots
from orchestrator.rendering.css import InlineStylesheet, StylesheetFile
from orchestrator.rendering.lookup import not_utf8
from orchestrator.rendering.mail_files import MailFileTooLarge, read_mail_file, template_path
from orchestrator.rendering.output_code import DICT_ATTRIBUTES, OUTPUT_NAMES, MailCode


class MailTemplateLoader(FileSystemLoader):
    """Templates from the folder; one compiled with the stylesheet inlined goes stale when
    either its file or the stylesheet changes."""

    def __init__(
        self,
        templates_dir: Path,
        stylesheet: StylesheetFile,
        recheck_after: float,
        monotonic: Callable[[], float],
    ) -> None:
        super().__init__(str(templates_dir), encoding="utf-8")
        self.stylesheet = stylesheet
        self.recheck_after = recheck_after
        self.monotonic = monotonic

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = self._file_source(template)
        css_version = self.stylesheet.version()
        checked_at = self.monotonic()

        def fresh() -> bool:
            nonlocal checked_at
            now = self.monotonic()
            if now - checked_at < self.recheck_after:
                return True
            checked_at = now
            return uptodate() and self.stylesheet.version() == css_version

        return source, filename, fresh

    def _file_source(self, template: str) -> tuple[str, str, Callable[[], bool]]:
        """``FileSystemLoader.get_source`` (the same name resolution, a missing or non-regular
        file not found), but the file read by :func:`read_mail_file`: at most the bound of it,
        where Jinja's read a 50 MB template whole before it was refused as too large.

        ``TemplateNotFound`` is an ``OSError``, so it is let through before an unreadable file
        is made a TemplateError: caught with those, an ``{% include … ignore missing %}`` of a
        missing file failed the mail with "cannot be read: None"."""
        path = template_path(Path(self.searchpath[0]), template)
        filename = None if path is None else os.path.normpath(path)
        if filename is None or not os.path.isfile(filename):
            raise TemplateNotFound(template)
        try:
            source = read_mail_file(filename)
            mtime = os.path.getmtime(filename)
        except UnicodeDecodeError as exc:
            raise TemplateError(template, *not_utf8(exc)) from None
        except MailFileTooLarge:
            raise TemplateSyntaxError(TOO_LARGE, 1, template, filename) from None
        except OSError as exc:  # there, but not readable (its permissions), or gone since
            raise TemplateError(template, None, f"cannot be read: {exc.strerror or exc}") from None

        def uptodate() -> bool:
            try:
                return os.path.getmtime(filename) == mtime
            except OSError:
                return False

        return source, filename, uptodate


_DICT_READERS = frozenset({"get", "items", "keys", "values"})  # what the immutable sandbox allows
_NOT_EXPORTED = object()


class MailSandbox(BoundedNesting, BoundedOperators, ImmutableSandboxedEnvironment):
    """The immutable sandbox, with shorter ways to the lookups mail templates make most, each
    giving what the sandbox's own checks give:

    - ``customer.name`` on a plain dict of the context (about 25 per mail). Jinja's sandbox
      first asks the dict for an *attribute* of that name, which raises AttributeError, then
      returns the item. For a ``dict`` itself (not a subclass) and a name that is no attribute
      of ``dict``, the answer is known without asking: the item, or undefined.
    - ``vars.get`` (and ``items``, ``keys``, ``values``) of a plain dict: methods that read,
      which the immutable sandbox allows (it refuses only those that change the dict).
    - ``m.button`` of an imported macro file: a name the template exported, which the sandbox
      allows unless it starts with ``_``.

    The sandbox's checks of the last two (is the attribute internal, would it change a known
    mutable type) cost ~10 µs a mail, a tenth of a render (bench/README, "Session 21").
    Every other lookup (objects, subclasses, names starting with ``_``, a dict method that
    writes) goes through the sandbox's checks as before.

    Its compiled code writes each value out with one call (:mod:`output_code`)."""

    code_generator_class = MailCode

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        """The compiled code, with whether the template passes its values on written into it
        (:mod:`orchestrator.rendering.slots`): the verdict cannot outlive the code it is about."""
        code = super()._generate(source, name, filename, defer_init)
        verdict = f"{slots.VERDICT} = {slots.passes_values_on(source)!r}"
        return f"{code}\n{verdict}\n{OUTPUT_NAMES}\n"

    def _load_template(self, name: str, globals: MutableMapping[str, Any] | None) -> Template:
        # BoundedOperators' own (charge_load, then Jinja's) is skipped and done here: one
        # Python call less for each of a mail's three loads.
        template = super(BoundedOperators, self)._load_template(name, globals)
        budget = jinja_steps.BUDGET.get()
        if budget is not None:  # not while a worker compiles its templates at boot
            budget[0] -= template.root_render_func.__globals__[jinja_steps.STEPS_ATTRIBUTE]
            if budget[0] < 0:
                raise SecurityError(jinja_steps.exhausted())
        slots.note_template(template)  # a marked render through it must be able to trust it
        return template

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as one plain dict (its own over the environment's), not
        Jinja's ``ChainMap`` of the two: every render copies them into a new context, and
        walking the chain took ~60% of making a context, ~3% of a worker's CPU (bench/README,
        "Session 19"). What the chain added, seeing the environment's globals changed after a
        template was loaded, Jinja itself says not to rely on; nothing here changes them."""
        return {**self.globals, **(d or {})}

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """A call from a template; a macro's (``m.button(…)``, four or so a mail) by a short
        way that gives what the sandbox and :meth:`Context.call` give: a macro is always safe
        to call (it is Jinja's own object, and no template can set an attribute on it), and
        it takes the eval context first. The long way cost ~0.8 µs more a call (bench/README,
        "Session 26"). A macro given all its arguments by position (every shipped call but a
        ``{% call %}``) is run as Jinja's ``Macro`` would run it; any other call is Jinja's
        own. Every other callable goes through the sandbox's check.

        (The double underscores are the sandbox's: a template's keyword cannot clash.)"""
        if type(__obj) is Macro:
            budget = jinja_steps.BUDGET.get()  # the steps of its body (guards/jinja_steps)
            if budget is None:
                raise SecurityError(jinja_steps.OUTSIDE)
            budget[0] -= __obj._func.stepmail_steps  # type: ignore[attr-defined]
            if budget[0] < 0:
                raise SecurityError(jinja_steps.exhausted())
            kwargs.pop("_block_vars", None)
            kwargs.pop("_loop_vars", None)
            if (
                not kwargs
                and len(args) == __obj._argument_count
                and not (__obj.caller or __obj.catch_kwargs or __obj.catch_varargs)
            ):
                # Every argument given by position, none to fill in: what Macro.__call__
                # and _invoke do then, without their two Python calls (bench/README,
                # "Session 40").
                made = __obj._func(*args)
                return slots.as_markup(made) if __context.eval_ctx.autoescape else made
            return __obj(__context.eval_ctx, *args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any | Undefined:
        kind = type(obj)
        if kind is dict:
            if attribute not in DICT_ATTRIBUTES:
                try:
                    return obj[attribute]
                except KeyError:
                    return self.undefined(obj=obj, name=attribute)
            if attribute in _DICT_READERS:
                return getattr(obj, attribute)
        elif kind is TemplateModule and not attribute.startswith("_"):
            exported = obj.__dict__.get(attribute, _NOT_EXPORTED)
            if exported is not _NOT_EXPORTED:
                return exported
        return super().getattr(obj, attribute)


def make_mail_environment(templates_dir: Path, recheck_after: float, clock: Clock) -> MailSandbox:
    stylesheet = StylesheetFile(templates_dir)
    loader = MailTemplateLoader(templates_dir, stylesheet, recheck_after, clock.monotonic)
    return mail_environment(loader, stylesheet)


def mail_environment(loader: BaseLoader, stylesheet: object) -> MailSandbox:
    """The one configuration of mail rendering, whichever loader and stylesheet feed it (a
    folder, or a version's snapshot: :mod:`orchestrator.rendering.snapshot`)."""
    env = MailSandbox(
        loader=loader,
        extensions=[InlineStylesheet],
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
        # Every compiled template, in a plain dict. Jinja's LRU cache takes a lock and scans
        # its queue of names on most hits (three a mail: the template, its layout, its
        # macros); with the shipped folder's 88 templates compiled, as a worker compiles them
        # at boot, that was ~3.3 µs a lookup against ~0.8 (bench/README, "Session 26"). The
        # templates are the folder's (or a version's), so the dict holds no more than the
        # files it has loaded.
        cache_size=-1,
        finalize=slots.finalize,
    )
    env.extend(mail_stylesheet=stylesheet)
    env.filters["money"] = format_money
    env.filters["date"] = format_date
    return env


def format_money(value: Decimal | int | float, currency: str = "JPY") -> str:
    """``1200000`` → ``¥1,200,000`` (JPY has no minor unit); other currencies keep two decimals."""
    if currency == "JPY":
        return f"¥{int(value):,}"
    return f"{Decimal(value):,.2f} {currency}"


def format_date(value: datetime, locale: str = "ja") -> str:
    """A date as each language writes it: ``2026年11月22日`` or ``November 22, 2026``."""
    if locale.startswith("ja"):
        return f"{value.year}年{value.month}月{value.day}日"
    return value.strftime("%B %-d, %Y")
