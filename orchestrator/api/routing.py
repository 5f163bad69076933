"""The route class every Stepmail router uses: hostile input is refused before a route runs.

- JSON bodies FastAPI parses for a route go through
  :func:`~orchestrator.guards.strict_json.parse_json` (depth, NaN/Infinity, lone surrogates,
  NUL, 64-bit integers), so a body a route declares gets the same rules as the bodies hooks
  parse themselves.
- Path and query parameters holding a NUL character are refused: PostgreSQL cannot compare
  or store them (SQLite can), and both databases must answer alike.

Each refusal is a 422 in FastAPI's shape, ``{"detail": [{"type", "loc", "msg"}]}``, with the
field in ``loc``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from orchestrator.guards.strict_json import InvalidJson, parse_json, text_problem

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def invalid_input(errors: list[dict[str, Any]], status: int = 422) -> HTTPException:
    """An HTTPException (FastAPI re-raises these from body parsing untouched) in the shape of
    a validation error."""
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
            errors = _parameter_problems(request)
            if errors:
                raise invalid_input(errors)
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler


def _parameter_problems(request: Request) -> list[dict[str, Any]]:
    places = [("path", request.path_params.items()), ("query", request.query_params.multi_items())]
    return [
        {"type": "string_unstorable", "loc": [where, name], "msg": f"value {problem}"}
        for where, items in places
        for name, value in items
        if isinstance(value, str) and (problem := text_problem(value))
    ]


def validate_body(model: type[M], body: bytes, status: int = 422) -> M:
    """A raw body (read by a route that had to verify it first) as ``model``, with the same
    rules and the same 422 as a body FastAPI parses."""
    try:
        data = parse_json(body)
    except InvalidJson as exc:
        raise invalid_input(exc.errors, status) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(validation_errors(exc), status) from None


def validation_errors(exc: ValidationError, root: tuple[str, ...] = ("body",)) -> list[Any]:
    """Pydantic's errors with ``loc`` starting at ``root``, without echoing the input."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return [{**error, "loc": [*root, *error["loc"]]} for error in errors]
