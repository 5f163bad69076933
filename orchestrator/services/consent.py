"""The consent records 特定電子メール法 asks a sender to keep, exported."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Engine

from orchestrator.recipients.consent import consent_rows, to_csv, to_json


def export_consent(engine: Engine, *, format: Literal["csv", "json"]) -> tuple[str, int]:
    """Every record with its customer, oldest first, as CSV or JSON; and how many."""
    with engine.connect() as connection:
        rows = list(consent_rows(connection))
    return (to_csv(rows) if format == "csv" else to_json(rows)), len(rows)
