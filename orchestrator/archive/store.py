"""The archive's rows: written with the batch's ``sent`` (one COPY on PostgreSQL, one multi-row
INSERT on SQLite, in that transaction, inside a savepoint so that no archive trouble can keep
a sent mail from being recorded as sent), read back, and pruned in batches.

Each worker process picks one dictionary per template (:mod:`orchestrator.archive.codec`): the
newest stored one for that template, or the first mail it archives of it. A mail that
compresses poorly against its dictionary (the template was edited) makes a fresh one, at most
once per template an hour.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, delete, exists, insert, select
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.archive.codec import ArchivedMail, Codec, Dictionary, pack, unpack
from orchestrator.db.tables import archive_dictionaries, message_archive
from orchestrator.db.upsert import insert_ignoring_conflicts_on
from orchestrator.transports.mail import Mailbox, OutgoingMail

log = logging.getLogger(__name__)

_ARCHIVE = message_archive
_DICTIONARIES = archive_dictionaries
REFRESH_AFTER = timedelta(hours=1)  # a template's dictionary is looked at again after this
POOR_RATIO = 8  # compressed to more than 1/8 of its size: the dictionary no longer fits


@dataclass(frozen=True)
class ArchiveEntry:
    """One mail handed to the transport, to archive with its row's outcome."""

    send_id: int
    template_name: str
    mail: OutgoingMail


@dataclass
class _Choice:
    dictionary: Dictionary
    chosen_at: datetime


def archived_form(mail: OutgoingMail) -> ArchivedMail:
    """The mail as the archive keeps it: decoded headers in the order they were written."""
    headers: list[tuple[str, str]] = [
        ("From", _mailbox(mail.sender)),
        ("To", _mailbox(mail.to)),
    ]
    if mail.reply_to is not None:
        headers.append(("Reply-To", _mailbox(mail.reply_to)))
    headers.append(("Subject", mail.subject))
    headers.append(("Message-ID", mail.message_id))
    if mail.date is not None:
        headers.append(("Date", mail.date.isoformat()))
    headers += list(mail.headers.items())
    return ArchivedMail(
        subject=mail.subject, headers=tuple(headers), html=mail.html, text=mail.text
    )


def _mailbox(box: Mailbox) -> str:
    return f"{box.name} <{box.email}>" if box.name else box.email


