"""A worker compiles the templates of the journeys' current versions as it starts, so its first
mails are not the ones to pay for it; a template that cannot be compiled is counted, not fatal
(the mail that needs it says why)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.rendering.renderer import MailRenderer
from orchestrator.runtime import Runtime
from tests.support.delivery import run_due
from tests.support.signups import post_signup, signup_payload
from tests.support.transports import ScriptedTransport


def _current_renderers(runtime: Runtime) -> list[MailRenderer]:
    catalog = runtime.catalog
    found = [catalog.renderer(journey_id, None) for journey_id in catalog.view()]
    return [renderer for renderer in found if renderer is not None]


def test_after_compiling_a_welcome_mail_compiles_nothing(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    renderers = _current_renderers(runtime)
    assert renderers
    expected = sum(len(renderer.template_names()) for renderer in renderers)
    assert expected > len(renderers)  # each version has its steps' templates and the layouts

    assert runtime.catalog.compile_templates() == expected

    def no_compiling(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a template was compiled while sending")

    for renderer in renderers:
        monkeypatch.setattr(renderer.env, "compile", no_compiling)
    runtime.transport = transport = ScriptedTransport()
    post_signup(client, signup_payload("cust-warm", plan="free"))
    assert run_due(runtime) == ["sent"]
    assert transport.sent[0].subject and transport.sent[0].text


def test_a_template_that_cannot_be_compiled_is_counted_not_raised(tmp_path: Path) -> None:
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "good.en.html").write_text("{% block subject %}Hi{% endblock %}")
    (tmp_path / "steps" / "good.en.txt").write_text("Hi {{ customer.name }}")
    (tmp_path / "steps" / "broken.en.html").write_text("{% if %}never closed")
    (tmp_path / "style.css").write_text("p { color: red; }")
    renderer = MailRenderer(tmp_path, "en")

    assert renderer.template_names() == [
        "steps/broken.en.html",
        "steps/good.en.html",
        "steps/good.en.txt",
    ]
    assert [renderer.compile(name) for name in renderer.template_names()] == [False, True, True]
