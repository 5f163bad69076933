"""The route class of the hot hooks (``POST /hooks/signup``, ``POST /v1/events``): the endpoint
gets the request and returns its answer, without FastAPI's per-request machinery.

Both routes read and check their raw body themselves (a signature over its bytes; one event
or a batch) and run their service in the thread pool, so FastAPI has nothing to parse for
them. What it still did per request -- resolving a tree of dependencies, validating the
returned model again and encoding it through ``jsonable_encoder``, its telemetry and error
context -- was about a third of the event loop's CPU for such a request. A ``DirectRoute``
keeps everything else: the OpenAPI document (response model, answers, body schema, security;
header parameters through :func:`header_parameters`), the parameter checks of
:class:`~orchestrator.api.routing.StrictRoute` and its 405, the exception handler, the body
limit and budget (they are middleware around ``receive``).

It is strict about what it skips: an endpoint that declares anything but the request, or a
dependency other than those it knows how to run (the bearer check of ``/v1``), is refused
when the route is made, so a ``Depends`` added later cannot be silently ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response

from orchestrator.api.deps import check_api_key, require_api_key
from orchestrator.api.routing import StrictRoute, parameter_problems
from orchestrator.errors import InvalidRequest

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Check = Callable[[Request], None]

# Dependencies a direct route runs itself, each as a plain call on the request.
KNOWN_DEPENDENCIES: dict[Callable[..., Any], Check] = {require_api_key: check_api_key}


class DirectRoute(StrictRoute):
    def get_route_handler(self) -> Handler:
        endpoint: Handler = self.endpoint
        checks = [_direct_check(self.path, needed.call) for needed in self.dependant.dependencies]
        _require_request_only(self.path, endpoint, self.dependant.request_param_name)

        async def direct_handler(request: Request) -> Response:
            errors = parameter_problems(request)
            if errors:
                raise InvalidRequest(errors)
            for check in checks:
                check(request)
            return await endpoint(request)

        return direct_handler


def _direct_check(path: str, call: Callable[..., Any] | None) -> Check:
    check = KNOWN_DEPENDENCIES.get(call) if call is not None else None
    if check is None:
        raise TypeError(f"{path}: a DirectRoute cannot run the dependency {call!r}")
    return check


def _require_request_only(path: str, endpoint: Callable[..., Any], request: str | None) -> None:
    parameters = list(inspect.signature(endpoint).parameters)
    if not inspect.iscoroutinefunction(endpoint) or request is None or parameters != [request]:
        raise TypeError(
            f"{path}: a DirectRoute's endpoint is `async def f(request: Request) -> Response`"
        )


def header_parameters(**described: str) -> list[dict[str, Any]]:
    """The OpenAPI ``parameters`` of optional headers a direct route reads itself:
    ``header_parameters(x_stepmail_timestamp="Unix seconds")``."""
    return [
        {
            "name": name.replace("_", "-"),
            "in": "header",
            "required": False,
            "description": text,
            "schema": {"type": "string"},
        }
        for name, text in described.items()
    ]
