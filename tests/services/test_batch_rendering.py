"""A batch renders all its mails' HTML first, then makes all their text parts
(:class:`~orchestrator.rendering.renderer.DraftMail`): the HTML-to-text converter then runs
with its code in the CPU's caches (bench/README, "Session 14"). What each mail carries, and
what a failing template does to its row, are unchanged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from orchestrator.rendering.renderer import MailRenderer
from orchestrator.rendering.text_part import LayoutTexts, plain_text
from orchestrator.runtime import Runtime
from orchestrator.services.delivery import deliver_batch
from orchestrator.services.scheduling import claim_due_sends
from tests.support.delivery import with_transport
from tests.support.signups import post_signup, signup_payload
from tests.support.transports import ScriptedTransport

LEASE = timedelta(seconds=120)


def due_welcomes(client: TestClient, runtime: Runtime, count: int) -> list[int]:
    """``count`` customers signed up, their welcome mails claimed for one batch."""
    for n in range(count):
        assert post_signup(client, signup_payload(f"c{n}")).status_code == 202
    ids = claim_due_sends(runtime.engine, runtime.clock.now(), 100, LEASE)
    assert len(ids) == count
    return ids


def spy_on_rendering(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The order in which a batch drafts its mails (``html``) and makes text parts (``text``)."""
    calls: list[str] = []
    draft, text = MailRenderer.draft, LayoutTexts.text

    def spied_draft(self: MailRenderer, *args: Any, **kwargs: Any) -> Any:
        calls.append("html")
        return draft(self, *args, **kwargs)

    def spied_text(self: LayoutTexts, html: str, pieces: list[str] | None) -> str:
        calls.append("text")
        return text(self, html, pieces)

    monkeypatch.setattr(MailRenderer, "draft", spied_draft)
    monkeypatch.setattr(LayoutTexts, "text", spied_text)
    return calls


def test_a_batch_makes_its_text_parts_after_all_its_html(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = due_welcomes(client, runtime, 4)
    calls = spy_on_rendering(monkeypatch)
    transport = ScriptedTransport()

    outcomes = deliver_batch(with_transport(runtime, transport).delivery_deps(), ids)

    assert outcomes == ["sent"] * 4
    assert calls == ["html"] * 4 + ["text"] * 4
    for mail in transport.sent:
        assert mail.text == plain_text(mail.html)
        assert "山田 太郎" in mail.text and "(http" in mail.text  # the content, links written out


class _Endless(dict[str, Any]):
    """A customer whose every field is itself: reading one recurses until Python's limit."""

    def __getitem__(self, key: str) -> Any:
        return self[key]


@pytest.mark.parametrize(
    ("customer_of", "reason"),
    [
        (lambda _customer: None, "'None' has no attribute"),  # an UndefinedError
        # a RecursionError, as from a template including itself, came out of the whole batch
        (_Endless, "nested without end"),
    ],
)
def test_a_row_whose_template_fails_leaves_the_rest_of_the_batch_whole(
    client: TestClient,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    customer_of: Callable[[Any], Any],
    reason: str,
) -> None:
    ids = due_welcomes(client, runtime, 3)
    drafted = {"count": 0}
    draft = MailRenderer.draft

    def second_fails(self: MailRenderer, *args: Any, **kwargs: Any) -> Any:
        drafted["count"] += 1
        if drafted["count"] == 2:
            context = dict(args[3])
            context["customer"] = customer_of(context["customer"])
            return draft(self, args[0], args[1], args[2], context, **kwargs)
        return draft(self, *args, **kwargs)

    monkeypatch.setattr(MailRenderer, "draft", second_fails)
    transport = ScriptedTransport()

    outcomes = deliver_batch(with_transport(runtime, transport).delivery_deps(), ids)

    assert outcomes == ["sent", "failed", "sent"]
    assert len(transport.sent) == 2
    assert all(mail.text.strip() for mail in transport.sent)
    with runtime.engine.connect() as connection:
        stored = connection.execute(
            text("SELECT reason FROM scheduled_send WHERE id = :id"), {"id": ids[1]}
        ).scalar_one()
    assert stored.startswith("template: ") and reason in stored


def test_a_text_template_is_kept_as_written(tmp_path: Path) -> None:
    (tmp_path / "note.html").write_text(
        "{% block subject %}Hi{% endblock %}<p>Hello <a href='https://x.example/a'>there</a></p>"
    )
    (tmp_path / "note.txt").write_text("Hello {{ name }}, as written")
    (tmp_path / "other.html").write_text("{% block subject %}Hi{% endblock %}<p>Hello</p>")
    renderer = MailRenderer(tmp_path, "en")

    with_text = renderer.draft("note", "tech", "en", {"name": "Ann"})
    without = renderer.draft("other", "tech", "en", {})

    assert with_text.text == "Hello Ann, as written"
    assert with_text.pieces is None  # drawn without marks: its text is not made from the HTML
    assert without.pieces is not None
    assert with_text.finish().text == "Hello Ann, as written"
    assert without.text is None  # made from the HTML when finished
    assert without.finish().text == plain_text(without.html)
    assert renderer.render("note", "tech", "en", {"name": "Ann"}) == with_text.finish()
