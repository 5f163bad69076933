"""YAML files people write by hand (journeys, the health score): parsed with their node tree
kept, so a validation error can name the file, the line and the field."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.errors import JourneyError


def read_mapping(path: Path, what: str) -> tuple[yaml.Node | None, dict[str, Any]]:
    """The document's node tree and its data; JourneyError when it is unreadable, not YAML,
    or not a mapping (``what`` names the kind of file in that message)."""
    return parse_mapping(read_text(path), path, what)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JourneyError(str(path), None, None, f"cannot read: {exc}") from None


def parse_mapping(text: str, path: Path, what: str) -> tuple[yaml.Node | None, dict[str, Any]]:
    """:func:`read_mapping` of a text already read (``path`` names it in errors)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise JourneyError(str(path), line, None, f"invalid YAML: {exc.problem}") from None
    if not isinstance(data, dict):
        raise JourneyError(str(path), 1, None, f"{what} must be a mapping of fields")
    return root, data


def validation_error(
    path: Path,
    root: yaml.Node | None,
    exc: ValidationError,
    union_tags: Collection[str] = (),
) -> JourneyError:
    """The first problem pydantic found, at its line. ``union_tags`` are the discriminator
    names pydantic adds to a union member's location, which are not in the file."""
    error = exc.errors()[0]
    raw = error["loc"]
    loc = tuple(
        part
        for i, part in enumerate(raw)
        if part != "function-after"
        and not (i and isinstance(raw[i - 1], int) and part in union_tags)
    )
    message = error["msg"].removeprefix("Value error, ")
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    field = ".".join(str(part) for part in loc) or None
    return JourneyError(str(path), line_of(root, loc), field, message)


def line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """Follow a pydantic location through the YAML node tree to the line that holds it."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                return value  # type: ignore[no-any-return]
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None
