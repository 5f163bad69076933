"""What the OpenAPI document says a route may answer, in one place, so it stays true.

Routes that read their raw body (the hooks verify a signature over it; ``/v1/events`` takes
one event or a batch) describe it with :func:`body_schema`: the model's JSON Schema with its
nested models inlined, so no ``$ref`` points at a component FastAPI never registered. Error
answers are described by :func:`answers`: ``{"detail": "…"}`` (:class:`Problem`) for 401,
404, 413 and 503, ``{"detail": [{"type", "loc", "msg"}]}`` (:class:`InvalidInput`) for a bad
field, as :mod:`orchestrator.api.routing` and FastAPI send them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Responses = dict[int | str, dict[str, Any]]


class Problem(BaseModel):
    """Why the request was refused, in words."""

    detail: str


class FieldError(BaseModel):
    type: str = Field(description="What kind of problem, e.g. missing, string_unstorable")
    loc: list[str | int] = Field(description='Where: e.g. ["body", "attributes", "s"]')
    msg: str


class InvalidInput(BaseModel):
    """Each field at fault; nothing of the request was stored."""

    detail: list[FieldError]


_DESCRIPTIONS = {
    400: "The body is not what the route takes; `loc` names the place",
    401: "Missing or wrong bearer token (STEPMAIL_API_KEY)",
    404: "Not found",
    413: "The body is over the route's limit (STEPMAIL_MAX_BODY_BYTES, _MAX_BATCH_BODY_BYTES)",
    422: "A field is invalid: `loc` names it, and nothing was stored",
    503: "Not configured",
}
_MODELS: dict[int, type[BaseModel]] = {400: InvalidInput, 422: InvalidInput}
HTML = {"text/html": {"schema": {"type": "string"}}}


def answers(*codes: int, **described: str) -> Responses:
    """Error answers for ``responses=``: ``answers(401, 413, s404="Unknown customer")``."""
    result: Responses = {}
    for code in codes:
        description = described.get(f"s{code}", _DESCRIPTIONS[code])
        result[code] = {"model": _MODELS.get(code, Problem), "description": description}
    return result


def json_answers_beside_pages(*codes: int) -> Responses:
    """Error answers for a route whose success is a page: FastAPI files a ``model`` under the
    route's own media type (text/html), so these name their JSON schema themselves. (The
    components exist because JSON routes use :func:`answers`; tests check every $ref.)"""
    result: Responses = {}
    for code in codes:
        schema = {"$ref": f"#/components/schemas/{_MODELS.get(code, Problem).__name__}"}
        content = {"application/json": {"schema": schema}}
        result[code] = {"description": _DESCRIPTIONS[code], "content": content}
    return result


def html_answers(**described: str) -> Responses:
    """Statuses a page answers with a page (the unsubscribe link's error pages)."""
    return {
        int(code[1:]): {"description": text, "content": HTML} for code, text in described.items()
    }


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON Schema, self-contained (nested models inlined, no ``$defs``)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    inlined: dict[str, Any] = _inline(schema, definitions)
    return inlined


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its JSON body itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        reference = node.get("$ref", "")
        if reference.startswith("#/$defs/"):
            target = definitions[reference.removeprefix("#/$defs/")]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_inline(target, definitions), **_inline(rest, definitions)}
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node
