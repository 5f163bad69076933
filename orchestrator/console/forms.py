"""Reading a console form (``application/x-www-form-urlencoded``) strictly.

The body is already capped by :mod:`orchestrator.api.body_limit`. Text that is not UTF-8, or
that holds NUL (PostgreSQL cannot store it), is refused with the field named; so is a value
longer than its field allows. A form never reaches a service with anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from orchestrator.errors import InvalidField

MAX_FIELDS = 50
MAX_NAME_SHOWN = 100


@dataclass(frozen=True)
class Form:
    fields: dict[str, list[str]]

    def get(self, name: str, *, max_length: int = 320, default: str = "") -> str:
        values = self.fields.get(name)
        if not values:
            return default
        value = values[0]
        if len(value) > max_length:
            raise InvalidField(name, f"at most {max_length} characters")
        return value

    def required(self, name: str, *, max_length: int = 320) -> str:
        value = self.get(name, max_length=max_length).strip()
        if not value:
            raise InvalidField(name, "is required")
        return value


def parse_form(body: bytes) -> Form:
    """The form's fields; the first field that is not UTF-8 (raw or percent-encoded, an
    encoded surrogate included) or holds NUL is refused by its name."""
    text = body.decode("utf-8", "surrogateescape")  # bytes that are not UTF-8 kept apart
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="surrogateescape",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:
        raise InvalidField("form", f"has more than {MAX_FIELDS} fields") from None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        if _NOT_UTF8.search(name) or _NOT_UTF8.search(value):
            raise InvalidField(_shown(name), "is not UTF-8")
        if "\x00" in name or "\x00" in value:
            raise InvalidField(_shown(name), "must not contain NUL")
        fields.setdefault(name, []).append(value)
    return Form(fields)


# What ``surrogateescape`` makes of a byte that is not part of UTF-8: valid UTF-8 never
# decodes to these code points.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def _shown(name: str) -> str:
    """A field's name fit for an error message: what could not be read as ``?``."""
    return _NOT_UTF8.sub("?", name).replace("\x00", "?")[:MAX_NAME_SHOWN]
