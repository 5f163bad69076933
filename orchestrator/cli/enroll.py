"""``stepmail enroll``: customers from flags or a CSV, every row checked before any is stored."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import track

from orchestrator.cli.output import console, errors
from orchestrator.enrollment.signup import SignupRequest
from orchestrator.errors import FileAccessError, InvalidInput
from orchestrator.settings import load_settings


def enroll(
    csv_file: Annotated[Path | None, typer.Option("--csv", help="CSV with a header row")] = None,
    external_id: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    name: Annotated[str | None, typer.Option()] = None,
    company: Annotated[str, typer.Option()] = "",
    plan: Annotated[str, typer.Option()] = "",
    annual_contract_value: Annotated[str, typer.Option()] = "0",
    locale: Annotated[str, typer.Option()] = "ja",
    timezone: Annotated[str, typer.Option()] = "Asia/Tokyo",
    tier: Annotated[str | None, typer.Option()] = None,
    csm_name: Annotated[str | None, typer.Option()] = None,
    csm_email: Annotated[str | None, typer.Option()] = None,
    signed_up_at: Annotated[str | None, typer.Option(help="ISO 8601 with offset")] = None,
) -> None:
    """Enroll one customer from flags, or a CSV of them (all rows checked before storing any)."""
    if csv_file is not None:
        signups = _signups_from_csv(csv_file)
    else:
        raw = {
            "external_id": external_id,
            "email": email,
            "name": name,
            "company": company,
            "plan": plan,
            "annual_contract_value": annual_contract_value,
            "locale": locale,
            "timezone": timezone,
            "tier": tier,
            "csm_name": csm_name,
            "csm_email": csm_email,
            "signed_up_at": signed_up_at,
        }
        signups = [_validated(raw, "--")]
    _enroll_all(signups)


def _validated(raw: dict[str, str | None], where: str) -> SignupRequest:
    # A hand-written CSV pads cells ("b1, b1@example.com"); the model trims only after its
    # checks, so spaces and tabs around a cell go here (line breaks stay, and are refused).
    cells = {k: v.strip(" \t") for k, v in raw.items() if v is not None}
    data = {k: v for k, v in cells.items() if v}
    try:
        return SignupRequest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{where}{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(problems) from None


def _signups_from_csv(path: Path) -> list[SignupRequest]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise FileAccessError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        signups, problems = [], []
        for row in reader:
            try:
                signups.append(_validated(dict(row), f"{path}:{reader.line_num}: "))
            except InvalidInput as exc:
                problems.append(str(exc))
    if problems:
        raise InvalidInput("\n".join(problems))
    return signups


def _enroll_all(signups: list[SignupRequest]) -> None:
    from orchestrator.runtime import build_runtime
    from orchestrator.services.signup import enroll_many

    runtime = build_runtime(load_settings())
    try:
        summary = enroll_many(
            runtime.engine,
            signups,
            journeys=runtime.journeys,
            rules=runtime.enrollment_rules(),
            clock=runtime.clock,
            progress=lambda items: track(
                items, description="enrolling", console=errors, disable=len(items) < 2
            ),
        )
    finally:
        runtime.close()
    console.print(f"{summary.processed} customer(s) processed, {summary.created} new")
