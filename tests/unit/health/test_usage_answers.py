"""The stage rules' usage questions the health inputs already answer (health/inputs.py
``usage_answers``): a component's own count over its own window, whether that count is not
zero, and whether an adoption feature was ever used; any other question is left to be read."""

from __future__ import annotations

from typing import Any

from orchestrator.health.inputs import usage_answers
from tests.unit.health.test_score import DEFINITION

COUNT = ("count", "login", "14d")
ANY = ("seen", "login", "14d")
ADOPTED = ("seen", "workflow_created", None)
TICKETS = ("count", "support_ticket_opened", "30d")
LEFT = [
    ("count", "login", "7d"),  # another window than the component's
    ("seen", "workflow_created", "30d"),  # adoption is "ever", not a window
    ("seen", "nps_submitted", None),  # a latest component answers no question
    ("weeks_with", "report_created", 4),
    ("count", "unknown", "14d"),
]


def test_each_kind_of_question_is_answered_from_the_inputs_and_the_rest_left() -> None:
    inputs: dict[int, dict[str, Any]] = {
        1: {"logins": 3, "adoption": {"workflow_created", "report_created"}},
        2: {"support_tickets": 2, "adoption": {"report_created"}},
        3: {},
    }
    answered = usage_answers(DEFINITION, inputs, [COUNT, ANY, ADOPTED, TICKETS, *LEFT])
    assert answered == {
        1: {COUNT: 3, ANY: True, ADOPTED: True, TICKETS: 0},
        2: {COUNT: 0, ANY: False, ADOPTED: False, TICKETS: 2},
        3: {COUNT: 0, ANY: False, ADOPTED: False, TICKETS: 0},
    }
    assert usage_answers(DEFINITION, inputs, LEFT) == {}
