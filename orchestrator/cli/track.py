"""``stepmail track``: record a usage event from the command line, as ``POST /v1/events``
would, through the same service."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from orchestrator.cli.output import console, printable
from orchestrator.errors import InvalidInput, InvalidJson
from orchestrator.guards.strict_json import check_storable
from orchestrator.settings import load_settings


def track(
    external_id: str,
    event: str,
    prop: Annotated[
        list[str] | None, typer.Option("--prop", help="key=value (numbers and true/false typed)")
    ] = None,
    event_id: Annotated[str | None, typer.Option("--id", help="idempotency key")] = None,
    at: Annotated[str | None, typer.Option(help="ISO 8601 with offset; default now")] = None,
) -> None:
    """Record a usage event for a customer, as ``POST /v1/events`` would."""
    from orchestrator.runtime import build_runtime
    from orchestrator.services.events import track_events
    from orchestrator.tools.simulation import parse_value
    from orchestrator.usage.events import EventIn, EventSubmission

    properties = {}
    for pair in prop or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"--prop {pair!r}: expected key=value")
        properties[key] = parse_value(value)
    payload = {
        "external_id": external_id,
        "name": event,
        "id": event_id,
        "occurred_at": at,
        "properties": properties,
    }
    # Through the API's strict JSON rules, not only the model: NaN, 1e400, integers beyond
    # 64 bits, lone surrogates and NUL are refused here as POST /v1/events refuses them
    # (PostgreSQL's JSONB cannot hold NaN; SQLite stored it).
    try:
        check_storable(payload)
        item = EventIn.model_validate(payload)
    except InvalidJson as exc:
        raise InvalidInput(_json_problems(exc)) from None
    except ValidationError as exc:
        raise InvalidInput(_problems(exc)) from None
    runtime = build_runtime(load_settings())
    try:
        accepted = track_events(
            runtime.engine,
            EventSubmission([item], batched=False),
            rules=runtime.usage_rules(),
            clock=runtime.clock,
            notify=runtime.notify_now,
        )
    finally:
        runtime.close()
    what = "stored" if accepted.stored else "already stored (same id): nothing done"
    console.print(f"{printable(event)} for {printable(external_id)}: {what}")


def _json_problems(exc: InvalidJson) -> str:
    parts = []
    for error in exc.errors:
        loc = [str(p) for p in error["loc"]]
        where = f"--prop {loc[1]}" if loc[:1] == ["properties"] and len(loc) > 1 else ".".join(loc)
        parts.append(f"{where or 'event'}: {error['msg']}")
    return "; ".join(parts)


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in exc.errors()
    )
