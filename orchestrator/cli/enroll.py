"""``stepmail enroll``: customers from flags or a CSV, every row checked before any is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import track

from orchestrator.cli.output import console, errors, info, printable
from orchestrator.enrollment.signup import SignupRequest
from orchestrator.errors import InvalidInput
from orchestrator.settings import load_settings
from orchestrator.tools.csv_signups import ENCODINGS, read_csv_signups, validated

REFUSED_SHOWN = 20  # a wrong file says why in a screenful, not in 10,000 lines


def enroll(
    csv_file: Annotated[Path | None, typer.Option("--csv", help="CSV with a header row")] = None,
    encoding: Annotated[
        str, typer.Option(help=f"the CSV's encoding: {' | '.join(ENCODINGS)}")
    ] = "auto",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check every row, store nothing")
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="customers per transaction")
    ] = 500,
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
    """Enroll one customer from flags, or a CSV of them: every row is checked first and a
    refused row stores nothing; then they are stored BATCH_SIZE a transaction (running a cut
    short import again is safe: a customer is never enrolled twice)."""
    if csv_file is not None:
        signups = _signups_from_csv(csv_file, encoding)
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
        signups = [validated(raw, "--")]
    if dry_run:
        console.print(
            f"{len(signups)} customer(s) checked, none refused; nothing stored (--dry-run)"
        )
        return
    _enroll_all(signups, batch_size)


def _signups_from_csv(path: Path, encoding: str) -> list[SignupRequest]:
    found = read_csv_signups(path, encoding)
    if encoding == "auto" and found.encoding != "utf-8":
        info(f"{printable(path)}: read as {found.encoding}")
    if not found.refused:
        return found.signups
    shown = [f"{printable(path)}:{line}: {why}" for line, why in found.refused[:REFUSED_SHOWN]]
    hidden = len(found.refused) - len(shown)
    if hidden:
        shown.append(f"… and {hidden} more refused row(s)")
    total = len(found.signups) + len(found.refused)
    shown.append(f"{len(found.refused)} of {total} row(s) refused; nothing stored")
    raise InvalidInput("\n".join(shown))


def _enroll_all(signups: list[SignupRequest], batch_size: int) -> None:
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
            batch_size=batch_size,
            progress=lambda items: track(
                items, description="enrolling", console=errors, disable=len(items) < 2
            ),
        )
    finally:
        runtime.close()
    console.print(f"{summary.processed} customer(s) processed, {summary.created} new")
