"""``*`` and ``**`` in templates and conditions stop at a bound instead of building a value
of gigabytes (or computing for minutes), at render time and at compile time, where Jinja
folds constant expressions; under the bound they give what Python gives."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import ConditionError
from orchestrator.guards.jinja_operators import MAX_ITEMS, BoundedOperators
from orchestrator.journeys.conditions import evaluate_condition


class _Sandbox(BoundedOperators, ImmutableSandboxedEnvironment):
    pass


ENV = _Sandbox()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 'ab' * 3 }}", "ababab"),
        ("{{ 3 * 'ab' }}", "ababab"),
        ("{{ [1] * 3 }}", "[1, 1, 1]"),
        ("{{ 6 * 7 }}", "42"),
        ("{{ 2 ** 10 }}", "1024"),
        ("{{ 2.5 ** 2 }}", "6.25"),
        ("{{ (-1) ** 999999999 }}", "-1"),
        ("{{ 10 ** -2 }}", "0.01"),
        (f"{{{{ ('x' * {MAX_ITEMS}) | length }}}}", str(MAX_ITEMS)),
        ("{{ 'a' ~ 'b' ~ 1 }}", "ab1"),
        ("{{ 'a' + 'b' }}|{{ [1] + [2] }}|{{ 1 + 2 }}|{{ 0.5 + 1 }}", "ab|[1, 2]|3|1.5"),
        (
            f"{{{{ (('x' * {MAX_ITEMS // 2}) ~ ('y' * {MAX_ITEMS // 2})) | length }}}}",
            str(MAX_ITEMS),
        ),
        ("{{ lipsum(2, html=False) | wordcount > 10 }}", "True"),
        (
            "{{ 'a'|center(5) }}|{{ 'ab'.center(6) }}|{{ 'a'.ljust(3) }}|{{ '5'.zfill(3) }}|"
            "{{ 'a\tb'.expandtabs(4) }}|{{ 'aXa'.replace('a', 'bb') }}|"
            "{{ 'aa'|replace('a', 'c', 1) }}|{{ 'x\ny'|indent(2) }}|{{ ['a', 'b']|join('-') }}|"
            "{{ '-'.join(['a', 'b']) }}",
            "  a  |  ab  |a  |005|a   b|bbXbb|ca|x\n  y|a-b|a-b",
        ),
        (
            "{{ '%05d' % 3 }}|{{ '%s-%s' % (1, 2) }}|{{ '%.2f' % 1 }}|{{ '%%' % () }}|"
            "{{ '{:>4}'.format(1) }}|{{ '{:{}}'.format(1, 3) }}|{{ '%03d'|format(7) }}|"
            "{{ '%(a)s' % {'a': 1} }}|{{ '{a:>3}'.format_map({'a': 1}) }}|{{ '%*d' % (3, 1) }}",
            "00003|1-2|1.00|%|   1|  1|007|1|  1|  1",
        ),
    ],
)
def test_under_the_bound_the_operators_are_python_s(source: str, expected: str) -> None:
    assert ENV.from_string(source).render() == expected


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 10 ** 9 }}",  # constant: Jinja would fold it while compiling
        "{{ n * 'x' }}",
        "{{ [0] * n }}",
        f"{{{{ 'x' * {MAX_ITEMS + 1} }}}}",
        "{{ 9 ** 999999999 }}",
        "{{ n ** n }}",
        f"{{{{ ('x' * {MAX_ITEMS}) ~ 'y' }}}}",
        f"{{{{ ('x' * {MAX_ITEMS}) + 'y' }}}}",
        f"{{{{ [0] * {MAX_ITEMS} + [1] }}}}",
        "{{ lipsum(n) }}",
        "{{ lipsum(1, max=n) }}",
        "{{ 'a'|center(n) }}",
        "{{ 'a'.ljust(n) }}",
        "{{ 'a'.rjust(n) }}",
        "{{ 'a'.zfill(n) }}",
        "{{ 'a'.center(n) }}",
        "{{ ('\t' * 1000).expandtabs(10 ** 7) }}",
        "{{ ('a' * 100000).replace('a', 'b' * 100000) }}",
        "{{ ('a' * 100000)|replace('a', 'b' * 100000) }}",
        "{{ ('a' * 10000)|replace('', 'b' * 28000) }}",
        "{{ ('a\n' * 100000)|indent('x' * 100000) }}",
        "{{ ('a\n' * 100000)|indent(100000) }}",
        "{{ ('x' * 100000).join(['a'] * 100) }}",
        "{{ (['a'] * 100)|join('x' * 100000) }}",
        # formatting widths and precisions: a gigabyte of padding each
        "{{ '%0999999999d' % 1 }}",
        "{{ '%*d' % (n, 1) }}",
        "{{ '%.*f' % (n, 1.5) }}",
        "{{ '%(a)0999999999d' % {'a': 1} }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ '{:{}}'.format(1, n) }}",
        "{{ '{0:{w}}'.format(1, w=n) }}",
        "{{ '{a:>999999999}'.format_map({'a': 1}) }}",
        "{{ '%0999999999d'|format(1) }}",
        "{{ '%*d'|format(n, 1) }}",
    ],
)
def test_past_the_bound_they_are_refused_at_once(source: str) -> None:
    template = ENV.from_string(source)  # compiled, not folded
    with pytest.raises(SecurityError, match="at most"):  # checked before it is computed
        template.render(n=10**9)


@pytest.mark.parametrize("join", ["~", "+"])
def test_a_loop_doubling_a_text_stops_at_the_bound(join: str) -> None:
    """Thirty turns of ``s ~ s`` make a gigabyte; Jinja compiles ``~`` to a plain join no
    operator hook sees."""
    source = (
        "{% set ns = namespace(text='x') %}{% for _ in range(40) %}"
        f"{{% set ns.text = ns.text {join} ns.text %}}{{% endfor %}}{{{{ ns.text | length }}}}"
    )
    with pytest.raises(SecurityError, match="that makes 1,048,576 characters"):
        ENV.from_string(source).render()


def test_a_join_keeps_markup_escaped_once() -> None:
    sandbox = _Sandbox(autoescape=True)
    assert sandbox.from_string("{{ '<i>' ~ x }}").render(x="<b>") == "&lt;i&gt;&lt;b&gt;"


def test_a_condition_past_the_bound_fails_as_a_condition() -> None:
    with pytest.raises(ConditionError, match="at most 1,000,000"):
        evaluate_condition("plan * 1000000000 == 'x'", {"plan": "x"})
    assert evaluate_condition("plan * 2 == 'xx'", {"plan": "x"}) is True


def test_a_number_too_large_for_a_float_renders_instead_of_raising() -> None:
    """Jinja writes a float constant as its repr: ``1e999`` (or ``1e308 + 1e308``, folded
    while compiling) became the name ``inf`` in the compiled module, a NameError at render
    and a traceback from ``stepmail check``."""
    from orchestrator.rendering.environment import MailSandbox

    sandbox = MailSandbox()
    text = "{{ 1e999 }}|{{ 1e308 + 1e308 }}|{{ 1e999 - 1e999 }}|{{ -1e999 }}"
    assert sandbox.from_string(text).render() == "inf|inf|nan|-inf"
    assert sandbox.compile_expression("1e999 > 10 ** 300")() is True
