"""The mail environment reads a context dict's items without the sandbox's attribute probe,
and is still the immutable sandbox for everything else."""

from __future__ import annotations

from typing import Any

import markupsafe
import pytest
from jinja2 import DictLoader, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, unsafe
from markupsafe import Markup

from orchestrator.guards.jinja_steps import BUDGET, CHARS_PER_STEP, MAX_STEPS, step_budget
from orchestrator.rendering.environment import (
    _DICT_READERS,
    MailSandbox,
    mail_environment,
)
from orchestrator.rendering.slots import (
    _public_escape,
    escape_text,
    finalize,
    marking,
    written_html,
    written_text,
)


class _Stylesheet:
    """No stylesheet to inline."""

    path = "mail.css"

    def load(self) -> None:
        return None


def render(source: str, **context: Any) -> str:
    env = mail_environment(DictLoader({"t.html": source}), _Stylesheet())
    return env.get_template("t.html").render(context)


def test_the_mail_environment_is_the_mail_sandbox() -> None:
    env = mail_environment(DictLoader({}), _Stylesheet())
    assert isinstance(env, MailSandbox)
    assert isinstance(env, ImmutableSandboxedEnvironment)
    assert env.autoescape is not False


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The attributes the sandbox's own lookup (with its checks) is asked for."""
    asked: list[str] = []
    sandbox_getattr = ImmutableSandboxedEnvironment.getattr

    def counting(self: ImmutableSandboxedEnvironment, obj: Any, attribute: str) -> Any:
        asked.append(attribute)
        return sandbox_getattr(self, obj, attribute)

    monkeypatch.setattr(ImmutableSandboxedEnvironment, "getattr", counting)
    return asked


def test_a_dict_item_is_read_without_asking_for_an_attribute(probes: list[str]) -> None:
    out = render("{{ customer.name }} {{ customer.company.name }}", customer=_CUSTOMER)
    assert out == "山田 &lt;b&gt; Acme"  # autoescaped as before
    assert probes == []


_CUSTOMER = {"name": "山田 <b>", "company": {"name": "Acme"}}


