"""The route class every Stepmail router uses: hostile input is refused before a route runs.

- JSON bodies FastAPI parses for a route go through
  :func:`~orchestrator.guards.strict_json.parse_json` (depth, NaN/Infinity, lone surrogates,
  NUL, 64-bit integers), so a body a route declares gets the same rules as the bodies hooks
  parse themselves.
- A method the path does not take is a 405 whose ``Allow`` lists every method the path
  takes (across its routes).
- Path and query parameters holding a NUL character are refused: PostgreSQL cannot compare
  or store them (SQLite can), and both databases must answer alike.

Each refusal is a 422 in FastAPI's shape, ``{"detail": [{"type", "loc", "msg"}]}``, with the
field in ``loc``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from orchestrator.errors import InvalidJson, InvalidRequest
from orchestrator.guards.strict_json import parse_json, text_problem

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def invalid_input(errors: list[dict[str, Any]], status: int = 422) -> HTTPException:
    """The refusal of a body FastAPI is parsing for a route: an HTTPException, the one kind
    FastAPI re-raises from body parsing untouched (any other becomes a bare 400), in the shape
    :class:`~orchestrator.errors.InvalidRequest` answers with everywhere else."""
    return HTTPException(status_code=status, detail=errors)


class StrictJsonRequest(Request):
    """A request whose ``json()`` is :func:`parse_json`; refusals are 422 naming the field."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = parse_json(await self.body())
            except InvalidJson as exc:
                raise invalid_input(exc.errors) from None
        return self._json


class StrictRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            errors = parameter_problems(request)
            if errors:
                raise InvalidRequest(errors)
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A method this route does not take: 405 whose ``Allow`` names every method of the
        *path* (RFC 9110), not only this route's -- ``/unsubscribe/{token}`` is a GET route and
        a POST route, and the router hands a 405 to whichever it met first."""
        if self.methods and scope["method"] not in self.methods:
            routes = getattr(scope.get("router"), "routes", [])
            allowed = set(self.methods) | {
                method
                for method in _METHODS
                for route in routes
                if route.matches({**scope, "method": method})[0] is Match.FULL
            }
            answer = JSONResponse(
                {"detail": "Method Not Allowed"}, 405, headers={"Allow": ", ".join(sorted(allowed))}
            )
            await answer(scope, receive, send)
            return
        await super().handle(scope, receive, send)


def parameter_problems(request: Request) -> list[dict[str, Any]]:
    places = [("path", request.path_params.items()), ("query", request.query_params.multi_items())]
    return [
        {"type": "string_unstorable", "loc": [where, name], "msg": f"value {problem}"}
        for where, items in places
        for name, value in items
        if isinstance(value, str) and (problem := text_problem(value))
    ]
