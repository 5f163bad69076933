"""The runtime: the long-lived parts one process shares (settings, engine, journeys, renderer,
transport, clock). Entry points build it; routes, actors and commands receive it, and take
from it exactly what a service needs (its ``*_rules`` and ``*_deps``): services never see the
runtime or the settings. These are built on each call, so a test that swaps
``runtime.transport`` is heard at once."""

from __future__ import annotations

import gc
import logging
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from orchestrator.archive.store import MailArchiver
from orchestrator.clock import Clock, SystemClock
from orchestrator.customers.tiers import TierThresholds
from orchestrator.db.engine import make_engine, open_pooled
from orchestrator.delivery.jitter import RandomSource
from orchestrator.delivery.pacing import PacingRules
from orchestrator.delivery.rules import DeliveryRules, LinkRules
from orchestrator.delivery.stopping import stop_asked
from orchestrator.errors import JourneyError
from orchestrator.journeys.model import Journey
from orchestrator.journeys.programs import programs_definition
from orchestrator.observability.exposition import ScrapeTimeGauges, base_registry
from orchestrator.rendering.context import SenderIdentity, sender_identity
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.services.delivery import DeliveryDeps
from orchestrator.services.journey_catalog import JourneyCatalog
from orchestrator.settings import Settings
from orchestrator.transports.base import Transport
from orchestrator.transports.factory import make_transport
from orchestrator.transports.mail import Mailbox
from orchestrator.transports.rate_limit import SendRateLimiter, build_send_rate_limiter

