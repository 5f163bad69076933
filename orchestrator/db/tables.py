"""The tables as SQLAlchemy Core objects, for the hot paths that write SQL directly."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from orchestrator.db.models import (
    AnalyticsDaily,
    ArchiveDictionary,
    AuditEntry,
    ConsentRecord,
    ConsoleSession,
    ConsoleUser,
    CsmTask,
    Customer,
    CustomerStageEntry,
    DeliveryAttempt,
    Enrollment,
    HealthAction,
    HealthBandDaily,
    HealthScoreEntry,
    JobWatermark,
    JourneyCurrent,
    JourneyVersion,
    JourneyVersionStarts,
    LinkClick,
    LoginFailure,
    MessageArchive,
    ProgramRegistration,
    ProgramSeats,
    ProviderEvent,
    ScheduledSend,
    SendHold,
    SnapshotFile,
    SoftBounceTally,
    SubscriptionPreference,
    Suppression,
    SurveyResponse,
    TaskNote,
    UsageEvent,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)

customers = cast(Table, Customer.__table__)  # type: ignore[attr-defined]
enrollments = cast(Table, Enrollment.__table__)  # type: ignore[attr-defined]
scheduled_sends = cast(Table, ScheduledSend.__table__)  # type: ignore[attr-defined]
delivery_attempts = cast(Table, DeliveryAttempt.__table__)  # type: ignore[attr-defined]
usage_events = cast(Table, UsageEvent.__table__)  # type: ignore[attr-defined]
suppressions = cast(Table, Suppression.__table__)  # type: ignore[attr-defined]
soft_bounce_tallies = cast(Table, SoftBounceTally.__table__)  # type: ignore[attr-defined]
provider_events = cast(Table, ProviderEvent.__table__)  # type: ignore[attr-defined]
subscription_preferences = cast(Table, SubscriptionPreference.__table__)  # type: ignore[attr-defined]
consent_records = cast(Table, ConsentRecord.__table__)  # type: ignore[attr-defined]
health_score_history = cast(Table, HealthScoreEntry.__table__)  # type: ignore[attr-defined]
health_actions = cast(Table, HealthAction.__table__)  # type: ignore[attr-defined]
csm_tasks = cast(Table, CsmTask.__table__)  # type: ignore[attr-defined]
job_watermarks = cast(Table, JobWatermark.__table__)  # type: ignore[attr-defined]
customer_stage_history = cast(Table, CustomerStageEntry.__table__)  # type: ignore[attr-defined]
survey_responses = cast(Table, SurveyResponse.__table__)  # type: ignore[attr-defined]
send_holds = cast(Table, SendHold.__table__)  # type: ignore[attr-defined]
program_registrations = cast(Table, ProgramRegistration.__table__)  # type: ignore[attr-defined]
program_seats = cast(Table, ProgramSeats.__table__)  # type: ignore[attr-defined]
webhook_endpoints = cast(Table, WebhookEndpoint.__table__)  # type: ignore[attr-defined]
webhook_messages = cast(Table, WebhookMessage.__table__)  # type: ignore[attr-defined]
webhook_attempts = cast(Table, WebhookAttempt.__table__)  # type: ignore[attr-defined]
archive_dictionaries = cast(Table, ArchiveDictionary.__table__)  # type: ignore[attr-defined]
message_archive = cast(Table, MessageArchive.__table__)  # type: ignore[attr-defined]
link_clicks = cast(Table, LinkClick.__table__)  # type: ignore[attr-defined]
analytics_daily = cast(Table, AnalyticsDaily.__table__)  # type: ignore[attr-defined]
health_band_daily = cast(Table, HealthBandDaily.__table__)  # type: ignore[attr-defined]
journey_versions = cast(Table, JourneyVersion.__table__)  # type: ignore[attr-defined]
snapshot_files = cast(Table, SnapshotFile.__table__)  # type: ignore[attr-defined]
journey_current = cast(Table, JourneyCurrent.__table__)  # type: ignore[attr-defined]
journey_version_starts = cast(Table, JourneyVersionStarts.__table__)  # type: ignore[attr-defined]
task_notes = cast(Table, TaskNote.__table__)  # type: ignore[attr-defined]
console_users = cast(Table, ConsoleUser.__table__)  # type: ignore[attr-defined]
console_sessions = cast(Table, ConsoleSession.__table__)  # type: ignore[attr-defined]
login_failures = cast(Table, LoginFailure.__table__)  # type: ignore[attr-defined]
audit_log = cast(Table, AuditEntry.__table__)  # type: ignore[attr-defined]
