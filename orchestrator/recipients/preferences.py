"""Topic preferences: a customer may stop one journey's mails and keep the others.

A topic is a journey id. No ``subscription_preference`` row means subscribed, so only a choice
the customer made is stored, and checking one topic at send time is one unique-index lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator.db.tables import subscription_preferences

_PREFS = subscription_preferences


def opted_out_topics(connection: Connection, customer_id: int) -> frozenset[str]:
    """Every topic the customer turned off."""
    rows = connection.execute(
        select(_PREFS.c.topic).where(
            _PREFS.c.customer_id == customer_id, _PREFS.c.subscribed.is_(False)
        )
    )
    return frozenset(rows.scalars())


def save_preferences(
    connection: Connection, customer_id: int, choices: Mapping[str, bool], now: datetime
) -> None:
    """Store the customer's choice for each topic in ``choices`` (an upsert per topic)."""
    if not choices:
        return
    module: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
    rows = [
        {"customer_id": customer_id, "topic": topic, "subscribed": subscribed, "updated_at": now}
        for topic, subscribed in sorted(choices.items())
    ]
    statement = module.insert(_PREFS).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["customer_id", "topic"],
        set_={"subscribed": statement.excluded.subscribed, "updated_at": now},
    )
    connection.execute(statement)
