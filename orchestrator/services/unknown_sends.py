"""The human end of "never resent blindly": the sends whose outcome stayed unknown, and
settling one as a person decided (:mod:`orchestrator.delivery.unknown_sends`)."""

from __future__ import annotations

from sqlalchemy import Engine

from orchestrator.clock import Clock
from orchestrator.delivery.unknown_sends import (
    Settlement,
    UnknownSend,
    list_unknown,
    settle_unknown,
)


def list_unknown_sends(engine: Engine, *, limit: int = 100) -> list[UnknownSend]:
    """The sends waiting for a person, oldest first."""
    with engine.connect() as connection:
        return list_unknown(connection, limit)


def settle_unknown_send(
    engine: Engine, send_id: int, settlement: Settlement, *, note: str, clock: Clock
) -> None:
    """One conditional UPDATE on ``unknown`` (SendNotFound, SendNotUnknown otherwise)."""
    with engine.begin() as connection:
        settle_unknown(connection, send_id, settlement, note, clock.now())
