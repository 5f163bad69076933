"""The consent records 特定電子メール法 asks a sender to keep, exported."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import Engine

from orchestrator.recipients.consent import consent_rows, to_csv, to_json


def export_consent(
    engine: Engine,
    *,
    format: Literal["csv", "json"],
    customer: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[str, int]:
    """The records with their customer, oldest first, as CSV or JSON; and how many. A
    customer (external id) and a range of consent time narrow it."""
    with engine.connect() as connection:
        rows = list(consent_rows(connection, customer=customer, since=since, until=until))
    return (to_csv(rows) if format == "csv" else to_json(rows)), len(rows)
