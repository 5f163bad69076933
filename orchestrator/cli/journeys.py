"""``stepmail check``, ``preview``, ``simulate`` and ``schema``: for people writing journeys
and templates. Only ``preview --customer`` needs more than the files (the database)."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.arguments import external_id_option
from orchestrator.cli.output import JsonFlag, console, errors, labelled, print_json, printable
from orchestrator.clock import SystemClock
from orchestrator.customers.fields import LOCALE_PATTERN
from orchestrator.errors import FileAccessError, InvalidInput
from orchestrator.settings import Settings, load_settings

TierOption = Annotated[str, typer.Option("--tier", help="high | low | tech")]


def _locale(value: str) -> str:
    """A locale is a folder name of the templates: ``../../etc/passwd`` is not one."""
    if not re.fullmatch(LOCALE_PATTERN, value) or len(value) > 35:
        raise typer.BadParameter(f"{value[:40]!r} is not a locale such as ja, en or en-US")
    return value


def _optional_locale(value: str | None) -> str | None:
    return None if value is None else _locale(value)


LocaleOption = Annotated[str, typer.Option("--locale", help="ja | en | …", callback=_locale)]
DEFAULT_TIER, DEFAULT_LOCALE = "tech", "ja"


def check(
    links: Annotated[
        bool, typer.Option("--links", help="also fetch every link (bounded, loopback-safe)")
    ] = False,
    allow_private: Annotated[
        bool,
        typer.Option("--allow-private", help="with --links: fetch loopback and private hosts too"),
    ] = False,
    links_timeout: Annotated[
        float, typer.Option(min=0.5, max=60, help="with --links: seconds per request")
    ] = 5.0,
    links_concurrency: Annotated[
        int, typer.Option(min=1, max=32, help="with --links: requests at once")
    ] = 8,
) -> None:
    """Load every journey, the health score and the event catalogue; check every event and
    condition; render every step × tier × locale, with and without a CSM and each attribute a
    template reads; check footers and links."""
    from orchestrator.tools.check import CheckOptions, check_all
    from orchestrator.tools.link_check import LinkCheckRules

    rules = LinkCheckRules(links_timeout, links_concurrency, allow_private) if links else None
    report = check_all(load_settings(), SystemClock().now(), CheckOptions(links=rules))
    for problem in report.problems:
        labelled("✗", "red", problem)
    if report.problems:
        errors.print(f"{len(report.problems)} problem(s)")
        raise typer.Exit(1)
    fetched = f", {report.links_checked} links answered" if links else ""
    labelled("✓", "green", f"{report.rendered} mails rendered{fetched}, no problems", to=console)


def preview(
    journey: Annotated[str, typer.Argument(help="the journey; `serve` starts the live preview")],
    step: Annotated[str | None, typer.Argument(help="the step")] = None,
    tier: Annotated[str | None, typer.Option(help="high | low | tech (default tech)")] = None,
    locale: Annotated[
        str | None, typer.Option(help="ja | en | … (default ja)", callback=_optional_locale)
    ] = None,
    customer: Annotated[
        str | None,
        typer.Option(help="EXTERNAL_ID: render for this customer, with current data"),
    ] = None,
    out: Annotated[Path, typer.Option(help="folder for the files")] = Path("var/preview"),
    open_browser: Annotated[
        bool, typer.Option("--open", help="open the HTML in a web browser")
    ] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="serve: the port")] = 8100,
    host: Annotated[str, typer.Option(help="serve: the address to listen on")] = "127.0.0.1",
    json_output: JsonFlag = False,
) -> None:
    """Render one step (a sample customer of --tier and --locale, or --customer) to HTML and
    text files and print their paths. `stepmail preview serve` shows every tier × locale of
    every step in a browser, updated as files are saved."""
    settings = load_settings()
    if step is None:
        if journey != "serve":
            raise InvalidInput("name a STEP too (or run `stepmail preview serve`)")
        _serve(settings, host, port)
        return
    if customer is not None:
        if tier is not None or locale is not None:
            raise InvalidInput("--tier and --locale are the customer's own with --customer")
        external_id = external_id_option("--customer", customer)
        paths = _preview_customer(settings, journey, step, external_id, out)
    else:
        paths = _preview_sample(
            settings, journey, step, tier or DEFAULT_TIER, locale or DEFAULT_LOCALE, out
        )
    if json_output:
        print_json([str(path) for path in paths])
    else:
        for path in paths:
            console.print(printable(path))
    if open_browser:
        _open(paths[0])


def _preview_sample(
    settings: Settings, journey_id: str, step_id: str, tier: str, locale: str, out: Path
) -> list[Path]:
    from orchestrator.journeys.loader import load_journeys
    from orchestrator.journeys.model import journey_step
    from orchestrator.rendering.renderer import MailRenderer
    from orchestrator.tools.preview import (
        check_tier,
        render_sample,
        safe_stem,
        write_preview,
    )

    check_tier(tier)
    journey, step = journey_step(load_journeys(settings.journeys_dir), journey_id, step_id)
    renderer = MailRenderer(settings.templates_dir, settings.default_locale)
    mail = render_sample(settings, renderer, journey, step, tier, locale, SystemClock().now())
    files = write_preview(mail, out, safe_stem(journey_id, step_id, tier, locale))
    return [files.html, files.text]


def _preview_customer(
    settings: Settings, journey_id: str, step_id: str, external_id: str, out: Path
) -> list[Path]:
    from orchestrator.cli.db import require_database
    from orchestrator.journeys.loader import load_journeys
    from orchestrator.journeys.model import journey_step
    from orchestrator.rendering.context import sender_identity
    from orchestrator.rendering.renderer import MailRenderer
    from orchestrator.runtime import open_engine
    from orchestrator.services.customer_preview import preview_for_customer
    from orchestrator.tools.preview import (
        PREVIEW_UNSUBSCRIBE_URL,
        safe_stem,
        write_preview,
    )

    journey, step = journey_step(load_journeys(settings.journeys_dir), journey_id, step_id)
    require_database(settings)
    with open_engine(settings) as engine:
        shown = preview_for_customer(
            engine,
            external_id,
            journey,
            step,
            renderer=MailRenderer(settings.templates_dir, settings.default_locale),
            sender=sender_identity(settings),
            unsubscribe_url=PREVIEW_UNSUBSCRIBE_URL,
            clock=SystemClock(),
        )
    who = shown.customer
    files = write_preview(shown.mail, out, safe_stem(journey_id, step_id, external_id))
    _note(f"{external_id}: {who.tier} touch, locale {who.locale}")
    if not shown.enrolled:
        _note(f"{external_id} is not in {journey_id!r}: shown as if they entered it now")
    if shown.would_not_send is not None:
        _note(f"sent now, this step would not go: {shown.would_not_send}")
    return [files.html, files.text]


def _note(text: str) -> None:
    labelled("note:", "yellow", text)


def _open(path: Path) -> None:
    """Open the HTML in the user's browser; say so when there is none (a CI machine)."""
    import webbrowser

    try:
        opened = webbrowser.open(path.resolve().as_uri())
    except webbrowser.Error:
        opened = False
    if not opened:
        _note(f"no web browser found; open {path} yourself")


