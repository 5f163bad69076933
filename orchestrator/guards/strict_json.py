"""Strict JSON for every request body: what one database stores, the other stores too.

Python's ``json`` accepts what PostgreSQL and our own serialisers refuse later, after work is
done: ``NaN`` and ``Infinity`` (and ``1e400``, read as infinity), lone UTF-16 surrogates
(``"\\ud800"``, which no UTF-8 encoder writes), NUL characters (PostgreSQL text cannot hold
them; SQLite can, so the two databases would disagree) and integers past 64 bits. Nesting is
bounded too: ``json`` raises RecursionError near depth 1,000, and a free-form ``attributes``
object has no business being 3,000 levels deep. Each problem is named by its place in the
body (``["body", "attributes", "s"]``), so a caller knows which field to fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.errors import InvalidJson, InvalidRequest
from orchestrator.guards.bounds import DB_INT_MAX

MAX_JSON_DEPTH = 32  # objects and arrays inside one another, the body itself counting as one

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def parse_json(body: bytes, root: Loc = ("body",)) -> Any:
    """The body's JSON value, or InvalidJson naming the first place that breaks a rule."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise _invalid("json_too_deep", root, _too_deep()) from None
    except ValueError as exc:  # includes UnicodeDecodeError and over-long integer literals
        raise _invalid("json_invalid", root, f"body is not valid JSON: {exc}") from None
    for loc, problem, kind in _problems(value, root):
        raise _invalid(kind, loc, problem)
    return value


def _problems(value: Any, root: Loc) -> Iterator[tuple[Loc, str, str]]:
    """Depth first, without recursion: (where, what is wrong, error type) for each fault.
    Only containers go on the stack, so a long array of numbers costs no extra tuples."""
    stack: list[tuple[Any, Loc, int]] = [(value, root, 1)]
    while stack:
        item, loc, depth = stack.pop()
        if isinstance(item, dict | list) and depth > MAX_JSON_DEPTH:
            yield loc, _too_deep(), "json_too_deep"
            continue
        if isinstance(item, dict):
            for key, child in item.items():
                key_problem = text_problem(key)
                if key_problem:
                    yield (*loc, _printable(key)), f"key {key_problem}", "string_unstorable"
                    continue
                if isinstance(child, dict | list):
                    stack.append((child, (*loc, key), depth + 1))
                elif problem := _scalar_problem(child):
                    yield (*loc, key), *problem
        elif isinstance(item, list):
            for index, child in enumerate(item):
                if isinstance(child, dict | list):
                    stack.append((child, (*loc, index), depth + 1))
                elif problem := _scalar_problem(child):
                    yield (*loc, index), *problem
        elif problem := _scalar_problem(item):
            yield loc, *problem


def _scalar_problem(item: Any) -> tuple[str, str] | None:
    if isinstance(item, str):
        problem = text_problem(item)
        return (f"value {problem}", "string_unstorable") if problem else None
    if isinstance(item, float) and not math.isfinite(item):
        return "must be a finite number (no NaN or Infinity)", "finite_number"
    if isinstance(item, int) and not isinstance(item, bool) and abs(item) > DB_INT_MAX:
        return "integer is outside the 64-bit range", "int_too_large"
    return None


def text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone UTF-16 surrogate (not valid Unicode text)"
    return None


def _printable(key: str) -> str:
    """A key as it may appear in an answer: a lone surrogate cannot be written as UTF-8."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def _too_deep() -> str:
    return f"nested deeper than {MAX_JSON_DEPTH} levels"


def _invalid(kind: str, loc: Loc, message: str) -> InvalidJson:
    return InvalidJson([{"type": kind, "loc": list(loc), "msg": message}])


def parse_model(model: type[M], body: bytes, status: int = 422) -> M:
    """A raw body (read by a route that had to verify it first) as ``model``, with the same
    rules and the same 422 as a body FastAPI parses: InvalidRequest naming each field."""
    try:
        data = parse_json(body)
    except InvalidJson as exc:
        raise InvalidRequest(exc.errors, status) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(field_errors(exc), status) from None


def field_errors(exc: ValidationError, root: tuple[str, ...] = ("body",)) -> list[Any]:
    """Pydantic's errors with ``loc`` starting at ``root``, without echoing the input."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return [{**error, "loc": [*root, *error["loc"]]} for error in errors]
