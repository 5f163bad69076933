"""A small Python client for the product side: send usage events and customer changes.

    from orchestrator.client import StepmailClient

    with StepmailClient("https://stepmail.internal", api_key) as stepmail:
        stepmail.track("acct_42", "report_created", id="evt-9f2c", report_type="approvals")
        stepmail.update_customer("acct_42", annual_contract_value=3_600_000)

Pass ``id`` to make retries safe (the same id is stored once).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from orchestrator.errors import StepmailApiError


class StepmailClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._own = http is None
        self._http = http or httpx.Client(timeout=timeout)

    def track(
        self,
        external_id: str,
        name: str,
        *,
        id: str | None = None,
        occurred_at: datetime | None = None,
        **properties: Any,
    ) -> dict[str, Any]:
        """Record one event; ``properties`` become the event's properties."""
        return self._call(
            "POST", "/v1/events", _event(external_id, name, id, occurred_at, properties)
        )

    def track_many(self, events: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """Record up to 1,000 events in one all-or-nothing request."""
        return self._call("POST", "/v1/events", {"events": list(events)})

    def update_customer(self, external_id: str, **fields: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/v1/customers/{external_id}", fields)

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> StepmailClient:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._http.request(
            method, self._base + path, json=_jsonable(body), headers=self._headers
        )
        if response.status_code >= 400:
            raise StepmailApiError(response.status_code, response.text)
        result: dict[str, Any] = response.json()
        return result


def _event(
    external_id: str,
    name: str,
    event_id: str | None,
    occurred_at: datetime | None,
    properties: dict[str, Any],
) -> dict[str, Any]:
    item: dict[str, Any] = {"external_id": external_id, "name": name, "properties": properties}
    if event_id is not None:
        item["id"] = event_id
    if occurred_at is not None:
        item["occurred_at"] = occurred_at.isoformat()
    return item


def _jsonable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if hasattr(v, "as_tuple") else v) for k, v in body.items()}  # Decimal
