"""The worker entry point: ``dramatiq workers`` (or ``stepmail worker``) imports this package.

Importing it reads the ``STEPMAIL_*`` settings, checks them as every serving process does
(:mod:`orchestrator.startup`), sets the global Dramatiq broker and declares the actors, as
Dramatiq's CLI expects. A setting at fault ends the process with one line naming it. Nothing
else imports this package; the pieces it assembles live in :mod:`orchestrator.scheduling.broker` and
:mod:`orchestrator.processes.actors`.
"""

from __future__ import annotations

import logging

# Before anything imports prometheus_client: every process of the group writes its metrics to
# the shared folder (``stepmail worker`` sets it; a plain ``dramatiq workers`` gets one here).
from orchestrator.observability.multiprocess import use_group_metrics_dir

use_group_metrics_dir()

import dramatiq  # noqa: E402

from orchestrator.errors import StepmailError  # noqa: E402
from orchestrator.processes.actors import register_actors  # noqa: E402
from orchestrator.processes.log_hygiene import configure_process_logging, quiet_libraries  # noqa: E402
from orchestrator.processes.worker import WorkerLifecycle  # noqa: E402
from orchestrator.scheduling.broker import make_broker  # noqa: E402
from orchestrator.settings import get_settings  # noqa: E402
from orchestrator.startup.gate import check_before_serving, log_development_defaults  # noqa: E402
from orchestrator.startup.unknown_variables import unknown_variable_warnings  # noqa: E402

_log = logging.getLogger(__name__)
quiet_libraries()  # httpx would log URLs at INFO; alembic one line a plugin
for _warning in unknown_variable_warnings():
    _log.warning(_warning)
try:
    _settings = get_settings()
    # Dramatiq pointed stderr at its log pipe: our one handler writes there, in our format,
    # with secrets redacted and floods held back (processes/log_hygiene).
    configure_process_logging(_settings)
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
broker.add_middleware(WorkerLifecycle())
register_actors(broker, _settings.queue_name)
