"""The fields a customer record accepts, shared by the signup hook, the customer patch and
``stepmail enroll``: what may reach a mail header, a link or the money column."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from orchestrator.guards.links import check_link_attributes
from orchestrator.guards.mail_headers import (
    ONE_LINE_PATTERN,
    check_plain_address,
    refuse_unsafe_characters,
)

LOCALE_PATTERN = r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"  # ja, en, en-US, zh_Hant
Locale = Annotated[str, Field(pattern=LOCALE_PATTERN, max_length=35)]
# Text that can reach a mail header (To, From, Reply-To, a subject): one line, no control
# characters, NUL or Unicode line breaks. The mail layer would neutralise them anyway
# (orchestrator/guards/mail_headers.py); refusing them here names the field that was wrong.
# The schema states the same rule as a pattern, so a generated client refuses what we refuse.


class _OneLine:
    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            refuse_unsafe_characters, handler(source)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        document = handler(schema)
        document.setdefault("pattern", ONE_LINE_PATTERN)
        return document


OneLine = _OneLine()
SingleLine = Annotated[str, Field(max_length=200), OneLine]


def _no_display_name(value: object) -> object:
    """``Evil <a@b.jp>`` is an address *with* a name: the validator would keep ``a@b.jp``
    silently; the field holds a bare address, so the form is refused, not rewritten."""
    if isinstance(value, str) and any(c in value for c in '<>"'):
        raise ValueError("must be a bare address (local@domain), without a name or <>")
    return value


# An address a mail can be sent to: what the mail layer accepts (an ASCII local part, a
# plain or IDN domain; orchestrator/guards/mail_headers.addr_spec) is what the door accepts,
# so no customer is enrolled whose every step would end ``failed: address``.
Address = Annotated[
    EmailStr, BeforeValidator(_no_display_name), AfterValidator(check_plain_address)
]
# Free JSON, but a top-level key ending in _url is a link a template may put in an href, and
# at most MAX_ATTRIBUTES_BYTES of it: what one request's body could carry, which a patch's
# merge must not grow past either (every mail to the customer reads them whole).
MAX_ATTRIBUTES_BYTES = 65_536


def attributes_size(attributes: dict[str, Any]) -> int:
    """Bytes of the attributes as stored (compact JSON, UTF-8)."""
    text = json.dumps(attributes, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def check_attributes_size(attributes: dict[str, Any]) -> dict[str, Any]:
    size = attributes_size(attributes)
    if size > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"{size:,} bytes of JSON; at most {MAX_ATTRIBUTES_BYTES:,}")
    return attributes


Attributes = Annotated[
    dict[str, Any], AfterValidator(check_link_attributes), AfterValidator(check_attributes_size)
]
# A yearly contract value: at most 14 digits before the point and 2 after (the database holds
# Numeric(18, 2)). The schema states the bound that pydantic's own schema leaves out.
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=16, decimal_places=2),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "exclusiveMaximum": 10**14},
                {
                    "type": "string",
                    "pattern": "[0-9]",  # looser than Decimal: text without a digit is never one
                    "description": 'a decimal number, e.g. "1200000.50"',
                },
            ]
        }
    ),
]
