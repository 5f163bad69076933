"""``stepmail programs attendance FILE --program ID``: who attended a webinar or group
session, from a CSV export of the meeting tool (a column ``external_id``; optionally
``attended_at``, ISO 8601 with offset). Each row is a ``program_attended`` event through the
same service as ``POST /v1/events``, keyed by program and customer, so importing the same file
again changes nothing."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from orchestrator.cli.output import console, printable
from orchestrator.errors import InvalidInput, UnknownCustomers
from orchestrator.settings import load_settings

app = typer.Typer(
    no_args_is_help=True, help="Webinars and group sessions (journeys/programs.yaml)."
)
MAX_ROWS = 1000  # one batch of the events API: all or nothing


@app.command("attendance")
def attendance(
    file: Annotated[Path, typer.Argument(help="CSV with an external_id column")],
    program: Annotated[str, typer.Option("--program", help="the session's id in programs.yaml")],
) -> None:
    """Record who attended a session (all rows or none)."""
    from orchestrator.journeys.programs import programs_definition
    from orchestrator.runtime import build_runtime
    from orchestrator.services.events import track_events
    from orchestrator.usage.events import EventIn, EventSubmission

    settings = load_settings()
    known = programs_definition(settings.journeys_dir)
    if known is None or known.get(program) is None:
        raise InvalidInput(f"--program {program!r}: not a session of journeys/programs.yaml")
    items = []
    lines: list[int] = []  # the CSV line of each item, for errors
    try:
        with file.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "external_id" not in reader.fieldnames:
                raise InvalidInput(f"{file}:1: the header has no external_id column")
            for row in reader:
                if reader.line_num > MAX_ROWS + 1:
                    raise InvalidInput(f"{file}: more than {MAX_ROWS} rows; split the file")
                external_id = (row.get("external_id") or "").strip()
                try:
                    items.append(
                        EventIn.model_validate(
                            {
                                "external_id": external_id,
                                "name": "program_attended",
                                "id": f"attended:{program}"[:200],
                                "occurred_at": (row.get("attended_at") or "").strip() or None,
                                "properties": {"program": program},
                            }
                        )
                    )
                    lines.append(reader.line_num)
                except ValidationError as exc:
                    where = ".".join(str(p) for p in exc.errors()[0]["loc"])
                    raise InvalidInput(
                        f"{file}:{reader.line_num}: {where}: {exc.errors()[0]['msg']}"
                    ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"{file}: cannot read it as UTF-8 CSV ({type(exc).__name__})") from None
    if not items:
        raise InvalidInput(f"{file}: no rows")
    runtime = build_runtime(settings)
    try:
        accepted = track_events(
            runtime.engine,
            EventSubmission(items, batched=True),
            rules=runtime.usage_rules(),
            clock=runtime.clock,
            notify=runtime.notify_now,
        )
    except UnknownCustomers as exc:
        named = "; ".join(
            f"{file}:{lines[index]}: unknown customer {eid!r}" for index, eid in exc.unknown
        )
        raise InvalidInput(f"{named} (nothing was recorded)") from None
    finally:
        runtime.close()
    console.print(
        f"{printable(program)}: {accepted.stored} attendance(s) recorded, "
        f"{accepted.duplicates} already known"
    )
