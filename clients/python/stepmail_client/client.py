"""``StepmailClient``: one object per Stepmail installation, thread-safe as httpx is."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx

from stepmail_client.errors import StepmailApiError, StepmailClientError, StepmailConnectionError
from stepmail_client.retry import RETRY_STATUSES, RetryPolicy, retry_after_seconds
from stepmail_client.signing import signed_headers

TaskStatus = Literal["open", "closed", "all"]


class StepmailClient:
    """Calls Stepmail's HTTP API.

    ``api_key`` is the bearer token of ``/v1`` (``STEPMAIL_API_KEY``); ``signup_secret`` signs
    ``POST /hooks/signup`` (``STEPMAIL_SIGNUP_HOOK_SECRET``). Pass ``http`` to use a client of
    your own (proxies, TLS settings); the client then leaves it open.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        signup_secret: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._signup_secret = signup_secret
        self._retry = retry or RetryPolicy()
        self._own = http is None
        self._http = http or httpx.Client(timeout=timeout)
        self._sleep, self._draw, self._clock = sleep, draw, clock
        self.next_cursor: str | None = None  # the last list's next page (None: it was the last)

    # -- signup -----------------------------------------------------------------------------

    def signup(self, external_id: str, email: str, name: str, **fields: Any) -> dict[str, Any]:
        """Enroll a customer (``POST /hooks/signup``), signed with ``signup_secret``. Other
        fields: ``company``, ``plan``, ``annual_contract_value``, ``currency``, ``locale``,
        ``timezone``, ``csm_name``, ``csm_email``, ``signed_up_at``, ``tier``, ``attributes``,
        ``consent``. Idempotent on ``external_id``: a retry enrolls once."""
        if not self._signup_secret:
            raise StepmailClientError("signup needs signup_secret (STEPMAIL_SIGNUP_HOOK_SECRET)")
        body = _body({"external_id": external_id, "email": email, "name": name, **fields})
        secret = self._signup_secret
        return self._object(
            "POST",
            "/hooks/signup",
            body,
            sign=lambda: signed_headers(secret, int(self._clock()), body),
        )

    # -- usage events -----------------------------------------------------------------------

    def track(
        self,
        external_id: str,
        name: str,
        *,
        id: str | None = None,
        occurred_at: datetime | None = None,
        **properties: Any,
    ) -> dict[str, Any]:
        """Record one event (``POST /v1/events``); ``properties`` become its properties."""
        item = self._event(external_id, name, id, occurred_at, properties)
        return self._object("POST", "/v1/events", _body(item), auth=True)

    def track_many(self, events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """Record up to 1,000 events in one all-or-nothing request. Each is a mapping with
        ``external_id``, ``name`` and optionally ``id``, ``occurred_at``, ``properties``."""
        items = [
            self._event(
                event["external_id"],
                event["name"],
                event.get("id"),
                event.get("occurred_at"),
                event.get("properties", {}),
            )
            for event in events
        ]
        return self._object("POST", "/v1/events", _body({"events": items}), auth=True)

    # -- customers --------------------------------------------------------------------------

    def update_customer(self, external_id: str, **fields: Any) -> dict[str, Any]:
        """``PATCH /v1/customers/{external_id}``: the fields given change; ``attributes``
        merge (a key set to None is removed); ``tier=None`` derives the tier again."""
        return self._object(
            "PATCH", f"/v1/customers/{_segment(external_id)}", _body(fields), auth=True
        )

    # -- suppressions -----------------------------------------------------------------------

    def list_suppressions(
        self, *, reason: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> list[dict[str, Any]]:
        """Suppressed addresses, newest first; ``reason`` filters (``unsubscribe``, ``bounce``…).
        One page: :attr:`next_cursor` is where the next starts (None: this was the last)."""
        query: dict[str, Any] = {"limit": limit}
        if reason is not None:
            query["reason"] = reason
        if cursor is not None:
            query["cursor"] = cursor
        return self._list("GET", "/v1/suppressions", auth=True, params=query)

    def suppress(
        self, email: str, *, reason: str = "manual", source: str = "api"
    ) -> dict[str, Any]:
        """Stop mailing ``email`` in every journey; an address already suppressed keeps its
        entry, which is returned."""
        body = _body({"email": email, "reason": reason, "source": source})
        return self._object("POST", "/v1/suppressions", body, auth=True)

    def unsuppress(self, email: str) -> bool:
        """Lift a suppression: True if this call lifted it, False if the address was not (or,
        after a retried call, no longer) suppressed."""
        try:
            self._call("DELETE", f"/v1/suppressions/{_segment(email)}", auth=True)
        except StepmailApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- CSM tasks --------------------------------------------------------------------------

    def list_tasks(
        self, *, status: TaskStatus = "open", limit: int = 100, cursor: str | None = None
    ) -> list[dict[str, Any]]:
        """CSM tasks, soonest due first; one page (see :attr:`next_cursor`)."""
        query: dict[str, Any] = {"status": status, "limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        return self._list("GET", "/v1/tasks", auth=True, params=query)

    def close_task(self, task_id: int) -> dict[str, Any]:
        """Close a task; closing a closed one changes nothing and returns it."""
        return self._object("POST", f"/v1/tasks/{int(task_id)}/close", auth=True)

    # -- plumbing ---------------------------------------------------------------------------

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

    def _event(
        self,
        external_id: str,
        name: str,
        event_id: str | None,
        occurred_at: datetime | str | None,
        properties: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Without an ``id`` the server keys an event on its name, time and properties; the
        time is filled in here so that a retried request carries the same key."""
        item: dict[str, Any] = {"external_id": external_id, "name": name}
        item["properties"] = dict(properties)
        if event_id is not None:
            item["id"] = event_id
        if occurred_at is None and event_id is None:
            occurred_at = datetime.fromtimestamp(self._clock(), UTC)
        if occurred_at is not None:
            item["occurred_at"] = occurred_at
        return item

    def _object(
        self, method: str, path: str, body: bytes | None = None, **kw: Any
    ) -> dict[str, Any]:
        answer = self._call(method, path, body, **kw)
        if not isinstance(answer, dict):
            raise StepmailClientError(f"{method} {path}: expected a JSON object, got {answer!r}")
        return answer

    def _list(self, method: str, path: str, **kw: Any) -> list[dict[str, Any]]:
        """The items of one page (``{"items": [...], "next_cursor": ...}``); the page's cursor
        is kept in :attr:`next_cursor`."""
        answer = self._call(method, path, **kw)
        items = answer.get("items") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise StepmailClientError(f"{method} {path}: expected a page of items, got {answer!r}")
        cursor = answer.get("next_cursor")
        self.next_cursor = cursor if isinstance(cursor, str) else None
        return items

    def _call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        auth: bool = False,
        params: Mapping[str, Any] | None = None,
        sign: Callable[[], dict[str, str]] | None = None,
    ) -> Any:
        """One call, tried again per the retry policy; the JSON answer, or None for 204."""
        for retry in range(self._retry.attempts):
            headers = self._headers(body, auth) | (sign() if sign else {})
            last = retry == self._retry.attempts - 1
            try:
                response = self._http.request(
                    method, self._base + path, content=body, headers=headers, params=params
                )
            except httpx.TransportError as exc:
                if last:
                    raise StepmailConnectionError(f"{method} {path}: {exc}") from exc
                self._sleep(self._retry.wait(retry, self._draw()) or 0.0)
                continue
            if response.status_code < 400:
                return None if response.status_code == 204 else response.json()
            wait = None
            if response.status_code in RETRY_STATUSES and not last:
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                wait = self._retry.wait(retry, self._draw(), retry_after)
            if wait is None:
                raise StepmailApiError(response.status_code, response.text)
            self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _headers(self, body: bytes | None, auth: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            if not self._api_key:
                raise StepmailClientError("this call needs api_key (STEPMAIL_API_KEY)")
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers


def _segment(value: str) -> str:
    """A path segment: ``/``, ``?`` and ``#`` in an id or address stay part of it."""
    return quote(value, safe="")


def _body(value: Mapping[str, Any]) -> bytes:
    """The JSON bytes sent (and signed): UTF-8, datetimes as ISO 8601, Decimals as text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_jsonable).encode()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
