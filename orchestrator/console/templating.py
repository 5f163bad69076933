"""The console's Jinja environment: sandboxed (a template reaches no live object), autoescaped,
strict about undefined names, with gettext from :mod:`orchestrator.console.i18n` and the
formatting filters. Pages render to responses carrying the console's security headers."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from starlette.responses import HTMLResponse

from orchestrator.console import formatting
from orchestrator.console.i18n import Catalogs
from orchestrator.console.security import PAGE_HEADERS

TEMPLATES = Path(__file__).parent / "templates"


def make_environment(catalogs: Catalogs, default_timezone: str) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )

    @pass_context
    def gettext(context: Context, message: str) -> str:
        return catalogs.gettext(context["lang"], message)

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, n: int) -> str:
        return catalogs.ngettext(context["lang"], singular, plural, n)

    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]

    @pass_context
    def when(
        context: Context, value: datetime | None, tz: str | None = None, short: bool = False
    ) -> str:
        return formatting.moment(
            value, context["lang"], formatting.zone(tz, default_timezone), short=short
        )

    @pass_context
    def duration(context: Context, value: timedelta) -> str:
        return formatting.duration(value, context["lang"])

    @pass_context
    def number(context: Context, value: Any) -> str:
        return formatting.number(value, context["lang"])

    env.filters.update(
        when=when,
        duration=duration,
        number=number,
        iso=lambda value: value.isoformat() if value else "",
        path=lambda value: quote(str(value), safe=""),
        query=lambda values: urlencode({k: v for k, v in values.items() if v not in (None, "")}),
    )
    return env


def render_page(
    env: ImmutableSandboxedEnvironment,
    name: str,
    context: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    html = env.get_template(name).render(context)
    return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
