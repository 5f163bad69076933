"""The message archive: one sent mail as it went out, and the periodic prune that keeps it to
``ARCHIVE_RETENTION_DAYS`` (a batch per transaction, never one huge DELETE)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine

from orchestrator.archive.codec import ArchivedMail, Codec
from orchestrator.archive.store import prune_batch, prune_dictionaries, read_archived
from orchestrator.errors import MessageNotArchived
from orchestrator.scheduling.periodic import claim_window, finish_window

log = logging.getLogger(__name__)

PRUNE = "archive-prune"
PRUNE_EVERY = timedelta(hours=1)
PRUNE_BATCH = 1000  # mails per transaction
PRUNE_BATCHES_PER_RUN = 200  # 200,000 mails an hour at most: a backlog is caught up gradually


def archived_message(engine: Engine, send_id: int) -> ArchivedMail:
    """What send ``send_id`` was when it went out. MessageNotArchived (404): never archived
    (not sent, sent before the archive existed) or pruned."""
    with engine.connect() as connection:
        found = read_archived(connection, send_id, Codec())
    if found is None:
        raise MessageNotArchived(f"send {send_id} has no archived message")
    return found


def prune_archive(
    engine: Engine, *, before: datetime, batches: int | None = PRUNE_BATCHES_PER_RUN
) -> int:
    """Delete the mails archived before ``before``, oldest first, a batch per transaction;
    then the dictionaries no mail uses any more. Returns how many mails went."""
    pruned = done = 0
    while batches is None or done < batches:
        with engine.begin() as connection:
            count = prune_batch(connection, before, PRUNE_BATCH)
        pruned += count
        done += 1
        if count < PRUNE_BATCH:
            break
    with engine.begin() as connection:
        prune_dictionaries(connection, before)
    return pruned


def prune_archive_if_due(engine: Engine, *, retention: timedelta, now: datetime) -> int | None:
    """The periodic job (hourly, one scheduler at a time): prune what is older than
    ``retention``. None: not due, or another process has it."""
    window = claim_window(engine, PRUNE, PRUNE_EVERY, now, PRUNE_EVERY)
    if window is None:
        return None
    try:
        pruned = prune_archive(engine, before=window.until - retention)
    finally:
        finish_window(engine, PRUNE, window)
    if pruned:
        log.info("archive: pruned %d mails older than %s", pruned, window.until - retention)
    return pruned
