"""Reading a console form (``application/x-www-form-urlencoded``) strictly.

The body is already capped by :mod:`orchestrator.api.body_limit`. Text that is not UTF-8, or
that holds NUL (PostgreSQL cannot store it), is refused with the field named; so is a value
longer than its field allows. A form never reaches a service with anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from orchestrator.errors import InvalidField

MAX_FIELDS = 50


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
    try:
        text = body.decode("utf-8")
        fields = parse_qs(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise InvalidField("form", "is not UTF-8") from None
    except ValueError:
        raise InvalidField("form", f"has more than {MAX_FIELDS} fields") from None
    for name, values in fields.items():
        if "\x00" in name or any("\x00" in value for value in values):
            raise InvalidField(name.replace("\x00", "?"), "must not contain NUL")
    return Form(fields)
