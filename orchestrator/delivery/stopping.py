"""A worker process's stop, as the send path sees it.

A stopping worker finishes the window of mails in hand and hands the rest of its batch back,
``pending`` and due at once (:func:`orchestrator.delivery.outcomes.hand_back`), for the next
worker to send. It does not send them first: then a stop would last as long as a whole batch
(``DISPATCH_MESSAGE_SIZE`` mails, each window bounded only by the transport's timeout), not
one window. The worker's Dramatiq middleware asks for the stop
(:class:`orchestrator.processes.worker.WorkerLifecycle`); every sending thread of the
process sees it between two windows. A stop is for the whole process, and for its life.
"""

from __future__ import annotations

import threading

_ASKED = threading.Event()


def ask_to_stop() -> None:
    """From now on, each batch of this process hands back what it has not started sending."""
    _ASKED.set()


def stop_asked() -> bool:
    return _ASKED.is_set()


def never_stopping() -> bool:
    """The default of a send path built without a worker process that could stop (tests)."""
    return False
