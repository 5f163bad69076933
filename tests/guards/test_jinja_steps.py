"""A render's work is counted against a budget of steps: nested loops, macros calling
themselves, includes in loops and walks over large values stop at it, deterministically and
at once, instead of running for minutes (each test lowers the budget so it is quick)."""

from __future__ import annotations

import pytest
from jinja2 import DictLoader
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import ConditionError
from orchestrator.guards import jinja_steps
from orchestrator.guards.jinja_operators import BoundedOperators
from orchestrator.guards.jinja_steps import step_budget
from orchestrator.journeys.conditions import evaluate_condition


class _Sandbox(BoundedOperators, ImmutableSandboxedEnvironment):
    pass


STEPS = 20_000


@pytest.fixture(autouse=True)
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jinja_steps, "MAX_STEPS", STEPS)


def _render(source: str, **templates: str) -> str:
    env = _Sandbox(loader=DictLoader({"main": source, **templates}))
    return env.get_template("main").render(big=list(range(5000)), text="x" * 50_000)


@pytest.mark.parametrize(
    "source",
    [
        # 10^8 turns: 27 s a render before
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        # 2^40 calls
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        # a recursive loop's every depth counts
        "{% for x in [[0] * 300] * 300 recursive %}{% if x is iterable %}{{ loop(x) }}"
        "{% endif %}{% endfor %}",
        # a loop over a filter's generator, counted a turn at a time
        "{% for i in range(100000)|select %}{% endfor %}",
        # a caller() called in a loop
        "{% macro m() %}{% for i in range(300) %}{{ caller() }}{% endfor %}{% endmacro %}"
        "{% call m() %}{% for i in range(300) %}{% endfor %}{% endcall %}",
        # the same template included in a loop: its whole code charged each time
        "{% for i in range(100000) %}{% include 'part' %}{% endfor %}",
        # a filter walking a large list, a text method walking a large text, ``in``, slices
        "{% for i in range(1000) %}{{ big|sum }}{% endfor %}",
        "{% for i in range(1000) %}{{ text.count('y') }}{% endfor %}",
        "{% for i in range(1000) %}{{ -1 in big }}{% endfor %}",
        "{% for i in range(1000) %}{{ -1 is in big }}{% endfor %}",
        "{% for i in range(1000) %}{{ big[1:]|length }}{% endfor %}",
        # a text made again and again
        "{% for i in range(1000) %}{% set t = text ~ 'y' %}{% endfor %}",
        # a loop whose body is a large piece of markup
        "{% for i in range(1000) %}" + "<p>static</p>" * 100 + "{% endfor %}",
    ],
    ids=[
        "nested-loops",
        "macro-twice-a-level",
        "recursive-loop",
        "filtered-generator",
        "caller-in-loop",
        "include-in-loop",
        "filter-walk",
        "method-walk",
        "in",
        "in-test",
        "slice",
        "join",
        "static-body",
    ],
)
def test_work_past_the_budget_is_refused(source: str) -> None:
    with pytest.raises(SecurityError, match=f"more than {STEPS:,} steps"):
        _render(source, part="<p>" + "x" * 1000 + "</p>")


def test_under_the_budget_templates_render_as_before() -> None:
    source = (
        "{% macro item(x) %}<li>{{ x }}</li>{% endmacro %}"
        "{% for i in range(3) %}{{ item(i) }}{% endfor %}|{{ 2 in [1, 2] }}|"
        "{{ [1, 2, 3][1:]|join(',') }}|{% include 'part' %}|"
        "{% for x in [[1], 2] recursive %}{% if x is iterable %}{{ loop(x) }}{% else %}{{ x }}"
        "{% endif %}{% endfor %}"
    )
    assert _render(source, part="p") == "<li>0</li><li>1</li><li>2</li>|True|2,3|p|12"


def test_the_budget_is_one_for_the_whole_render() -> None:
    """Jinja makes a new context for an include: the budget is the render's, not a
    context's, so two includes of a template using most of it fail together."""
    part = "{% for i in range(" + str(STEPS * 6 // 10) + ") %}{% endfor %}"  # a step a turn
    assert _render("{% include 'part' %}", part=part) == ""
    with pytest.raises(SecurityError, match="steps"):
        _render("{% include 'part' %}{% include 'part' %}", part=part)


def test_the_count_is_the_same_every_time() -> None:
    """Deterministic: what a template takes does not depend on the host's speed."""
    env = _Sandbox()
    template = env.from_string("{% for i in range(50) %}{{ i }}{% endfor %}")
    left = []
    for _ in range(3):
        with step_budget():
            list(template.root_render_func(template.new_context({})))
            budget = jinja_steps.BUDGET.get()
            assert budget is not None
            left.append(budget[0])
    assert len(set(left)) == 1
    assert left[0] < STEPS


def test_code_run_outside_a_budget_is_refused() -> None:
    """No unbounded way round: a template's code called without a render's budget."""
    template = _Sandbox().from_string("{% for i in range(3) %}{{ i }}{% endfor %}")
    with pytest.raises(SecurityError, match="outside a render's step budget"):
        "".join(template.root_render_func(template.new_context({})))


def test_a_condition_past_the_budget_fails_as_a_condition() -> None:
    with pytest.raises(ConditionError, match="steps"):
        evaluate_condition("(range(100000)|list|sum) > 0", {})
    assert evaluate_condition("(range(100)|list|sum) > 0", {}) is True