if TYPE_CHECKING:  # imported where used: a worker loads only the send path
    from orchestrator.enrollment.store import EnrollmentRules
    from orchestrator.handoff.notify import HandoffConfig
    from orchestrator.journeys.catalogue import EventCatalogue
    from orchestrator.services.accounts import LoginRules  # the console's
    from orchestrator.services.analytics import AnalyticsRules
    from orchestrator.services.clicks import ClickRules
    from orchestrator.services.events import UsageRules
    from orchestrator.services.previews import PreviewRules
    from orchestrator.services.provider_events import WebhookRules
    from orchestrator.services.recipients import PageRules
    from orchestrator.services.signup import HookRules
    from orchestrator.services.webhooks import OutgoingWebhookRules


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    catalog: JourneyCatalog  # the journeys, their versions, kept in step with the files
    renderer: MailRenderer  # the templates folder's (authoring tools; unversioned sends)
    transport: Transport
    clock: Clock = field(default_factory=SystemClock)
    rate_limiter: SendRateLimiter | None = None  # STEPMAIL_SEND_RATE_LIMIT; None when off
    jitter: RandomSource = field(default_factory=random.Random)  # spreads retries out
    archiver: MailArchiver | None = None  # the message archive's writer; None: not archived
    _gauges: ScrapeTimeGauges | None = field(default=None, repr=False)

    @property
    def journeys(self) -> Mapping[str, Journey]:
        """The current version of each journey (a :class:`JourneySet`: with version ids); a
        changed file is picked up first, at most once a second (so every process, the API's
        too, follows a change without a restart)."""
        self.catalog.refresh_if_due()
        return self.catalog.view()

    @property
    def sender(self) -> SenderIdentity:
        return sender_identity(self.settings)

    def preview_rules(self) -> PreviewRules:
        """What previews and test sends need (built per access: tests swap settings)."""
        from orchestrator.services.previews import PreviewRules

        settings = self.settings
        return PreviewRules(self.sender, settings.public_base_url, settings.unsubscribe_mailto)

    def login_rules(self) -> LoginRules:
        """Console session ends and the login throttle, from settings."""
        from orchestrator.accounts.sessions import SessionRules
        from orchestrator.accounts.throttle import ThrottleRules
        from orchestrator.services.accounts import LoginRules

        settings = self.settings
        return LoginRules(
            sessions=SessionRules(
                idle=timedelta(seconds=settings.console_idle_timeout),
                lifetime=timedelta(seconds=settings.console_session_lifetime),
            ),
            throttle=ThrottleRules(
                per_account=settings.console_login_attempts,
                per_address=settings.console_login_attempts_per_address,
                window=timedelta(seconds=settings.console_login_window),
            ),
        )

    def delivery_rules(self) -> DeliveryRules:
        settings = self.settings
        return DeliveryRules(
            lease=timedelta(seconds=settings.send_lease),
            max_attempts=settings.max_send_attempts,
            reconciliation_window=timedelta(seconds=settings.reconciliation_window),
            links=LinkRules(
                settings.public_base_url,
                settings.signing_secret(),
                settings.unsubscribe_mailto,
                click_tracking=settings.click_tracking,
            ),
            pacing=PacingRules(
                send_window=settings.send_window,
                quiet_days=settings.quiet_days,
                frequency_cap=settings.frequency_cap,
                default_timezone=settings.default_timezone,
            ),
        )

    def usage_rules(self) -> UsageRules:
        """The rules as this process has them loaded (the health file is cached per version)."""
        from orchestrator.health.lifecycle import lifecycle_definition
        from orchestrator.health.loader import health_definition
        from orchestrator.services.events import UsageRules

        return UsageRules(
            journeys=self.journeys,
            health=health_definition(self.settings.journeys_dir),
            tiers=tier_thresholds(self.settings),
            action_cooldown=timedelta(days=self.settings.health_action_cooldown),
            lifecycle=lifecycle_definition(self.settings.journeys_dir),
            attribution_window=timedelta(days=self.settings.attribution_window_days),
            catalogue=catalogue_or_none(self.settings.journeys_dir),
        )

    def page_rules(self) -> PageRules:
        from orchestrator.services.recipients import PageRules

        settings = self.settings
        return PageRules(
            self.journeys,
            settings.signing_secret(),
            settings.default_locale,
            timedelta(days=settings.attribution_window_days),
        )

    def webhook_rules(self) -> WebhookRules:
        from orchestrator.services.provider_events import WebhookRules

        settings = self.settings
        return WebhookRules(
            public_key=settings.sendgrid_webhook_public_key,
            tolerance=settings.sendgrid_webhook_tolerance,
            soft_bounce_limit=settings.soft_bounce_limit,
        )

    def enrollment_rules(self) -> EnrollmentRules:
        return enrollment_rules(self.settings)

    def hook_rules(self) -> HookRules:
        from orchestrator.services.signup import HookRules

        return HookRules(self.settings.signup_hook_key(), self.settings.signup_hook_tolerance)

    def outgoing_webhook_rules(self) -> OutgoingWebhookRules:
        from orchestrator.services.webhooks import outgoing_webhook_rules

        return outgoing_webhook_rules(self.settings)

    def handoff_config(self) -> HandoffConfig:
        return handoff_config(self.settings)

    def notify_now(self, task_ids: Sequence[int] | None = None) -> int:
        """Tell the CSMs about these tasks (default: every one not yet notified), now."""
        from orchestrator.services.tasks import notify_tasks

        return notify_tasks(
            self.engine,
            self.transport,
            config=self.handoff_config(),
            clock=self.clock,
            task_ids=task_ids,
        )

    def delivery_deps(self) -> DeliveryDeps:
        """What the send path uses, for one batch (a changed journey is picked up first)."""
        self.catalog.refresh_if_due()
        return DeliveryDeps(
            engine=self.engine,
            journeys=self.journeys,
            versions=self.catalog,
            renderer=self.renderer,
            transport=self.transport,
            clock=self.clock,
            jitter=self.jitter,
            rules=self.delivery_rules(),
            sender=self.sender,
            rate_limiter=self.rate_limiter,
            programs=programs_definition(self.settings.journeys_dir),
            archiver=self.archiver,
            stopping=stop_asked,
        )

    def click_rules(self) -> ClickRules:
        from orchestrator.services.clicks import ClickRules, scanner_policy

        settings = self.settings
        return ClickRules(
            signing_secret=settings.signing_secret(),
            policy=scanner_policy(settings.click_scanner_seconds, settings.click_scanner_networks),
        )

    def analytics_rules(self) -> AnalyticsRules:
        from orchestrator.services.analytics import AnalyticsRules

        settings = self.settings
        return AnalyticsRules(
            journeys=self.journeys,
            timezone=settings.reporting_timezone,
            attribution_window=timedelta(days=settings.attribution_window_days),
            archive_retention=timedelta(days=settings.archive_retention_days),
        )

    def metrics_registry(self) -> CollectorRegistry:
        return base_registry()

    def scrape_time_gauges(self) -> ScrapeTimeGauges:
        """The database gauges (backlog, oldest due row), read at most every five seconds."""
        if self._gauges is None:
            self._gauges = ScrapeTimeGauges(self.read_gauges)
        return self._gauges

    def read_gauges(self) -> dict[str, float]:
        from orchestrator.services.status import due_backlog, queue_depth
        from orchestrator.services.webhooks import pending_count

        now = self.clock.now()
        backlog = due_backlog(self.engine, now)
        gauges = {
            "stepmail_due_sends": float(backlog.count),
            "stepmail_oldest_due_age_seconds": backlog.lag_seconds(now),
            "stepmail_webhook_outbox_pending": float(pending_count(self.engine)),
        }
        if self.settings.redis_url:
            depth = queue_depth(self.settings.redis_url, self.settings.queue_name)
            if depth is not None:  # Redis down: these gauges are absent, the others stay
                gauges.update(depth)
        return gauges

    def read_definitions(self, *, sends_only: bool = False) -> None:
        """Read the optional definition files now, each cached per file version: otherwise
        the first request or batch after a start parsed their YAML, ~55 ms of CPU that the
        ~30 requests waiting behind the first group paid in latency (bench/README, "Session
        23"). ``sends_only`` (a worker process): the programs file, all the send path reads;
        else also the health, lifecycle and event-catalogue files the API's events and
        signups read. A broken file is not an error here: the path that uses it reports it,
        as it did before."""
        folder = self.settings.journeys_dir
        readers: list[Callable[[Path], object]] = [programs_definition]
        if not sends_only:
            from orchestrator.health.lifecycle import lifecycle_definition
            from orchestrator.health.loader import health_definition

            readers += [health_definition, lifecycle_definition, catalogue_or_none]
        for read in readers:
            try:
                read(folder)
            except JourneyError:
                continue

    def open_connections(self, count: int) -> int:
        """Open up to ``count`` database connections now, to wait in the pool for the first
        transactions (:func:`orchestrator.db.engine.open_pooled`); returns how many."""
        return open_pooled(self.engine, count)

    def close(self) -> None:
        self.catalog.close()
        self.transport.close()
        if self.rate_limiter is not None:
            self.rate_limiter.close()
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    transport: Transport | None = None,
    jitter: RandomSource | None = None,
) -> Runtime:
    """Connect, load the journeys and bring their versions up to date (a broken file stops
    start-up), and pick the transport."""
    clock = clock or SystemClock()
    engine = make_engine(settings.database_url, **pool_options(settings))
    catalog = journey_catalog(settings, engine, clock)
    catalog.start()
    return Runtime(
        settings=settings,
        engine=engine,
        catalog=catalog,
        renderer=MailRenderer(settings.templates_dir, settings.default_locale, clock=clock),
        transport=transport or make_transport(settings),
        clock=clock,
        rate_limiter=build_send_rate_limiter(settings),
        jitter=jitter or random.Random(),
        archiver=MailArchiver(engine),
    )


