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
import re
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.errors import InvalidJson, InvalidRequest
from orchestrator.guards.bounds import DB_INT_MAX

MAX_JSON_DEPTH = 32  # objects and arrays inside one another, the body itself counting as one

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def check_storable(value: Any, root: Loc = ()) -> None:
    """InvalidJson naming the first place where ``value``, made in Python rather than parsed
    (command-line properties), breaks a rule a request body keeps: NaN, infinity, integers
    past 64 bits, NUL, lone surrogates, nesting."""
    for loc, problem, kind in _problems(value, root):
        raise _invalid(kind, loc, problem)


def parse_json(body: bytes, root: Loc = ("body",)) -> Any:
    """The body's JSON value, or InvalidJson naming the first place that breaks a rule."""
    try:
        value = json.loads(body)
    except RecursionError:  # past ~1,000 levels: named where the bound is passed, from bytes
        raise _invalid("json_too_deep", (*root, *_deep_place(body)), _too_deep()) from None
    except ValueError as exc:  # includes UnicodeDecodeError and over-long integer literals
        raise _invalid("json_invalid", root, f"body is not valid JSON: {exc}") from None
    for loc, problem, kind in _problems(value, root, check_text=not texts_are_clean(body)):
        raise _invalid(kind, loc, problem)
    return value


# What json.loads turns into a NUL (only the escape \u0000) or a lone surrogate (an escape
# \uD800-\uDFFF; bytes are decoded with "surrogatepass", so also the three-byte UTF-8-like
# form ED A0-BF xx, whose lead byte is looked for on its own).
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def texts_are_clean(body: bytes) -> bool:
    """True when no key or string of ``body`` can hold a NUL or a lone surrogate, seen from its
    bytes (~30 µs for 100 kB, against ~1 ms for checking each of a batch's 3,000 strings).
    Only for bodies json.loads reads as UTF-8 (no zero byte, so no UTF-16 or UTF-32, and no
    UTF-16 byte-order mark). A false "not clean" (``\\\\u0000`` is an escaped backslash
    followed by text; ED also begins Hangul syllables) only means every string is checked."""
    return not (
        b"\x00" in body
        or b"\xed" in body
        or body.startswith((b"\xff\xfe", b"\xfe\xff"))
        or _UNSTORABLE_ESCAPE.search(body)
    )


def _problems(value: Any, root: Loc, *, check_text: bool = True) -> Iterator[tuple[Loc, str, str]]:
    """Depth first, without recursion: (where, what is wrong, error type) for each fault.
    Only containers go on the stack, so a long array of numbers costs no extra tuples.
    ``check_text=False`` (the body's bytes showed no string can break a text rule) leaves
    keys and strings alone: the faults found, and their order, are the same. The values are
    what json.loads makes (dict, list, str, int, float, bool, None: exact types), tested by
    identity, so a batch's 3,000 strings cost a type look-up each."""
    stack: list[tuple[Any, Loc, int]] = [(value, root, 1)]
    while stack:
        item, loc, depth = stack.pop()
        kind = type(item)
        if kind is not dict and kind is not list:
            if problem := _scalar_problem(item):
                yield loc, *problem
            continue
        if depth > MAX_JSON_DEPTH:
            yield loc, _too_deep(), "json_too_deep"
            continue
        pairs: Iterable[tuple[Any, Any]] = item.items() if kind is dict else enumerate(item)
        for key, child in pairs:
            if kind is dict and check_text and (key_problem := text_problem(key)):
                yield (*loc, _printable(key)), f"key {key_problem}", "string_unstorable"
                continue
            child_kind = type(child)
            if child_kind is dict or child_kind is list:
                stack.append((child, (*loc, key), depth + 1))
            elif child_kind is str:
                if check_text and (problem := _scalar_problem(child)):
                    yield (*loc, key), *problem
            elif (
                child_kind is not bool and child is not None and (problem := _scalar_problem(child))
            ):
                yield (*loc, key), *problem


# A JSON text's tokens, as far as nesting goes: a string (kept whole, escapes and all), a
# bracket, a colon or a comma; everything else (numbers, literals, space) is skipped.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:,]')


def _deep_place(body: bytes) -> Loc:
    """Where ``body`` first nests deeper than :data:`MAX_JSON_DEPTH`, as keys and indexes,
    read from its tokens without building a value (json.loads gave up near depth 1,000);
    the place as deep as the bound, or as far as the body could be read."""
    path: list[str | int] = []
    kinds: list[bytes] = []  # b"{" or b"[" for each open container
    last_string: bytes | None = None
    for match in _TOKEN.finditer(body):
        token = match.group()
        if token in (b"{", b"["):
            if len(kinds) >= MAX_JSON_DEPTH:
                return tuple(path)
            kinds.append(token)
            path.append(0 if token == b"[" else "")
        elif token in (b"}", b"]"):
            if not kinds:
                break
            kinds.pop()
            path.pop()
        elif token == b":" and kinds and kinds[-1] == b"{" and last_string is not None:
            path[-1] = _key(last_string)
        elif token == b"," and kinds and kinds[-1] == b"[":
            path[-1] = int(path[-1]) + 1
        last_string = token if token.startswith(b'"') else None
    return tuple(path[:MAX_JSON_DEPTH])


def _key(token: bytes) -> str:
    try:
        return _printable(str(json.loads(token)))
    except ValueError:
        return "?"


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