class MailArchiver:
    """Turns sent mails into archive rows; one per process, shared by its threads."""

    def __init__(self, engine: Engine, codec: Codec | None = None) -> None:
        self.engine = engine
        self.codec = codec or Codec()
        self._lock = threading.Lock()
        self._choices: dict[str, _Choice] = {}
        self._refreshed: dict[str, datetime] = {}

    def rows(self, entries: Sequence[ArchiveEntry], at: datetime) -> list[dict[str, Any]]:
        """Archive rows for ``entries``; a mail that cannot be archived is logged and left out
        (the archive is a record, never a reason for a send to fail)."""
        rows = []
        for entry in entries:
            try:
                rows.append(self._row(entry, at))
            except (SQLAlchemyError, ValueError, UnicodeError) as exc:
                log.warning("send %d: not archived (%s)", entry.send_id, exc)
        return rows

    def _row(self, entry: ArchiveEntry, at: datetime) -> dict[str, Any]:
        data = pack(archived_form(entry.mail))
        dictionary = self._dictionary(entry.template_name, data, at)
        body = self.codec.compress(data, dictionary)
        if len(body) * POOR_RATIO > len(data) and self._may_refresh(entry.template_name, at):
            dictionary = self._store(entry.template_name, data, at)
            body = self.codec.compress(data, dictionary)
        return {
            "send_id": entry.send_id,
            "archived_at": at,
            "subject": entry.mail.subject,
            "template_name": entry.template_name[:255],
            "dictionary_id": dictionary.id,
            "size": len(data),
            "body": body,
        }

    def _dictionary(self, template: str, data: bytes, at: datetime) -> Dictionary:
        with self._lock:
            choice = self._choices.get(template)
        if choice is not None and at - choice.chosen_at < REFRESH_AFTER:
            return choice.dictionary
        dictionary = self._newest(template) or self._store(template, data, at)
        with self._lock:
            self._choices[template] = _Choice(dictionary, at)
        return dictionary

    def _may_refresh(self, template: str, at: datetime) -> bool:
        """At most one new dictionary per template an hour, whatever its mails look like."""
        with self._lock:
            last = self._refreshed.get(template)
            if last is not None and at - last < REFRESH_AFTER:
                return False
            self._refreshed[template] = at
            return True

    def _newest(self, template: str) -> Dictionary | None:
        # begin(): a read that ends in ROLLBACK makes psycopg deallocate every statement the
        # connection prepared (the send path's, on a worker's pool)
        with self.engine.begin() as connection:
            row = connection.execute(
                select(_DICTIONARIES.c.id, _DICTIONARIES.c.content)
                .where(_DICTIONARIES.c.template_name == template[:255])
                .order_by(_DICTIONARIES.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return Dictionary(row.id, self.codec.decompress(row.content))

    def _store(self, template: str, data: bytes, at: datetime) -> Dictionary:
        """Store ``data`` as the template's dictionary (once, by digest) in its own short
        transaction, and use it from now on."""
        digest = hashlib.sha256(data).hexdigest()
        row = {
            "digest": digest,
            "template_name": template[:255],
            "created_at": at,
            "content": self.codec.compress(data),
        }
        with self.engine.begin() as connection:
            insert_ignoring_conflicts_on(connection, _DICTIONARIES, [row], ["digest"])
            found = connection.execute(
                select(_DICTIONARIES.c.id).where(_DICTIONARIES.c.digest == digest)
            ).scalar_one()
        dictionary = Dictionary(found, data)
        with self._lock:
            self._choices[template] = _Choice(dictionary, at)
        log.info("archive: a new dictionary for %s (%d bytes)", template, len(data))
        return dictionary


def write_archive(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert archive rows in the caller's transaction, inside a savepoint: on any database
    error the archive rows are dropped (and logged), the caller's work stands."""
    if not rows:
        return
    try:
        with connection.begin_nested():
            if connection.dialect.name == "postgresql":
                _copy_rows(connection, rows)
            else:
                connection.execute(insert(_ARCHIVE), list(rows))
    except (SQLAlchemyError, psycopg.Error) as exc:
        log.warning("%d mails not archived: %s", len(rows), exc.__class__.__name__)


def _copy_rows(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """The rows in one COPY, through the driver: a batch's 25 rows as an executemany cost
    ~0.05 ms of worker CPU a mail (a pipelined INSERT each), as a COPY ~0.03 (bench/README,
    "Session 14"). The columns are the rows' keys that the table has, as the INSERT took
    them. Text format:
    psycopg writes each value as its column reads it, so a column widened later needs no
    change here."""
    keys = [key for key in rows[0] if key in _ARCHIVE.c]
    columns = ", ".join(_ARCHIVE.c[key].name for key in keys)
    driver: Any = connection.connection.dbapi_connection
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {_ARCHIVE.name} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row([row[key] for key in keys])


def read_archived(connection: Connection, send_id: int, codec: Codec) -> ArchivedMail | None:
    """The archived mail of one send, or None (never archived, or pruned)."""
    row = connection.execute(
        select(_ARCHIVE.c.subject, _ARCHIVE.c.body, _DICTIONARIES.c.content)
        .select_from(_ARCHIVE.outerjoin(_DICTIONARIES))
        .where(_ARCHIVE.c.send_id == send_id)
    ).first()
    if row is None:
        return None
    dictionary = None
    if row.content is not None:
        dictionary = Dictionary(-1, codec.decompress(row.content))
    return unpack(codec.decompress(row.body, dictionary), row.subject)


def archived_subjects(connection: Connection, send_ids: Sequence[int]) -> Mapping[int, str]:
    """Send id → the subject it went out with, for the sends that are archived."""
    if not send_ids:
        return {}
    rows = connection.execute(
        select(_ARCHIVE.c.send_id, _ARCHIVE.c.subject).where(_ARCHIVE.c.send_id.in_(send_ids))
    )
    return {row.send_id: row.subject for row in rows}


def prune_batch(connection: Connection, before: datetime, batch: int) -> int:
    """Delete up to ``batch`` mails archived before ``before`` (oldest first); how many went."""
    oldest = (
        select(_ARCHIVE.c.send_id)
        .where(_ARCHIVE.c.archived_at < before)
        .order_by(_ARCHIVE.c.archived_at)
        .limit(batch)
    )
    ids = list(connection.execute(oldest).scalars())
    if ids:
        connection.execute(delete(_ARCHIVE).where(_ARCHIVE.c.send_id.in_(ids)))
    return len(ids)


def prune_dictionaries(connection: Connection, before: datetime) -> int:
    """Delete dictionaries made before ``before`` that no archived mail uses any more."""
    used = exists().where(_ARCHIVE.c.dictionary_id == _DICTIONARIES.c.id)
    result = connection.execute(
        delete(_DICTIONARIES).where(_DICTIONARIES.c.created_at < before, ~used)
    )
    return int(result.rowcount)