def catalogue_or_none(journeys_dir: Path) -> EventCatalogue | None:
    """The event catalogue the events API flags names against. A broken one is a warning,
    not an outage: events are stored all the same (``stepmail check`` names the problem)."""
    from orchestrator.journeys.catalogue import event_catalogue

    try:
        return event_catalogue(journeys_dir)
    except JourneyError as exc:
        _warn_once(str(exc))
        return None


@lru_cache(maxsize=16)
def _warn_once(problem: str) -> None:
    log.warning("the event catalogue does not load, no event is flagged: %s", problem)


def journey_catalog(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    include: Callable[[Journey], bool] | None = None,
) -> JourneyCatalog:
    """The process's journeys over ``engine``; on SQLite its snapshots are read through a
    read-only engine, which never waits for a write transaction in progress."""
    reader = None
    if engine.dialect.name == "sqlite":
        reader = make_engine(engine.url.render_as_string(hide_password=False), read_only=True)
    return JourneyCatalog(
        engine,
        settings.journeys_dir,
        settings.templates_dir,
        settings.default_locale,
        clock,
        reader=reader,
        include=include,
    )


def enrollment_rules(settings: Settings) -> EnrollmentRules:
    from orchestrator.enrollment.store import EnrollmentRules
    from orchestrator.health.lifecycle import lifecycle_definition

    lifecycle = lifecycle_definition(settings.journeys_dir)
    return EnrollmentRules(
        tier_thresholds(settings),
        settings.consent_text_version,
        first_stage=lifecycle.first.id if lifecycle is not None else None,
    )


