"""Small event requests that arrive together, stored and reacted to in one transaction.

A single event alone costs a transaction of about eight statements (lock, store, journeys,
health, stages); a batch of a thousand costs about sixty times that, not a thousand. So the
API hands the requests that wait while a group is running to :func:`track_event_group` as the
next group: their events go through the batch path together, and each request is answered
as if it had been alone. Nothing weakens: when a request's answer is sent, its events are
stored and reacted to, and a request is still all or nothing. If the group's transaction
fails, nothing of it is stored: requests naming an unknown customer are taken out and the
rest run together again; on any other failure each request runs again on its own. Either
way a failing request gets the error it would have had alone.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.db.tables import csm_tasks
from orchestrator.errors import UnknownCustomers
from orchestrator.services.events import (
    Tracked,
    UsageRules,
    accepted,
    store_and_react,
    track_events,
)
from orchestrator.usage.events import EventsAccepted, EventSubmission, event_key

log = logging.getLogger(__name__)

# What a request of the group gets: its answer, or the exception it would have raised alone.
Outcome = EventsAccepted | Exception


def track_event_group(
    engine: Engine, submissions: Sequence[EventSubmission], *, rules: UsageRules, clock: Clock
) -> list[Outcome]:
    """Each submission's answer (its ``task_ids`` are the CSM tasks opened for the customers
    it stored events of, each task in one answer only), in order. The caller notifies the
    tasks."""
    if len(submissions) > 1:
        try:
            return _together(engine, submissions, rules, clock)
        except UnknownCustomers as unknown:  # the usual failure: the others go on together
            failing = _naming(submissions, unknown)
            if len(failing) < len(submissions):
                return _without(engine, submissions, failing, rules, clock)
        except Exception as exc:  # each request alone below gets its own error
            log.warning(
                "a group of %d event requests failed (%s); each runs again alone",
                len(submissions),
                type(exc).__name__,
            )
    return [_alone(engine, submission, rules, clock) for submission in submissions]


def _naming(submissions: Sequence[EventSubmission], unknown: UnknownCustomers) -> set[int]:
    """The positions of the submissions holding the group's unknown events."""
    starts = list(itertools.accumulate(len(s.events) for s in submissions))
    return {bisect.bisect_right(starts, index) for index, _ in unknown.unknown}


def _without(
    engine: Engine,
    submissions: Sequence[EventSubmission],
    failing: set[int],
    rules: UsageRules,
    clock: Clock,
) -> list[Outcome]:
    """The group again without the failing submissions, each of which runs alone (and gets
    its own error, its events named by their own index)."""
    rest = [s for n, s in enumerate(submissions) if n not in failing]
    answers = iter(track_event_group(engine, rest, rules=rules, clock=clock))
    return [
        _alone(engine, s, rules, clock) if n in failing else next(answers)
        for n, s in enumerate(submissions)
    ]


def _alone(engine: Engine, submission: EventSubmission, rules: UsageRules, clock: Clock) -> Outcome:
    try:
        return track_events(engine, submission, rules=rules, clock=clock, notify=_later)
    except Exception as exc:  # the request's own error, raised again by its handler
        return exc


def _later(_task_ids: Sequence[int] | None) -> None:
    """The tasks are in the answer; the API notifies them after answering."""


def _together(
    engine: Engine, submissions: Sequence[EventSubmission], rules: UsageRules, clock: Clock
) -> list[Outcome]:
    events = [event for submission in submissions for event in submission.events]
    with Session(engine) as session, session.begin():
        now = clock.now()
        tracked = store_and_react(session, events, rules, now, batched=True)
        owners = _task_customers(session, tracked.task_ids)
    return _answers(submissions, tracked, owners, rules, now)


def _task_customers(session: Session, task_ids: Sequence[int]) -> dict[int, list[int]]:
    """The tasks by their customer's id."""
    by_customer: dict[int, list[int]] = defaultdict(list)
    if task_ids:
        query = select(csm_tasks.c.id, csm_tasks.c.customer_id).where(csm_tasks.c.id.in_(task_ids))
        for task_id, customer_id in session.execute(query):
            by_customer[customer_id].append(task_id)
    return by_customer


def _answers(
    submissions: Sequence[EventSubmission],
    tracked: Tracked,
    owners: dict[int, list[int]],
    rules: UsageRules,
    now: datetime,
) -> list[Outcome]:
    """Each request's share, as serial requests in this order would have had it: an event
    stored now counts as stored for the first request that sent it, a duplicate for any later;
    a task goes to the first request that stored an event of its customer."""
    new = {(event.customer_id, event.event_key) for event in tracked.new}
    answers: list[Outcome] = []
    for submission in submissions:
        customers: list[int] = []
        stored = 0
        for event in submission.events:
            customer_id = tracked.customer_ids[event.external_id]
            key = (customer_id, event_key(event, event.occurred_at or now))
            if key in new:
                new.discard(key)
                stored += 1
                customers.append(customer_id)
        task_ids = sorted(task for c in dict.fromkeys(customers) for task in owners.pop(c, []))
        answers.append(accepted(submission.events, stored, task_ids, rules.catalogue))
    if owners:  # a task of a customer no request stored an event of: the first request's
        first = answers[0]
        assert isinstance(first, EventsAccepted)
        first.task_ids = sorted(first.task_ids + [t for tasks in owners.values() for t in tasks])
    return answers
