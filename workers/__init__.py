"""The worker entry point: ``dramatiq workers`` (or ``stepmail worker``) imports this package.

Importing it reads the ``STEPMAIL_*`` settings, sets the global Dramatiq broker and declares
the actors, as Dramatiq's CLI expects. Nothing else imports this package; the pieces it
assembles live in :mod:`orchestrator.queueing`.
"""

from __future__ import annotations

import logging

import dramatiq

from orchestrator.queueing import make_broker, register_actors
from orchestrator.settings import get_settings

_settings = get_settings()
if not _settings.redis_url:
    logging.getLogger(__name__).warning(
        "STEPMAIL_REDIS_URL is not set: separate worker processes need Redis; "
        "use `stepmail run` for the all-in-one embedded mode"
    )
broker = make_broker(_settings)
dramatiq.set_broker(broker)
register_actors(broker, _settings.queue_name)