def tier_thresholds(settings: Settings) -> TierThresholds:
    return TierThresholds(settings.tier_high_threshold, settings.tier_low_threshold)


def handoff_config(settings: Settings) -> HandoffConfig:
    from orchestrator.handoff.notify import HandoffConfig

    slack = settings.slack_webhook_url
    return HandoffConfig(
        sender=Mailbox(settings.sender_email, settings.sender_name),
        team_email=settings.csm_team_email,
        slack_webhook_url=slack.get_secret_value() if slack is not None else None,
    )


@contextmanager
def open_engine(settings: Settings, *, read_only: bool = False) -> Iterator[Engine]:
    """Just the database, for commands that need nothing else (a broken journey file must not
    stop ``stepmail sends unknown``); disposed of on the way out. ``read_only``: every write
    through it is refused (``stepmail plan``). A SQLite file must be there: these commands
    never create the database (a mistyped path would read as an empty installation)."""
    engine = make_engine(settings.database_url, read_only=read_only, existing=True)
    try:
        yield engine
    finally:
        engine.dispose()


def pool_options(settings: Settings) -> dict[str, Any]:
    """Connection-pool size for PostgreSQL (SQLite uses SQLAlchemy's defaults)."""
    if settings.database_url.startswith("sqlite"):
        return {}
    return {"pool_size": settings.db_pool_size}


log = logging.getLogger(__name__)
_current: Runtime | None = None
_lock = threading.Lock()


def install_runtime(runtime: Runtime | None) -> None:
    """Make ``runtime`` the one actors use in this process (set by entry points and tests)."""
    global _current
    with _lock:
        _current = runtime


def current_runtime() -> Runtime:
    """The installed runtime. A worker process started with ``dramatiq workers`` builds it as
    it boots (:mod:`orchestrator.processes.worker`; on its first message if that failed):
    built, the current journeys' templates compiled, then :func:`ready_to_serve`, so the
    compiled templates are out of the collector's reach too."""
    global _current
    with _lock:
        if _current is None:
            from orchestrator.settings import get_settings

            runtime = build_runtime(get_settings())
            runtime.catalog.compile_templates()
            _current = runtime
            ready_to_serve(runtime, sends_only=True)
        return _current


# Allocations (less deallocations) between two young collections in a serving process;
# Python's default is 700. A batch of 1,000 events allocates ~25 times that, so with 700 its
# objects were scanned ~35 times while alive and moved to older generations, whose
# collections then scanned them again: ~10 ms of a batch's ~70 ms of CPU, against ~5 with
# 10,000 (bench/README, "Session 8"). With six batches in flight in an API process, 10,000
# still caught most of their objects alive: ~7-9 ms of collections a batch, against ~1 with
# 100,000, when the objects of the batches before have died (bench/README, "Session 13").
# A collection scans only what is still alive: what dies young is freed by reference
# counting and never scanned; only garbage in cycles waits longer, at most this many
# objects more.
YOUNG_COLLECTION_EVERY = 100_000


def ready_to_serve(runtime: Runtime, *, sends_only: bool = False) -> None:
    """What a serving process does once its runtime is built, before its first request or
    message: read the definition files (``sends_only``: a worker's), then settle the heap
    (so what they built is frozen with the rest of start-up)."""
    runtime.read_definitions(sends_only=sends_only)
    settle_heap_for_serving()


def settle_heap_for_serving() -> None:
    """Move what start-up built (modules, the journey catalogue, compiled templates and
    statements: ~150,000 objects) out of the garbage collector's reach: they live as long as
    the process, and every full collection scanned them all again, ~20 ms of a batch of 1,000
    events (bench/README, "Session 6: the event service"). And collect the youngest objects
    every YOUNG_COLLECTION_EVERY allocations instead of 700: a batch of events or mails makes
    a few hundred thousand short-lived objects, which the default scanned again and again
    while they lived, for almost nothing found (bench/README, "Session 8", "Session 13").
    Called once a serving process has built its runtime; what is freed later is collected as
    before."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
