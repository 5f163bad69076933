"""The embedded default: each mail becomes one ``.eml`` file in the outbox folder.

A mail is written to a temporary file, synced, then renamed into place, so a reader never sees
half a mail. A process killed mid-write leaves its temporary file behind; those are swept
away when a transport starts and every ``sweep_every`` seconds after, once they are older than
``stale_after``: a write takes milliseconds, so a file that old has no writer left, in this
process or any other sharing the folder.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import TransientDeliveryError
from orchestrator.transports.base import SendResult
from orchestrator.transports.mail import OutgoingMail

log = logging.getLogger(__name__)

TEMP_PREFIX, TEMP_SUFFIX = ".tmp-", ".eml"
STALE_AFTER = 15 * 60.0  # seconds since a temporary file was last written
SWEEP_EVERY = 10 * 60.0  # seconds between sweeps of a long-running process


class OutboxTransport:
    """Writes ``<idempotency key>.eml`` atomically; writing the same key twice keeps one file."""

    name = "outbox"
    idempotent = True

    def __init__(
        self,
        directory: Path,
        *,
        stale_after: float = STALE_AFTER,
        sweep_every: float = SWEEP_EVERY,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stale_after, self.sweep_every = stale_after, sweep_every
        self._wall_clock, self._monotonic = wall_clock, monotonic
        self._next_sweep = 0.0
        self._sweep_if_due()

    def path_for(self, mail: OutgoingMail) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", mail.idempotency_key)
        return self.directory / f"{safe}.eml"

    def send(self, mail: OutgoingMail) -> SendResult:
        self._sweep_if_due()
        target = self.path_for(mail)
        data = mail.as_bytes()
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except FileNotFoundError:  # swept while this write stalled for longer than stale_after
            raise TransientDeliveryError(f"outbox temporary file vanished: {temp}") from None
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return SendResult(provider_message_id=target.name)

    def sweep(self) -> int:
        """Remove temporary files older than ``stale_after``; returns how many went.

        Housekeeping never stops the service: an entry that cannot be removed (a folder of
        that name, a read-only mount, EPERM) is skipped, and one line says how many were.
        """
        cutoff = self._wall_clock() - self.stale_after
        removed, kept, last_error = 0, 0, ""
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if not _is_temporary(entry.name):
                        continue
                    try:
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)
                            removed += 1
                    except FileNotFoundError:  # another sweeper or the writer got there first
                        continue
                    except OSError as exc:
                        kept += 1
                        last_error = f"{entry.name}: {exc.strerror or type(exc).__name__}"
        except OSError as exc:
            log.warning("outbox sweep of %s skipped: %s", self.directory, exc.strerror)
            return removed
        if removed:
            log.warning("removed %d stale temporary file(s) from %s", removed, self.directory)
        if kept:
            log.warning(
                "could not remove %d stale temporary file(s) from %s (last: %s); left in place",
                kept,
                self.directory,
                last_error,
            )
        return removed

    def close(self) -> None:
        return None

    def _sweep_if_due(self) -> None:
        now = self._monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.sweep_every
            self.sweep()


def _is_temporary(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)