def _serve(settings: Settings, host: str, port: int) -> None:
    from orchestrator.tools.preview_server import serve_preview

    serve_preview(
        settings,
        host,
        port,
        announce=lambda text: console.print(text),
    )


def simulate(
    journey: str,
    tier: TierOption = DEFAULT_TIER,
    locale: LocaleOption = DEFAULT_LOCALE,
    days: Annotated[int, typer.Option(help="how many days to simulate (1 to 3650)")] = 30,
    start: Annotated[
        str | None,
        typer.Option(
            help="when it starts, e.g. 2026-11-07T10:00 (the customer's time) or with an "
            "offset; default now"
        ),
    ] = None,
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            help="OFFSET:NAME[:k=v,...] (2d:report_created), or a change: OFFSET:acv=N, "
            "OFFSET:tier=high|low|tech|auto, OFFSET:plan=NAME (repeatable)",
        ),
    ] = None,
    acv: Annotated[Decimal | None, typer.Option(help="starting annual contract value")] = None,
    nps: Annotated[int | None, typer.Option(help="an NPS score (0-10) submitted on day 0")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Run the real pipeline for a sample customer with scripted usage and changes: mails,
    skips, deferrals, score changes and tasks, day by day, and what is still pending at the
    end. No side effects (a throwaway database, nothing sent)."""
    from orchestrator.tools.simulation import (
        ScriptedEvent,
        SimulationRequest,
        format_simulation,
        parse_script_item,
        parse_start,
        simulate,
        simulation_json,
    )

    script = [parse_script_item(text) for text in event or []]
    if nps is not None:
        if not 0 <= nps <= 10:
            raise InvalidInput(f"--nps must be from 0 to 10, not {nps}")
        script.insert(0, ScriptedEvent(timedelta(0), "nps_submitted", {"score": nps}))
    clock = SystemClock()
    moment = clock.now() if start is None else parse_start(start, tier, locale)
    request = SimulationRequest(journey, tier, locale, days, moment, script, acv)
    result = simulate(load_settings(), request)
    if json_output:
        sys.stdout.write(simulation_json(result))
    else:
        console.print(format_simulation(result))


def schema(
    out: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
) -> None:
    """Print the JSON Schema of journey files (for editors); with --out, write it there (a
    folder that is missing, a folder given as the file or a full disk is one line naming the
    path, as consent export says it)."""
    from orchestrator.journeys.loader import journey_json_schema

    text = journey_json_schema()
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise FileAccessError(f"{out}: cannot write: {exc.strerror or exc}") from None
    console.print(printable(out))
