"""The mail environment reads a context dict's items without the sandbox's attribute probe,
and is still the immutable sandbox for everything else."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import DictLoader, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.rendering.environment import MailSandbox, mail_environment


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


def test_a_dict_item_is_read_without_asking_for_an_attribute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probes: list[str] = []
    sandbox_getattr = ImmutableSandboxedEnvironment.getattr

    def counting(self: ImmutableSandboxedEnvironment, obj: Any, attribute: str) -> Any:
        probes.append(attribute)
        return sandbox_getattr(self, obj, attribute)

    monkeypatch.setattr(ImmutableSandboxedEnvironment, "getattr", counting)
    out = render("{{ customer.name }} {{ customer.company.name }}", customer=_CUSTOMER)
    assert out == "山田 &lt;b&gt; Acme"  # autoescaped as before
    assert probes == []


_CUSTOMER = {"name": "山田 <b>", "company": {"name": "Acme"}}


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
