"""The tables. The ``scheduled_send`` rows are the durable schedule: the source of truth for
what goes out when; Redis only carries the ids of rows that are due."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from orchestrator.db.types import UTCDateTime
from orchestrator.journeys.states import SendState

# The scheduler's filter, spelled exactly like the partial index's predicate so it is used.
WAKEABLE_SQL = "state IN ('pending', 'dispatched', 'sending', 'stalled', 'reconciling')"
# Rows whose outcome or engagement changed since analytics last counted them: what the rollup
# job reads (analytics/rollups.py). Spelled like its partial index's predicate, which holds
# only those rows, so finding them costs what changed, never a scan of all sends.
UNCOUNTED_SEND_SQL = (
    "counted_state <> (CASE WHEN state IN ('sent', 'skipped', 'missed', 'failed', 'unknown', "
    "'cancelled') THEN state ELSE '' END) OR counted_engagement <> engagement"
)
# Sends the provider gave an id (a lookup by id implies it, so the planner uses the index).
PROVIDER_ID_KNOWN_SQL = "provider_message_id IS NOT NULL"
# Sends whose outcome is unknown, waiting for a person (the console's list; migration 0016).
UNKNOWN_SEND_SQL = "state = 'unknown'"
# Enrollments not counted yet as enrolled (bit 1), or converted since (bit 2).
UNCOUNTED_ENROLLMENT_SQL = "counted <> (CASE WHEN state = 'converted' THEN 3 ELSE 1 END)"
# Never counted at all (a subset of the above; ``counted = 0`` is estimated from the column's
# statistics, where the planner takes the expression above to hold nearly every row).
NOT_COUNTED_ENROLLMENT_SQL = "counted = 0"


def _utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Customer(SQLModel, table=True):
    """A customer account as the product's signup flow described it; updated, never duplicated."""

    __tablename__ = "customer"
    __table_args__ = (
        # The daily health job finds the customers whose first days without band actions end.
        Index("ix_customer_signed_up_at", "signed_up_at"),
        # The console finds customers by the start of an address or a company name.
        Index("ix_customer_email", "email", "id"),
        Index("ix_customer_company", "company", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=255, unique=True)
    public_id: str = Field(max_length=40, unique=True)  # random; what unsubscribe links carry
    email: str = Field(max_length=320)
    name: str = Field(max_length=200)
    company: str = Field(default="", max_length=200)
    plan: str = Field(default="", max_length=100)
    annual_contract_value: Decimal = Field(
        default=Decimal(0), sa_column=Column(Numeric(18, 2), nullable=False)
    )
    currency: str = Field(default="JPY", max_length=3)
    locale: str = Field(default="ja", max_length=35)
    timezone: str = Field(default="Asia/Tokyo", max_length=64)
    tier: str = Field(max_length=10)
    tier_explicit: bool = False
    csm_name: str | None = Field(default=None, max_length=200)
    csm_email: str | None = Field(default=None, max_length=320)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    signed_up_at: datetime = _utc_column()
    created_at: datetime = _utc_column()
    updated_at: datetime = _utc_column()
    health_score: int | None = None  # 0-100, latest; the history is in health_score_history
    health_band: str | None = Field(default=None, max_length=20)
    health_updated_at: datetime | None = _utc_column(nullable=True)
    # The lifecycle stage (journeys/lifecycle.yaml), who set it (signup, rules, manual, pinned)
    # and when; every move is also a customer_stage_history row.
    stage: str | None = Field(default=None, max_length=40)
    stage_source: str | None = Field(default=None, max_length=10)
    stage_changed_at: datetime | None = _utc_column(nullable=True)
    # The relationship, which automation steps aside for: cancelled (subscription_cancelled or
    # a PATCH), left a signup journey by an exit event, reached a journey's goal.
    cancelled_at: datetime | None = _utc_column(nullable=True)
    exited_at: datetime | None = _utc_column(nullable=True)
    converted_at: datetime | None = _utc_column(nullable=True)


class Enrollment(SQLModel, table=True):
    """One customer in one journey. ``entry_key`` tells entries apart when re-entry is allowed.

    ``started_version_id`` is the journey version they entered on, ``version_id`` the one they
    follow now (the latest, or still the first with ``in_flight: finish_started``); both are
    empty for enrollments from before versions were recorded.
    """

    __tablename__ = "enrollment"
    __table_args__ = (
        UniqueConstraint("customer_id", "journey_id", "entry_key", name="uq_enrollment_entry"),
        Index(
            "ix_enrollment_uncounted",
            "id",
            sqlite_where=text(UNCOUNTED_ENROLLMENT_SQL),
            postgresql_where=text(UNCOUNTED_ENROLLMENT_SQL),
        ),
        # A version change reads and moves the journey's active enrollments.
        Index("ix_enrollment_journey_state", "journey_id", "state"),
        # The enrollments the rollup job has not counted yet, by journey and the version each
        # started on: the journey page adds them to journey_version_starts (migration 0017).
        Index(
            "ix_enrollment_not_counted",
            "journey_id",
            "started_version_id",
            sqlite_where=text(NOT_COUNTED_ENROLLMENT_SQL),
            postgresql_where=text(NOT_COUNTED_ENROLLMENT_SQL),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")  # indexed by uq_enrollment_entry
    journey_id: str = Field(max_length=100)
    entry_key: str = Field(default="signup", max_length=200)
    state: str = Field(default="active", max_length=20)
    anchor_at: datetime = _utc_column()
    created_at: datetime = _utc_column()
    ended_at: datetime | None = _utc_column(nullable=True)
    end_reason: str | None = Field(default=None, max_length=500)
    # Analytics (analytics/rollups.py): what the rollups hold of this enrollment (bit 1 enrolled,
    # bit 2 converted), and the tier, language and day it is counted under, stamped once.
    counted: int = 0
    stat_tier: str | None = Field(default=None, max_length=10)
    stat_locale: str | None = Field(default=None, max_length=35)
    stat_day: date | None = Field(default=None, sa_column=Column(Date(), nullable=True))
    started_version_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("journey_version.id", name="fk_enrollment_started_version"),
            nullable=True,
        ),
    )
    version_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("journey_version.id", name="fk_enrollment_version"), nullable=True
        ),
    )
    # Set while an operator holds the enrollment (state ``paused``): resuming moves its unsent
    # steps later by the time it was held, so the journey's rhythm and grace are kept.
    paused_at: datetime | None = _utc_column(nullable=True)


