"""The worker entry point: ``dramatiq workers`` (or ``stepmail worker``) imports this package.

Importing it reads the ``STEPMAIL_*`` settings, checks them as every serving process does
(:mod:`orchestrator.startup`), sets the global Dramatiq broker and declares the actors, as
Dramatiq's CLI expects. A setting at fault ends the process with one line naming it. Nothing
else imports this package; the pieces it assembles live in :mod:`orchestrator.scheduling.broker` and
:mod:`orchestrator.processes.actors`.
"""

from __future__ import annotations

import logging

import dramatiq

from orchestrator.errors import StepmailError
from orchestrator.processes.actors import register_actors
from orchestrator.processes.log_hygiene import install_log_hygiene, quiet_libraries
from orchestrator.scheduling.broker import make_broker
from orchestrator.settings import get_settings
from orchestrator.startup.gate import check_before_serving, log_development_defaults
from orchestrator.startup.unknown_variables import unknown_variable_warnings

_log = logging.getLogger(__name__)
quiet_libraries()  # httpx would log URLs at INFO; alembic one line a plugin
for _warning in unknown_variable_warnings():
    _log.warning(_warning)
try:
    _settings = get_settings()
    install_log_hygiene(_settings)  # Dramatiq's CLI made the handlers: no secret, no flood
    log_development_defaults(check_before_serving(_settings))
except StepmailError as exc:
    # SystemExit with a message: the process prints it to stderr and exits 1, no traceback.
    raise SystemExit("\n".join(f"error: {line}" for line in str(exc).splitlines())) from None
if not _settings.redis_url:
    _log.warning(
        "STEPMAIL_REDIS_URL is not set: separate worker processes need Redis; "
        "use `stepmail run` for the all-in-one embedded mode"
    )
broker = make_broker(_settings)
dramatiq.set_broker(broker)
register_actors(broker, _settings.queue_name)
