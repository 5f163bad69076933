"""Every Prometheus metric Stepmail exports, defined once (the names are the contract with
``deploy/grafana/stepmail.json``; ``tests/unit/test_metrics_dashboard.py`` checks it).

Labels are bounded: route templates (never raw paths), HTTP methods and status codes, send
outcomes and states, transport names, journey and step ids (the operator's YAML, not
customer data), provider event kinds, task kinds, webhook event types. No customer id,
address or token is ever a label.

Counters and histograms here are process-local, or file-backed when the process runs under
``PROMETHEUS_MULTIPROC_DIR`` (worker processes; :mod:`orchestrator.observability.exposition`).
Gauges that describe the database (backlog, oldest due row) are not here: they are read at
scrape time by :class:`~orchestrator.observability.exposition.ScrapeTimeGauges`.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_NETWORK = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "stepmail_http_requests", "API requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "stepmail_http_request_duration_seconds",
    "API request latency, first byte in to last byte out",
    ["method", "route"],
    buckets=_NETWORK,
)
CLAIMED = Counter("stepmail_scheduler_claimed_rows", "Due rows the scheduler claimed")
DISPATCHES = Counter(
    "stepmail_scheduler_dispatches", "Broker messages the scheduler sent (each a batch of row ids)"
)
TICKS = Counter("stepmail_scheduler_ticks", "Scheduler ticks run", ["outcome"])
SENDS = Counter(
    "stepmail_sends",
    "Send outcomes by the worker (sent, failed, pending = retry, unknown, reconciling, "
    "skipped, missed, cancelled, deferred)",
    ["outcome", "transport", "journey", "step"],
)
RENDER_LATENCY = Histogram(
    "stepmail_render_duration_seconds", "Rendering one mail (template to message)", buckets=_FAST
)
TRANSPORT_LATENCY = Histogram(
    "stepmail_transport_duration_seconds",
    "One transport call (SMTP, SendGrid, outbox)",
    ["transport", "outcome"],
    buckets=_NETWORK,
)
PROVIDER_EVENTS = Counter(
    "stepmail_provider_events", "Provider events stored (duplicates not counted)", ["kind"]
)
TASKS_OPENED = Counter("stepmail_tasks_opened", "CSM tasks opened", ["kind"])
HEALTH_JOB_RUNS = Counter("stepmail_health_job_runs", "Daily health job runs", ["outcome"])
WEBHOOK_DELIVERIES = Counter(
    "stepmail_webhook_deliveries",
    "Outgoing webhook delivery attempts",
    ["event", "outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "stepmail_webhook_delivery_duration_seconds",
    "One outgoing webhook POST",
    buckets=_NETWORK,
)
REQUEST_GROUPS = Histogram(
    "stepmail_request_group_size",
    "Requests the API ran together in one transaction (group commit: api/coalescer), by kind",
    ["kind"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 100),
)

# Read at scrape time (exposition.ScrapeTimeGauges); listed so the dashboard test sees them.
SCRAPE_TIME_GAUGES = {
    "stepmail_due_sends": "Rows due now (wake_at reached) in an active state",
    "stepmail_oldest_due_age_seconds": "How long the oldest due row has waited (0: none due)",
    "stepmail_webhook_outbox_pending": "Webhook deliveries waiting (pending or retrying)",
    "stepmail_queue_waiting": "Broker messages (batches of row ids) waiting for a worker",
    "stepmail_queue_messages": "Broker messages held in Redis: waiting or in a worker's hands",
    "stepmail_queue_dead_letters": "Broker messages Dramatiq gave up on (dead-letter queue)",
}


def exported_names() -> set[str]:
    """Every sample name a scrape can show (counters' ``_total``, histograms' parts)."""
    names = set(SCRAPE_TIME_GAUGES)
    for metric in (
        HTTP_REQUESTS,
        CLAIMED,
        DISPATCHES,
        TICKS,
        SENDS,
        PROVIDER_EVENTS,
        TASKS_OPENED,
        HEALTH_JOB_RUNS,
        WEBHOOK_DELIVERIES,
    ):
        names.add(metric._name + "_total")
    for histogram in (
        HTTP_LATENCY,
        RENDER_LATENCY,
        TRANSPORT_LATENCY,
        WEBHOOK_LATENCY,
        REQUEST_GROUPS,
    ):
        names.update(histogram._name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names