def test_a_plain_dict_item_is_read_in_the_compiled_code_without_a_lookup_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``customer.name`` on a plain dict is read in place; a missing item, a name that is a
    dict attribute and any other type still go through ``MailSandbox.getattr``."""
    asked: list[str] = []
    mail_getattr = MailSandbox.getattr

    def counting(self: MailSandbox, obj: Any, attribute: str) -> Any:
        asked.append(attribute)
        return mail_getattr(self, obj, attribute)

    monkeypatch.setattr(MailSandbox, "getattr", counting)

    class Shadowing(dict[str, Any]):
        secret = "attribute"

    source = "{{ customer.name }} {{ customer.company.name }} {{ d.items is callable }} "
    source += "{{ s.secret }} {{ customer.nick is defined }}"
    out = render(source, customer=_CUSTOMER, d={"items": "x"}, s=Shadowing(secret="item"))
    assert out == "山田 &lt;b&gt; Acme True attribute False"
    assert asked == ["items", "secret", "nick"]


def test_a_missing_item_is_still_an_error() -> None:
    with pytest.raises(UndefinedError, match="missing"):
        render("{{ customer.missing }}", customer=_CUSTOMER)


def test_dict_methods_and_internals_still_go_through_the_sandbox() -> None:
    with pytest.raises(SecurityError):  # the immutable sandbox refuses a mutating method
        render("{{ customer.update({'name': 'x'}) }}", customer=dict(_CUSTOMER))
    with pytest.raises(SecurityError):  # an internal attribute is unsafe
        render("{{ customer.__class__.__mro__ }}", customer=_CUSTOMER)
    assert render("{{ customer.keys() | list | join(',') }}", customer=_CUSTOMER) == "name,company"
    # an item named like a dict method: the method, as Jinja's sandbox has always answered
    assert render("{{ d.items is callable }}", d={"items": "x"}) == "True"


def test_a_dict_subclass_gets_the_sandbox_lookup() -> None:
    class Shadowing(dict[str, Any]):
        secret = "attribute"

    assert render("{{ d.secret }}", d=Shadowing(secret="item")) == "attribute"


def test_a_template_s_globals_are_one_dict_over_the_environment_s() -> None:
    """A plain dict, not a chain walked for every context; a template's own globals still
    overlay the environment's and stay the template's."""
    env = mail_environment(
        DictLoader({"a.html": "{{ who }} {{ brand }}", "b.html": "{{ who }}"}), _Stylesheet()
    )
    env.globals["who"] = "env"
    env.globals["brand"] = "Acme"
    own = env.get_template("a.html", globals={"who": "own"})
    other = env.get_template("b.html")

    assert type(own.globals) is dict
    assert own.render() == "own Acme"
    assert other.render() == "env"
    assert env.globals["who"] == "env"  # the environment's untouched


class _Html:
    """Not Markup, but says it is HTML (as markupsafe lets any object do)."""

    def __html__(self) -> str:
        return "<i>mine</i>"


class _Text(str):
    """A str subclass that is not markup: escaped like any string."""


_OUTPUT_VALUES: list[Any] = [
    "plain",
    "",
    "<script>alert('x')</script> & \"q\"",
    "山田 <b>太郎</b>",
    "nul\x00 cr\r\nlf \udcff",  # a NUL, CR/LF and a lone surrogate are written as they are
    Markup("<b>safe</b> &amp;"),
    _Text("<u>sub</u>"),
    _Html(),
    12345,
    -1.5,
    None,
    True,
    ["<x>", 1],
]


@pytest.mark.parametrize("value", _OUTPUT_VALUES, ids=repr)
def test_a_value_written_is_what_markupsafe_escape_makes_of_finalize(value: Any) -> None:
    """``written_html`` is what Jinja's ``escape(finalize(value))`` wrote, in one call, marked
    or not; ``written_text`` is ``finalize``."""
    eval_ctx: Any = None
    assert written_html(value) == str(markupsafe.escape(finalize(eval_ctx, value)))
    assert type(written_html(value)) in (str, Markup)
    assert written_text(value) == finalize(eval_ctx, value)
    with marking() as marks:
        html, text = written_html(value), written_text(value)
        assert html == str(markupsafe.escape(finalize(eval_ctx, value)))
    markup = hasattr(value, "__html__")
    if markup or value == "":
        assert (html, marks.written) == (str(markupsafe.escape(value)), 0)
    else:
        assert html == "\x0e" + str(markupsafe.escape(str(value))) + "\x0f"
        assert text == "\x0e" + str(value) + "\x0f"
        assert marks.written == 3  # html, text, and the check's finalize


def test_a_long_value_written_is_charged_on_the_budget() -> None:
    long = "<" * 5_000
    with step_budget():
        budget = BUDGET.get()
        assert budget is not None
        written_html(long)
        written_text(long)
        assert budget[0] == MAX_STEPS - 2 * 5_000 // CHARS_PER_STEP
    with pytest.raises(SecurityError):
        written_html(long)  # no budget open: refused, not written unbounded


def test_the_fallback_for_an_older_markupsafe_escapes_alike() -> None:
    for value in _OUTPUT_VALUES:
        if type(value) is str:
            assert _public_escape(value) == escape_text(value)


def test_compiled_mail_templates_write_each_value_with_one_call() -> None:
    templates = {"t.html": "{{ x }}", "t.txt": "{{ x }}", "v.html": _VOLATILE}
    env = mail_environment(DictLoader(templates), _Stylesheet())
    html = env.compile(templates["t.html"], "t.html", raw=True)
    text = env.compile(templates["t.txt"], "t.txt", raw=True)
    assert "written_html(" in html and "finalize" not in html and "escape(" not in html
    assert "written_text(" in text and "finalize" not in text and "str(" not in text
    globals_ = env.get_template("t.html").root_render_func.__globals__
    assert globals_["written_html"] is written_html
    assert globals_["written_text"] is written_text


# Whether to escape known only as the template runs: Jinja's own output code, with finalize.
_VOLATILE = "{% autoescape flag %}{{ v }}{% endautoescape %}|{{ v }}"


@pytest.mark.parametrize("flag", [True, False])
def test_an_autoescape_block_decided_at_run_time_writes_as_jinja_does(flag: bool) -> None:
    context = {"v": "<b>&</b>", "flag": flag}
    env = mail_environment(DictLoader({"v.html": _VOLATILE}), _Stylesheet())
    plain = ImmutableSandboxedEnvironment(loader=DictLoader({"v.html": _VOLATILE}), autoescape=True)
    expected = plain.get_template("v.html").render(context)
    assert expected.startswith("<b>&</b>|" if not flag else "&lt;b&gt;")
    assert env.get_template("v.html").render(context) == expected


# Every way a value reaches the output: a variable, a filter, |safe, a macro (imported and
# local), a call block, a loop, a block, a concatenation, an inline if, a constant.
_MACROS = """{% macro b(url, label) %}<a href="{{ url }}">{{ label }}</a>{% endmacro %}"""
_EVERY_OUTPUT = """{% import "m.html" as m %}{% macro own(x) %}[{{ x }}]{% endmacro %}
{% macro wrap(x) %}({{ x }}{{ caller() }}){% endmacro %}
{{ v }} {{ v|upper }} {{ safe|safe }} {{ m.b(v, safe) }} {{ own(v) }}
{% call wrap(v) %}{{ v }}{% endcall %}
{% for item in items %}{{ item }}{{ loop.index }}{% endfor %}
{% block body %}{{ v ~ "&" ~ safe }}{% endblock %}
{{ v if n > 1 else safe }} {{ "<const>" }} {{ n }} {{ items }}
{% macro many(a, b="<d>") %}{{ a }}{{ b }}{{ varargs|length }}{{ kwargs|length }}{% endmacro %}
{{ many(v) }} {{ many(v, safe, 3, k=4) }} {{ m.b(label=n, url=v) }}
{% for item in items %}{{ own(item) }}{{ m.b(item, loop.index) }}{% endfor %}
{% block calls %}{{ own(v) }}{% call wrap(n) %}{{ many(b=v, a=n) }}{% endcall %}{% endblock %}"""


def test_a_mail_template_renders_as_the_plain_immutable_sandbox_does() -> None:
    templates = {"t.html": _EVERY_OUTPUT, "m.html": _MACROS}
    context = {
        "v": "<b>\"Tom\" & 'Jerry'</b>",
        "safe": Markup("<em>ok</em>"),
        "items": ["<1>", Markup("<2>"), 3],
        "n": 2,
    }
    ours = mail_environment(DictLoader(templates), _Stylesheet())
    plain = ImmutableSandboxedEnvironment(
        loader=DictLoader(templates), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    expected = plain.get_template("t.html").render(context)
    assert "&lt;b&gt;" in expected and "<em>ok</em>" in expected  # the check has teeth
    assert ours.get_template("t.html").render(context) == expected


def test_the_dict_readers_taken_short_are_ones_the_immutable_sandbox_allows() -> None:
    sandbox = ImmutableSandboxedEnvironment()
    for name in _DICT_READERS:
        assert sandbox.is_safe_attribute({}, name, getattr({}, name)), name
    for name in ("update", "pop", "setdefault", "clear", "popitem"):
        assert name not in _DICT_READERS
        assert not sandbox.is_safe_attribute({}, name, getattr({}, name)), name


def _render_with_macros(source: str, **context: Any) -> str:
    loader = DictLoader({"t.html": source, "m.html": _MACROS + "{% set _hidden = 'h' %}"})
    return mail_environment(loader, _Stylesheet()).get_template("t.html").render(context)


def test_an_imported_macro_and_a_dict_reader_are_reached_without_the_sandbox_probe(
    probes: list[str],
) -> None:
    source = '{% import "m.html" as m %}{{ m.b(v.get("url"), v.get("x", "-")) }}'
    out = _render_with_macros(source, v={"url": "https://a.example/?q=<1>"})
    assert out == '<a href="https://a.example/?q=&lt;1&gt;">-</a>'
    assert probes == []


def test_an_imported_file_s_other_names_still_go_through_the_sandbox() -> None:
    with pytest.raises(UndefinedError, match="missing"):  # not exported: undefined, as before
        _render_with_macros('{% import "m.html" as m %}{{ m.missing }}')
    with pytest.raises(UndefinedError):  # Jinja exports no name starting with _
        _render_with_macros('{% import "m.html" as m %}{{ m._hidden }}')
    with pytest.raises(SecurityError):  # in the module's __dict__, but the sandbox's to refuse
        _render_with_macros('{% import "m.html" as m %}{{ m._body_stream }}')
    with pytest.raises(SecurityError):
        _render_with_macros('{% import "m.html" as m %}{{ m.__class__.__mro__ }}')
    with pytest.raises(SecurityError):  # a dict method that writes: refused as before
        render("{{ d.setdefault('a', 1) }}", d={})


def test_a_macro_is_called_without_the_sandbox_s_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The short way for macros (MailSandbox.call) is taken, and gives what the long way
    gives, errors included (the test above compares every kind of call's output)."""
    asked: list[Any] = []
    sandbox_call = ImmutableSandboxedEnvironment.call

    def counting(self: Any, context: Any, obj: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(obj)
        return sandbox_call(self, context, obj, *args, **kwargs)

    monkeypatch.setattr(ImmutableSandboxedEnvironment, "call", counting)
    out = _render_with_macros('{% import "m.html" as m %}{{ m.b("u", "<l>") }}{{ "a b".split() }}')
    assert out == '<a href="u">&lt;l&gt;</a>[&#39;a&#39;, &#39;b&#39;]'
    assert [getattr(obj, "__name__", None) for obj in asked] == ["split"]  # not the macro
    plain = ImmutableSandboxedEnvironment(loader=DictLoader({"m.html": _MACROS}))
    for source in ('{{ m.b("u", "l", "extra") }}', '{{ m.b("u", nope=1) }}'):
        with pytest.raises(TypeError) as ours:
            _render_with_macros('{% import "m.html" as m %}' + source)
        with pytest.raises(TypeError) as theirs:
            plain.from_string('{% import "m.html" as m %}' + source).render()
        assert str(ours.value) == str(theirs.value)


def test_a_callable_the_sandbox_refuses_is_still_refused() -> None:
    @unsafe
    def wipe() -> str:
        return "wiped"

    with pytest.raises(SecurityError, match="not safely callable"):
        render("{{ wipe() }}", wipe=wipe)
    with pytest.raises(SecurityError):
        render("{{ d.clear() }}", d={"a": 1})


def test_a_macro_given_every_argument_by_position_runs_without_jinjas_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The short way is taken for ``m.b(x, y)`` only; the result is what Jinja makes, in a
    mail's HTML (markup, not escaped again) and in its text part (plain, not escaped)."""
    invoked: list[str] = []
    long_way = Macro._invoke

    def counted(self: Macro, arguments: list[Any], autoescape: bool) -> Any:
        invoked.append(self.name)
        return long_way(self, arguments, autoescape)

    monkeypatch.setattr(Macro, "_invoke", counted)
    templates = {
        "m.html": _MACROS,
        "t.html": '{% import "m.html" as m %}{{ m.b(v, "<l>") }}',
        "k.html": '{% import "m.html" as m %}{{ m.b(v, label="<l>") }}',
        "t.txt": "{% macro p(x) %}<{{ x }}>{% endmacro %}{{ p(v) }}",
    }
    env = mail_environment(DictLoader(templates), _Stylesheet())
    assert env.get_template("t.html").render(v="?a=1&b") == '<a href="?a=1&amp;b">&lt;l&gt;</a>'
    assert invoked == []
    assert env.get_template("k.html").render(v="x") == '<a href="x">&lt;l&gt;</a>'
    assert invoked == ["b"]
    assert env.get_template("t.txt").render(v="a&b") == "<a&b>"
    assert invoked == ["b"]
