"""The sample customers ``stepmail check`` renders each step for, so that every branch of a
template runs once: each tier and locale, with a CSM and without one, and with and without
each customer attribute a template reads.

A template that reads ``customer.attributes.get("csm_booking_url")`` (or ``.x``, or ``['x']``)
has two sides: the attribute set, and not. The syntax tree of every template is searched for
such reads; the "with" sample gets a value for each (a link for a ``*_url`` key, a number
when the template compares it with one, else text), the "without" sample none of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from orchestrator.guards.jinja_nesting import BoundedNesting
from orchestrator.rendering.mail_files import MailFileTooLarge, read_mail_file

TEMPLATE_SUFFIXES = (".html", ".txt")
# The host of every link a sample attribute carries: not a link an author wrote, so
# `stepmail check --links` does not fetch it.
SAMPLE_LINK_HOST = "sample.stepmail.invalid"


@dataclass(frozen=True)
class Variant:
    """One sample customer's shape besides tier and locale."""

    csm: bool
    attributes: dict[str, Any] = field(default_factory=dict)

    def label(self, tested: dict[str, Any]) -> str:
        parts = ["with a CSM" if self.csm else "no CSM"]
        if tested:
            names = ", ".join(sorted(tested))
            parts.append(f"with {names}" if self.attributes else f"without {names}")
        return ", ".join(parts)


def variants(tested: dict[str, Any]) -> list[Variant]:
    """CSM or not × the tested attributes set or not (one side when none is tested)."""
    sides: list[dict[str, Any]] = [dict(tested), {}] if tested else [{}]
    return [Variant(csm, attributes) for csm in (True, False) for attributes in sides]


def tested_attributes(templates_dir: Path) -> dict[str, Any]:
    """Every customer attribute a template reads, with a sample value for it."""
    parser = BoundedNesting()  # parsing only: nothing is rendered with it
    found: dict[str, Any] = {}
    for path in sorted(templates_dir.rglob("*")):
        if path.suffix not in TEMPLATE_SUFFIXES or not path.is_file():
            continue
        try:
            tree = parser.parse(read_mail_file(path))
            reads = list(_attribute_reads(tree))
        except (OSError, UnicodeDecodeError, MailFileTooLarge, TemplateSyntaxError):
            continue  # rendering reports it, with its line
        except RecursionError:  # thousands of chained filters or lookups: the walk recurses
            continue  # compiling it recurses as deep: rendering reports it, with its line
        for key, number in reads:
            if number is not None or key not in found:
                found[key] = _sample_value(key, number)
    return found


def template_locales(templates_dir: Path, default_locale: str) -> list[str]:
    """The languages templates are written in (``welcome.high.en.html`` → ``en``), the
    installation's default first: each is rendered."""
    locales = {default_locale, "ja", "en"}
    for path in templates_dir.rglob("*"):
        parts = path.name.split(".")
        if path.suffix in TEMPLATE_SUFFIXES and len(parts) >= 3:
            candidate = parts[-2]
            if candidate not in ("high", "low", "tech") and _looks_like_locale(candidate):
                locales.add(candidate)
    return sorted(locales, key=lambda loc: (loc != default_locale, loc))


def _looks_like_locale(text: str) -> bool:
    language = text.replace("_", "-").split("-")[0]
    return 2 <= len(language) <= 3 and language.isalpha() and language.islower()


def _attribute_reads(tree: nodes.Node) -> Iterator[tuple[str, float | None]]:
    """``(key, a number it is compared with or None)`` for each read of an attribute."""
    compared: dict[int, float] = {}
    for compare in tree.find_all(nodes.Compare):
        operands = [compare.expr, *(op.expr for op in compare.ops)]
        numbers = [
            o.value
            for o in operands
            if isinstance(o, nodes.Const) and isinstance(o.value, int | float)
        ]
        if numbers:
            for operand in operands:
                compared[id(operand)] = float(numbers[0])
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call)):
        key = _read_key(node)
        if key is not None:
            yield key, compared.get(id(node))


def _read_key(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr) and _is_attributes(node.node):
        return None if node.attr == "get" else node.attr
    if (
        isinstance(node, nodes.Getitem)
        and _is_attributes(node.node)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.arg.value
    if (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Getattr)
        and node.node.attr == "get"
        and _is_attributes(node.node.node)
        and node.args
        and isinstance(node.args[0], nodes.Const)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


def _is_attributes(node: nodes.Node) -> bool:
    """``customer.attributes``"""
    return (
        isinstance(node, nodes.Getattr)
        and node.attr == "attributes"
        and isinstance(node.node, nodes.Name)
        and node.node.name == "customer"
    )


def _sample_value(key: str, number: float | None) -> Any:
    if key.endswith("_url"):
        return f"https://{SAMPLE_LINK_HOST}/{key}"
    if number is not None:
        return int(number) + 1 if number == int(number) else number + 1
    return f"Sample {key}"
