"""What ``stepmail check`` finds in a condition before a send does: a name conditions do not
have, a usage question that does not exist or is asked wrongly, an uncatalogued event, a tier
or health band that is no such thing, each with the closest correct spelling.

A condition compiles whatever names it uses; only evaluating it finds ``usage.seeen`` wrong,
at send time, for a customer, as a failed send. So the syntax tree is walked here against the
names :func:`orchestrator.journeys.decide.condition_context` and
:func:`orchestrator.usage.facts.usage_context` provide (tests keep the lists equal).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from inspect import Parameter, Signature
from typing import Any

from jinja2 import nodes

from orchestrator.customers.facts import CustomerFacts
from orchestrator.errors import ConditionError
from orchestrator.journeys.conditions import known_filters, known_tests, parse_condition
from orchestrator.journeys.durations import parse_duration
from orchestrator.journeys.model import ALL_TIERS
from orchestrator.journeys.yaml_files import did_you_mean

CONDITION_NAMES = frozenset(
    {
        "customer",
        "tier",
        "plan",
        "attributes",
        "days_since_signup",
        "days_since_enrollment",
        "usage",
        "health",
    }
)
CUSTOMER_FIELDS = frozenset(
    {f.name for f in fields(CustomerFacts) if f.name != "public_id"} | {"language"}
)
HEALTH_FIELDS = frozenset({"score", "band"})
# Constants Jinja knows whatever the context: they parse as names in some spellings.
_CONSTANTS = frozenset({"true", "false", "none", "True", "False", "None"})


def _question(*params: str, optional: tuple[str, ...] = ()) -> Signature:
    def parameter(name: str, default: Any) -> Parameter:
        return Parameter(name, Parameter.POSITIONAL_OR_KEYWORD, default=default)

    return Signature(
        [parameter(name, Parameter.empty) for name in params]
        + [parameter(name, None) for name in optional]
    )


# The questions of orchestrator.usage.facts.UsageFacts, as conditions call them.
USAGE_QUESTIONS: Mapping[str, Signature] = {
    "count": _question("name", optional=("within",)),
    "seen": _question("name", optional=("within",)),
    "first": _question("name"),
    "last": _question("name"),
    "days_since": _question("name"),
    "property": _question("name", "key", optional=("default",)),
}
_TEXT_ARGUMENTS = frozenset({"name", "key", "within"})


@dataclass(frozen=True)
class ConditionVocabulary:
    """What a condition may name beyond the fixed names: the catalogued events and their
    properties (None: no catalogue, names unchecked) and the health bands (None: no score)."""

    events: Mapping[str, frozenset[str]] | None = None
    bands: frozenset[str] | None = None


def condition_problems(source: str, vocabulary: ConditionVocabulary) -> list[str]:
    """Every problem of one condition, in plain words; empty when it is sound."""
    try:
        tree = parse_condition(source)
    except ConditionError as exc:
        return [str(exc)]
    return list(dict.fromkeys(_Walker(vocabulary).problems(tree)))


class _Walker:
    def __init__(self, vocabulary: ConditionVocabulary) -> None:
        self.vocabulary = vocabulary

    def problems(self, node: nodes.Node) -> Iterator[str]:
        if isinstance(node, nodes.Call) and _is_usage(node.node):
            yield from self._usage_call(node)
            return
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            yield from self._attribute(node.node.name, node.attr)
            if node.node.name not in ("usage", "health", "customer"):
                yield from self.problems(node.node)
            return
        if isinstance(node, nodes.Name) and node.ctx == "load":
            if node.name not in CONDITION_NAMES | _CONSTANTS:
                yield (
                    f"{node.name!r} is not a name conditions know"
                    + did_you_mean(node.name, CONDITION_NAMES)
                    + f" (they know {', '.join(sorted(CONDITION_NAMES))})"
                )
        elif isinstance(node, nodes.Filter) and node.name not in known_filters():
            yield f"no filter {node.name!r}" + did_you_mean(node.name, known_filters())
        elif isinstance(node, nodes.Test) and node.name not in known_tests():
            yield f"no test {node.name!r}" + did_you_mean(node.name, known_tests())
        elif isinstance(node, nodes.Compare):
            yield from self._compared(node)
        for child in node.iter_child_nodes():
            yield from self.problems(child)

    def _attribute(self, name: str, attr: str) -> Iterator[str]:
        if name == "usage":
            if attr in USAGE_QUESTIONS:
                yield f"usage.{attr} is a question: ask it as usage.{attr}('event_name')"
            else:
                yield _no_usage_question(attr)
        elif name == "health" and attr not in HEALTH_FIELDS:
            yield (
                f"health.{attr} does not exist"
                + did_you_mean(attr, HEALTH_FIELDS, prefix="health.")
                + " (health.score, health.band)"
            )
        elif name == "customer" and attr not in CUSTOMER_FIELDS:
            yield f"customer.{attr} does not exist" + did_you_mean(
                attr, CUSTOMER_FIELDS, prefix="customer."
            )

    def _usage_call(self, call: nodes.Call) -> Iterator[str]:
        assert isinstance(call.node, nodes.Getattr)
        method = call.node.attr
        signature = USAGE_QUESTIONS.get(method)
        if signature is None:
            yield _no_usage_question(method)
        elif call.dyn_args is not None or call.dyn_kwargs is not None:
            yield f"usage.{method}: write its arguments out (no * or **)"
        else:
            try:
                bound = signature.bind(*call.args, **{k.key: k.value for k in call.kwargs})
            except TypeError as exc:
                yield f"usage.{method}{_shown(signature)}: {exc}"
            else:
                yield from self._usage_arguments(method, bound.arguments)
        for argument in [*call.args, *(k.value for k in call.kwargs)]:
            if isinstance(argument, nodes.Name) and argument.name not in CONDITION_NAMES:
                yield (
                    f"usage.{method}({argument.name}): write the name in quotes, "
                    f"usage.{method}('{argument.name}')"
                )
            else:
                yield from self.problems(argument)

    def _usage_arguments(self, method: str, arguments: Mapping[str, Any]) -> Iterator[str]:
        for name, value in arguments.items():
            if not isinstance(value, nodes.Const):
                continue  # a computed value: only a send can tell
            if name in _TEXT_ARGUMENTS and not isinstance(value.value, str):
                yield f"usage.{method}: {name} must be text in quotes, not {value.value!r}"
            elif name == "within":
                try:
                    parse_duration(value.value)
                except ValueError as exc:
                    yield f"usage.{method}: within={value.value!r}: {exc}"
        event = arguments.get("name")
        if isinstance(event, nodes.Const) and isinstance(event.value, str):
            yield from self._event(method, event.value, arguments.get("key"))

    def _event(self, method: str, event: str, key: object) -> Iterator[str]:
        events = self.vocabulary.events
        if events is None:
            return
        if event not in events:
            yield f"usage.{method}({event!r}): {uncatalogued(event, events)}"
        elif isinstance(key, nodes.Const) and isinstance(key.value, str):
            known = events[event]
            if key.value not in known:
                yield (
                    f"usage.{method}({event!r}, {key.value!r}): the catalogue gives {event!r} "
                    f"no property {key.value!r}" + did_you_mean(key.value, known)
                )

    def _compared(self, node: nodes.Compare) -> Iterator[str]:
        operands = [node.expr, *(op.expr for op in node.ops)]
        for subject in operands:
            allowed = self._allowed_values(subject)
            if allowed is None:
                continue
            what, values = allowed
            for other in operands:
                for literal in _literals(other):
                    if literal not in values:
                        yield (
                            f"{literal!r} is not a {what}"
                            + did_you_mean(literal, values)
                            + f" ({', '.join(sorted(values))})"
                        )

    def _allowed_values(self, node: nodes.Node) -> tuple[str, frozenset[str]] | None:
        if _is_name(node, "tier") or _is_attribute(node, "customer", "tier"):
            return "tier", frozenset(ALL_TIERS)
        if _is_attribute(node, "health", "band") and self.vocabulary.bands is not None:
            return "health band", self.vocabulary.bands
        return None


def uncatalogued(event: str, events: Mapping[str, object]) -> str:
    """The message for an event name the catalogue does not hold."""
    return f"{event!r} is not in the event catalogue" + did_you_mean(event, events)


def _no_usage_question(method: str) -> str:
    return (
        f"usage.{method} is not a usage question"
        + did_you_mean(method, USAGE_QUESTIONS, prefix="usage.")
        + f" (usage.{', usage.'.join(USAGE_QUESTIONS)})"
    )


def _shown(signature: Signature) -> str:
    return str(signature).replace("=None", "=…")


def _is_usage(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Getattr) and _is_name(node.node, "usage")


def _is_name(node: nodes.Node, name: str) -> bool:
    return isinstance(node, nodes.Name) and node.name == name


def _is_attribute(node: nodes.Node, name: str, attr: str) -> bool:
    return isinstance(node, nodes.Getattr) and node.attr == attr and _is_name(node.node, name)


def _literals(node: nodes.Node) -> list[str]:
    """The text constants a comparison holds: ``'high'`` or ``['high', 'low']``."""
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, nodes.List | nodes.Tuple):
        return [
            item.value
            for item in node.items
            if isinstance(item, nodes.Const) and isinstance(item.value, str)
        ]
    return []


def usage_signatures_of(cls: type) -> dict[str, Signature]:
    """The public questions of a class as conditions call them (for tests: ``UsageFacts``)."""
    found = {}
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_"):
            signature = inspect.signature(member)
            parameters = [p for p in signature.parameters.values() if p.name != "self"]
            found[name] = signature.replace(
                parameters=[p.replace(annotation=Parameter.empty) for p in parameters],
                return_annotation=Signature.empty,
            )
    return found