class ScheduledSend(SQLModel, table=True):
    """One step of one enrollment: the unit of scheduling and the idempotency key of a send.

    ``wake_at`` is when a scheduler should next look at the row (the due time, a retry time,
    or the end of a dispatch lease); the partial index on it makes a tick cost what is due.
    """

    __tablename__ = "scheduled_send"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_id", name="uq_scheduled_send_step"),
        Index("ix_scheduled_send_customer_sent", "customer_id", "sent_at"),
        Index(
            "ix_scheduled_send_wake",
            "wake_at",
            sqlite_where=text(WAKEABLE_SQL),
            postgresql_where=text(WAKEABLE_SQL),
        ),
        Index(
            "ix_scheduled_send_uncounted",
            "id",
            sqlite_where=text(UNCOUNTED_SEND_SQL),
            postgresql_where=text(UNCOUNTED_SEND_SQL),
        ),
        # A version change counts and moves the rows still to go, step by step.
        Index(
            "ix_scheduled_send_active_step",
            "journey_id",
            "step_id",
            sqlite_where=text(WAKEABLE_SQL),
            postgresql_where=text(WAKEABLE_SQL),
        ),
        # A provider event finds its send by the id the provider gave it; a row gets one
        # only once accepted, so the pending rows stay out of the index (migration 0012).
        Index(
            "ix_scheduled_send_provider_message_id",
            "provider_message_id",
            sqlite_where=text(PROVIDER_ID_KNOWN_SQL),
            postgresql_where=text(PROVIDER_ID_KNOWN_SQL),
        ),
        # The few sends waiting for a person, found without a scan of all sends (0016).
        Index(
            "ix_scheduled_send_unknown",
            "id",
            sqlite_where=text(UNKNOWN_SEND_SQL),
            postgresql_where=text(UNKNOWN_SEND_SQL),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: int = Field(foreign_key="enrollment.id")  # indexed by uq_scheduled_send_step
    customer_id: int = Field(foreign_key="customer.id")  # indexed with sent_at (frequency caps)
    journey_id: str = Field(max_length=100)
    step_id: str = Field(max_length=100)
    due_at: datetime = _utc_column()
    wake_at: datetime = _utc_column()
    state: str = Field(default=SendState.PENDING, max_length=20)
    attempts: int = 0
    dispatches: int = 0
    reason: str | None = Field(default=None, max_length=1000)
    sent_at: datetime | None = _utc_column(nullable=True)
    # Pacing (send windows, frequency cap): the moment a deferral put the row off to, from which
    # the journey's grace counts; and when the cap admitted it, from which it holds a cap slot.
    held_until: datetime | None = _utc_column(nullable=True)
    admitted_at: datetime | None = _utc_column(nullable=True)
    provider_message_id: str | None = Field(default=None, max_length=255)
    updated_at: datetime = _utc_column()
    # What the provider reported after acceptance (event webhook): latest status and engagement.
    delivery_status: str | None = Field(default=None, max_length=30)
    delivered_at: datetime | None = _utc_column(nullable=True)
    open_count: int = 0
    click_count: int = 0
    engagement: int = 0  # journeys.states.Engagement bits: delivered, opened, clicked, …
    # Analytics (analytics/rollups.py): the outcome and engagement the rollups hold of this row,
    # and the day, tier, language and skip kind it is counted under (tier and language stamped
    # once: the tier a mail was rendered for stays its tier in the funnel).
    counted_state: str = Field(default="", max_length=12)
    counted_engagement: int = 0
    stat_day: date | None = Field(default=None, sa_column=Column(Date(), nullable=True))
    stat_tier: str | None = Field(default=None, max_length=10)
    stat_locale: str | None = Field(default=None, max_length=35)
    stat_kind: str | None = Field(default=None, max_length=20)


class DeliveryAttempt(SQLModel, table=True):
    """One try at handing a scheduled send to a transport, kept for audit and debugging."""

    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    scheduled_send_id: int = Field(index=True)  # not a foreign key, for speed: migration 0014
    attempt: int
    transport: str = Field(max_length=20)
    started_at: datetime = _utc_column()
    finished_at: datetime | None = _utc_column(nullable=True)
    outcome: str | None = Field(default=None, max_length=20)
    error: str | None = Field(default=None, max_length=2000)
    provider_message_id: str | None = Field(default=None, max_length=255)


class UsageEvent(SQLModel, table=True):
    """Something a customer did in the product; ``event_key`` makes a replayed event a no-op."""

    __tablename__ = "usage_event"
    __table_args__ = (
        UniqueConstraint("customer_id", "event_key", name="uq_usage_event_key"),
        Index("ix_usage_event_customer_name", "customer_id", "name", "occurred_at"),
        Index("ix_usage_event_occurred", "occurred_at"),  # daily rescoring: what left a window
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int  # not a foreign key, for speed; why it cannot dangle: migration 0010
    name: str = Field(max_length=100)
    event_key: str = Field(max_length=200)
    occurred_at: datetime = _utc_column()
    received_at: datetime = _utc_column()
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Suppression(SQLModel, table=True):
    """An address that must not be mailed by any journey (unsubscribe, bounce, complaint)."""

    __tablename__ = "suppression"
    __table_args__ = (  # the API's list, newest first, all or one reason (migration 0016)
        Index("ix_suppression_created", "created_at"),
        Index("ix_suppression_reason_created", "reason", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    reason: str = Field(max_length=50)
    source: str = Field(default="", max_length=200)
    created_at: datetime = _utc_column()


class SoftBounceTally(SQLModel, table=True):
    """Soft bounces per address; past the configured count the address is suppressed."""

    __tablename__ = "soft_bounce_tally"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    count: int = 0
    last_at: datetime = _utc_column()


class ProviderEvent(SQLModel, table=True):
    """One event a mail provider reported (SendGrid's event webhook), stored as received.

    Two keys make replays no-ops: the provider's own event id, and a hash of the content for
    when a retry arrives under a different id.
    """

    __tablename__ = "provider_event"
    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_provider_event_id"),
        UniqueConstraint("provider", "content_hash", name="uq_provider_event_content"),
        # The console's list of one type, newest first (migration 0016).
        Index("ix_provider_event_type", "event_type", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=20)
    event_id: str = Field(max_length=100)
    content_hash: str = Field(max_length=64)
    event_type: str = Field(max_length=40)
    email: str = Field(default="", max_length=320)
    scheduled_send_id: int | None = Field(default=None, foreign_key="scheduled_send.id", index=True)
    provider_message_id: str | None = Field(default=None, max_length=255)
    occurred_at: datetime = _utc_column()
    received_at: datetime = _utc_column()
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class SubscriptionPreference(SQLModel, table=True):
    """A customer's choice for one topic (a journey id): absent means subscribed."""

    __tablename__ = "subscription_preference"
    __table_args__ = (UniqueConstraint("customer_id", "topic", name="uq_subscription_topic"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    topic: str = Field(max_length=100)
    subscribed: bool = True
    updated_at: datetime = _utc_column()


class ConsentRecord(SQLModel, table=True):
    """How and when a customer agreed to receive mail (特定電子メール法 asks us to keep this)."""

    __tablename__ = "consent_record"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    source: str = Field(max_length=100)
    given_at: datetime = _utc_column()
    text_version: str = Field(max_length=100)
    recorded_at: datetime = _utc_column()
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class HealthScoreEntry(SQLModel, table=True):
    """One computed health score, kept as history; the latest also sits on the customer."""

    __tablename__ = "health_score_history"
    __table_args__ = (Index("ix_health_history_customer", "customer_id", "computed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int  # not a foreign key, for speed; why it cannot dangle: migration 0010
    score: int
    band: str = Field(max_length=20)
    components: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    computed_at: datetime = _utc_column()


class HealthAction(SQLModel, table=True):
    """An action fired on entering a band; the latest per band enforces the cool-down."""

    __tablename__ = "health_action"
    __table_args__ = (Index("ix_health_action_customer", "customer_id", "band", "fired_at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    band: str = Field(max_length=20)
    action: str = Field(max_length=50)
    fired_at: datetime = _utc_column()


class CsmTask(SQLModel, table=True):
    """Work for a human: the hand-off that keeps automation from abandoning a customer."""

    __tablename__ = "csm_task"
    __table_args__ = (
        Index("ix_csm_task_status", "status", "due_at"),
        # The inbox's closed tasks, latest closed first, and its filter's kinds (0016).
        Index("ix_csm_task_closed", "status", "closed_at", "id"),
        Index("ix_csm_task_kind", "status", "kind"),
        # Every task, soonest due first: the task API's status=all, a page at a time (0018).
        Index("ix_csm_task_due", "due_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    kind: str = Field(max_length=50)
    reason: str = Field(max_length=1000)
    status: str = Field(default="open", max_length=20)
    assignee: str | None = Field(default=None, max_length=320)
    created_at: datetime = _utc_column()
    due_at: datetime = _utc_column()
    closed_at: datetime | None = _utc_column(nullable=True)
    notified_at: datetime | None = _utc_column(nullable=True)
    closed_reason: str | None = Field(default=None, max_length=500)
    escalated_at: datetime | None = _utc_column(nullable=True)  # overdue: the team was told once


class JobWatermark(SQLModel, table=True):
    """How far a periodic job has covered time. The next run starts there, so a run missed
    during an outage is caught up, and ``claimed_until`` keeps two schedulers from running
    the same window at once."""

    __tablename__ = "job_watermark"

    name: str = Field(primary_key=True, max_length=50)
    done_until: datetime = _utc_column()
    claimed_until: datetime | None = _utc_column(nullable=True)


class CustomerStageEntry(SQLModel, table=True):
    """One move of a customer's lifecycle stage: from where, to where, by whom and why."""

    __tablename__ = "customer_stage_history"
    __table_args__ = (Index("ix_stage_history_customer", "customer_id", "changed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    stage: str = Field(max_length=40)
    previous: str | None = Field(default=None, max_length=40)
    source: str = Field(max_length=10)  # signup, rules, manual, pinned
    reason: str = Field(default="", max_length=500)
    changed_at: datetime = _utc_column()


class SurveyResponse(SQLModel, table=True):
    """A customer's answer to one survey (the day-30 NPS): the latest answer wins, and each
    change is one ``nps_submitted`` event (``revision`` numbers them)."""

    __tablename__ = "survey_response"
    __table_args__ = (UniqueConstraint("customer_id", "survey", name="uq_survey_response"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    survey: str = Field(max_length=100)
    score: int
    comment: str | None = Field(default=None, max_length=2000)
    revision: int = 1
    first_answered_at: datetime = _utc_column()
    answered_at: datetime = _utc_column()


class SendHold(SQLModel, table=True):
    """A scheduled send held while a CSM task is open: when, by which task, and how the hold
    ended (released or cancelled when the task closed)."""

    __tablename__ = "send_hold"

    id: int | None = Field(default=None, primary_key=True)
    scheduled_send_id: int = Field(foreign_key="scheduled_send.id", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)  # the customer's page (0016)
    task_id: int = Field(foreign_key="csm_task.id", index=True)
    held_at: datetime = _utc_column()
    ended_at: datetime | None = _utc_column(nullable=True)
    outcome: str | None = Field(default=None, max_length=20)  # released, cancelled


class ProgramRegistration(SQLModel, table=True):
    """A customer registered for a webinar or group session of journeys/programs.yaml."""

    __tablename__ = "program_registration"
    __table_args__ = (
        UniqueConstraint("program_id", "customer_id", name="uq_program_registration"),
    )

    id: int | None = Field(default=None, primary_key=True)
    program_id: str = Field(max_length=100)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    registered_at: datetime = _utc_column()


class ProgramSeats(SQLModel, table=True):
    """Seats taken per program: one conditional UPDATE keeps registrations within capacity."""

    __tablename__ = "program_seats"

    program_id: str = Field(primary_key=True, max_length=100)
    taken: int = 0


class ArchiveDictionary(SQLModel, table=True):
    """A rendered mail that later mails of the same template are compressed against: they
    differ from it in a name, a date and a few links, so each is stored in a few hundred bytes
    (:mod:`orchestrator.archive.codec`)."""

    __tablename__ = "archive_dictionary"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True)  # sha256 of the content: stored once
    template_name: str = Field(max_length=255)
    created_at: datetime = _utc_column()
    content: bytes = Field(sa_column=Column(LargeBinary(), nullable=False))  # zstd, no dictionary


class MessageArchive(SQLModel, table=True):
    """What one sent mail was: subject, headers, HTML and text, as handed to the transport.
    Kept ``ARCHIVE_RETENTION_DAYS``, then pruned by the scheduler in batches."""

    __tablename__ = "message_archive"

    send_id: int = Field(primary_key=True)  # not a foreign key, for speed: migration 0014
    archived_at: datetime = _utc_column(index=True)
    subject: str = Field(sa_column=Column(Text(), nullable=False))
    template_name: str = Field(max_length=255)
    dictionary_id: int | None = Field(default=None, foreign_key="archive_dictionary.id", index=True)
    size: int  # bytes before compression
    body: bytes = Field(sa_column=Column(LargeBinary(), nullable=False))


class LinkClick(SQLModel, table=True):
    """One follow of a tracked link in a mail (or a provider's click event). Clicks that look
    like a link scanner's are kept, marked ``suspect`` with why, and never counted as a
    customer's click (:mod:`orchestrator.tracking.scanners`)."""

    __tablename__ = "link_click"
    __table_args__ = (Index("ix_link_click_send", "scheduled_send_id", "clicked_at"),)

    id: int | None = Field(default=None, primary_key=True)
    scheduled_send_id: int = Field(foreign_key="scheduled_send.id")
    clicked_at: datetime = _utc_column()
    url: str = Field(sa_column=Column(Text(), nullable=False))
    source: str = Field(default="link", max_length=20)  # link (our redirect) or a provider
    method: str = Field(default="GET", max_length=8)
    user_agent: str = Field(default="", max_length=300)
    suspect: bool = False
    suspect_reasons: str = Field(default="", max_length=100)  # e.g. "early,burst"


class AnalyticsDaily(SQLModel, table=True):
    """Counters per journey, step, tier, language and day: what funnels and the overview
    read, so a page never scans sends. ``step_id`` '' holds the journey's own counters
    (enrolled, converted). Kept by the rollup job (:mod:`orchestrator.analytics.rollups`)."""

    __tablename__ = "analytics_daily"
    __table_args__ = (Index("ix_analytics_daily_day", "day"),)

    journey_id: str = Field(primary_key=True, max_length=100)
    day: date = Field(sa_column=Column(Date(), primary_key=True))
    step_id: str = Field(primary_key=True, max_length=100)
    tier: str = Field(primary_key=True, max_length=10)
    locale: str = Field(primary_key=True, max_length=35)
    enrolled: int = 0
    sent: int = 0
    skipped_tier: int = 0
    skipped_suppressed: int = 0
    skipped_opted_out: int = 0
    skipped_condition: int = 0
    skipped_other: int = 0
    missed: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    scanner_clicked: int = 0
    bounced: int = 0
    unsubscribed: int = 0
    converted: int = 0


class HealthBandDaily(SQLModel, table=True):
    """How many customers were in each health band on a day ('' for not scored yet): the
    overview's bands now (the latest day) and their trend, so no page counts customers.
    Taken every few minutes by the scheduler (a day keeps its last count, ``taken_at``), or
    backfilled from ``health_score_history`` for the days before the first (``taken_at``
    empty): :mod:`orchestrator.analytics.bands`."""

    __tablename__ = "health_band_daily"

    day: date = Field(sa_column=Column(Date(), primary_key=True))
    band: str = Field(primary_key=True, max_length=20)
    customers: int = 0
    taken_at: datetime | None = _utc_column(nullable=True)


class TaskNote(SQLModel, table=True):
    """A line a CSM wrote on a task: what was tried, what the customer said."""

    __tablename__ = "task_note"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="csm_task.id", index=True)
    author: str = Field(max_length=320)
    body: str = Field(max_length=2000)
    created_at: datetime = _utc_column()


class ConsoleUser(SQLModel, table=True):
    """Someone who may sign in to the console, with one role. Never deleted, only disabled,
    so the audit log keeps naming who did what."""

    __tablename__ = "console_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)  # case-folded
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=200)  # argon2id, PHC string
    created_at: datetime = _utc_column()
    disabled_at: datetime | None = _utc_column(nullable=True)


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is stored, so
    the table alone opens no session. Ending the row ends the session at once."""

    __tablename__ = "console_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="console_user.id", index=True)
    csrf_token: str = Field(max_length=64)  # the synchronizer token of this session's forms
    created_at: datetime = _utc_column()
    last_seen_at: datetime = _utc_column()
    ended_at: datetime | None = _utc_column(nullable=True)


class LoginFailure(SQLModel, table=True):
    """One refused sign-in, counted per account and per client address; stored in the
    database so the throttle holds across API processes."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_key", "kind", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)  # "account" | "address"
    key: str = Field(max_length=320)
    at: datetime = _utc_column()


class AuditEntry(SQLModel, table=True):
    """Who did what to which thing, when: every operator action, written in the transaction
    that does it."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_target", "target_kind", "target_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc_column()
    actor_id: int | None = Field(default=None, foreign_key="console_user.id")
    actor: str = Field(max_length=320)  # the user's address, or "cli"
    action: str = Field(max_length=50)
    target_kind: str = Field(max_length=30)
    target_id: str = Field(max_length=320)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class JourneyVersion(SQLModel, table=True):
    """One distinct content of a journey (its YAML and the templates it uses), kept from the
    moment a process first saw it: what customers on it are sent, after the files change.

    ``number`` counts a journey's versions in the order they were seen. ``applied_at`` marks
    the version once it was made current (once: a content applied before is never made
    current again on its own; see :mod:`orchestrator.services.journey_versions`);
    ``apply_report`` is what applying it did, ``blocked_reason`` why it was not applied.
    """

    __tablename__ = "journey_version"
    __table_args__ = (
        UniqueConstraint("journey_id", "content_hash", name="uq_journey_version_hash"),
        UniqueConstraint("journey_id", "number", name="uq_journey_version_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    journey_id: str = Field(max_length=100)
    number: int
    content_hash: str = Field(max_length=64)
    yaml_text: str = Field(sa_column=Column(Text, nullable=False))
    templates: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )  # template name → SnapshotFile.content_hash
    seen_at: datetime = _utc_column()
    applied_at: datetime | None = _utc_column(nullable=True)
    apply_report: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    blocked_reason: str | None = Field(default=None, max_length=2000)


class SnapshotFile(SQLModel, table=True):
    """A template's text, kept once by its hash however many versions use it."""

    __tablename__ = "snapshot_file"

    content_hash: str = Field(primary_key=True, max_length=64)
    text: str = Field(sa_column=Column(Text, nullable=False))


class JourneyCurrent(SQLModel, table=True):
    """The version of each journey that is current: new customers start on it, and the row
    is what the process applying a change locks, so exactly one applies it."""

    __tablename__ = "journey_current"

    journey_id: str = Field(primary_key=True, max_length=100)
    version_id: int | None = Field(default=None, foreign_key="journey_version.id")
    applied_at: datetime | None = _utc_column(nullable=True)


class JourneyVersionStarts(SQLModel, table=True):
    """How many enrollments started on each journey version, as far as the rollup job has
    counted them: it adds an enrollment here when it first counts it, in the same statement
    that marks it counted, so this plus the enrollments not counted yet (the partial index
    ``ix_enrollment_uncounted`` holds them) is the exact number. Counting them live read every
    enrollment the journey ever had on every view of its page."""

    __tablename__ = "journey_version_starts"

    version_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("journey_version.id"), primary_key=True, autoincrement=False
        )
    )
    enrollments: int = 0


class WebhookEndpoint(SQLModel, table=True):
    """An integrator's URL and the events it subscribed to (``,mail.sent,task.opened,``: the
    commas make a LIKE match one whole name). The secret signs every delivery to it."""

    __tablename__ = "webhook_endpoint"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2048)
    secret: str = Field(max_length=100)
    events: str = Field(max_length=1000)
    enabled: bool = True
    description: str = Field(default="", max_length=200)
    created_at: datetime = _utc_column()


class WebhookMessage(SQLModel, table=True):
    """The outbox: one event for one endpoint, written in the transaction of the fact it
    reports. Delivered in ``id`` order per endpoint; ``next_attempt_at`` is both the retry
    time and, while ``delivering``, the claim's lease."""

    __tablename__ = "webhook_message"
    __table_args__ = (
        Index("ix_webhook_message_endpoint_state", "endpoint_id", "state", "id"),
        Index(
            "ix_webhook_message_due",
            "next_attempt_at",
            sqlite_where=text("state IN ('pending', 'delivering')"),
            postgresql_where=text("state IN ('pending', 'delivering')"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoint.id")
    event_id: str = Field(max_length=40)  # the webhook-id header: the same on every retry
    event_type: str = Field(max_length=50)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default="pending", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = _utc_column()
    created_at: datetime = _utc_column()
    delivered_at: datetime | None = _utc_column(nullable=True)
    last_error: str | None = Field(default=None, max_length=500)


class WebhookAttempt(SQLModel, table=True):
    """The delivery log: every POST, its status code, latency and the start of the answer."""

    __tablename__ = "webhook_attempt"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="webhook_message.id", index=True)
    attempt: int
    at: datetime = _utc_column()
    status_code: int | None = None
    latency_ms: int = 0
    response: str = Field(default="", max_length=500)
    error: str | None = Field(default=None, max_length=500)
