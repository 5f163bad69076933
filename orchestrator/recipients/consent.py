"""Consent records: how and when each customer agreed to receive mail, and under which text.

Japan's 特定電子メール法 asks a sender to keep this for every recipient it mails. A record is
written in the enrollment transaction that creates the customer, from the signup's optional
``consent`` object, with defaults for what it leaves out. Records are only ever added.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field
from sqlalchemy import Connection, insert, select

from orchestrator.db.tables import consent_records, customers
from orchestrator.guards.bounds import Moment, StrippedText

DEFAULT_SOURCE = "signup"
EXPORT_COLUMNS = (
    "customer_external_id",
    "email",
    "source",
    "given_at",
    "text_version",
    "recorded_at",
    "details",
)


class ConsentIn(StrippedText):
    """The signup's ``consent`` object; every field is optional (see :func:`record_consent`)."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[^\r\n]*$",
        description="Where consent was given, e.g. signup, webinar-form, import. Default: signup.",
    )
    given_at: Moment | None = Field(
        default=None, description="When (ISO 8601 with offset). Default: signed_up_at."
    )
    text_version: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[^\r\n]*$",
        description="Which consent text was shown. Default: STEPMAIL_CONSENT_TEXT_VERSION.",
    )
    details: dict[str, Any] = Field(
        default_factory=dict, description="Anything else worth keeping, e.g. the form's URL."
    )


@dataclass(frozen=True)
class ConsentRow:
    """One record as exported."""

    customer_external_id: str
    email: str
    source: str
    given_at: datetime
    text_version: str
    recorded_at: datetime
    details: dict[str, Any]


def record_consent(
    connection: Connection,
    *,
    customer_id: int,
    email: str,
    consent: ConsentIn | None,
    signed_up_at: datetime,
    default_text_version: str,
    now: datetime,
) -> None:
    """Store one record; what ``consent`` leaves out defaults to the signup itself.

    The address consented is kept in ``details`` so the record still says who agreed after
    the customer's address changes.
    """
    connection.execute(
        _INSERT_CONSENT,  # built once: building it cost more CPU than running it
        consent_values(
            customer_id=customer_id,
            email=email,
            consent=consent,
            signed_up_at=signed_up_at,
            default_text_version=default_text_version,
            now=now,
        ),
    )


def consent_values(
    *,
    customer_id: int,
    email: str,
    consent: ConsentIn | None,
    signed_up_at: datetime,
    default_text_version: str,
    now: datetime,
) -> dict[str, Any]:
    """The row :func:`record_consent` stores (many are stored at once by
    :func:`record_consents`)."""
    given = consent or ConsentIn()
    return {
        "customer_id": customer_id,
        "source": given.source or DEFAULT_SOURCE,
        "given_at": given.given_at or signed_up_at,
        "text_version": given.text_version or default_text_version,
        "recorded_at": now,
        "details": {**given.details, "email": email},
    }


def record_consents(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Many :func:`consent_values` rows in one statement."""
    if rows:
        connection.execute(_INSERT_CONSENT, list(rows))


_INSERT_CONSENT = insert(consent_records)


def consent_rows(
    connection: Connection,
    *,
    customer: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[ConsentRow]:
    """Every record with its customer, oldest consent first: of one customer (their external
    id, for a data-subject request) and consent given in [since, until) when asked."""
    query = (
        select(
            customers.c.external_id,
            consent_records.c.source,
            consent_records.c.given_at,
            consent_records.c.text_version,
            consent_records.c.recorded_at,
            consent_records.c.details,
        )
        .join(customers, customers.c.id == consent_records.c.customer_id)
        .order_by(consent_records.c.given_at, consent_records.c.id)
    )
    if customer is not None:
        query = query.where(customers.c.external_id == customer)
    if since is not None:
        query = query.where(consent_records.c.given_at >= since)
    if until is not None:
        query = query.where(consent_records.c.given_at < until)
    for row in connection.execute(query):
        details = dict(row.details or {})
        yield ConsentRow(
            customer_external_id=row.external_id,
            email=str(details.get("email", "")),
            source=row.source,
            given_at=row.given_at,
            text_version=row.text_version,
            recorded_at=row.recorded_at,
            details=details,
        )


def to_csv(rows: Iterable[ConsentRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        values = _plain(row)
        writer.writerow([values[column] for column in EXPORT_COLUMNS])
    return out.getvalue()


def to_json(rows: Iterable[ConsentRow]) -> str:
    records = [_plain(row, details_as_text=False) for row in rows]
    return json.dumps(records, ensure_ascii=False, indent=2) + "\n"


def _plain(row: ConsentRow, *, details_as_text: bool = True) -> dict[str, Any]:
    values = asdict(row)
    values["given_at"] = row.given_at.isoformat()
    values["recorded_at"] = row.recorded_at.isoformat()
    if details_as_text:
        values["details"] = json.dumps(row.details, ensure_ascii=False, sort_keys=True)
    return values
