"""The console's services on both databases: finding customers through their indexes, the
customer's whole page, the CSM inbox, operations, previews and test sends; every change
audited in its own transaction."""

from __future__ import annotations

import email
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select, text, update

from orchestrator.audit.log import Actor
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import audit_log, csm_tasks, customers, scheduled_sends
from orchestrator.delivery.unknown_sends import Settlement
from orchestrator.errors import (
    CustomerNotFound,
    InvalidField,
    NotFound,
    PermanentDeliveryError,
    StepmailError,
    TaskNotFound,
    TemplateError,
)
from orchestrator.runtime import Runtime
from orchestrator.services import customer_directory, operations, task_inbox
from orchestrator.services.previews import SubjectRenderer, preview_step
from orchestrator.services.test_sends import send_test
from orchestrator.transports.base import SendResult
from orchestrator.transports.mail import OutgoingMail
from tests.support.delivery import run_due
from tests.support.signups import outbox_files, post_signup, signup_payload

ME = Actor("csm@acme.example", None)


def sign_up(client: TestClient, external_id: str, **overrides: Any) -> None:
    payload = signup_payload(
        external_id, email=f"{external_id.lower()}@customer.example", **overrides
    )
    assert post_signup(client, payload).status_code == 202


def audited(engine: Engine) -> list[tuple[str, str, str]]:
    query = select(audit_log.c.action, audit_log.c.target_kind, audit_log.c.target_id)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query.order_by(audit_log.c.id))]


# -- search ----------------------------------------------------------------------------------


def test_customers_are_found_by_the_start_of_each_field_page_by_page(
    client: TestClient, runtime: Runtime
) -> None:
    for index in range(7):
        sign_up(client, f"ACCT-{index}", company=f"Acme {index % 2} K.K.")
    sign_up(client, "acct_%x", company="100% Pure_Co")  # LIKE's wildcards, taken literally
    sign_up(client, "other", company="東都ロジスティクス")
    engine = runtime.engine

    def ids(query: str, field: customer_directory.SearchField, **kw: Any) -> list[str]:
        page = customer_directory.search_customers(engine, query, field, **kw)
        return [row.external_id for row in page.rows]

    assert ids("ACCT-", "external_id") == [f"ACCT-{i}" for i in range(7)]
    assert ids("acct", "external_id") == ["acct_%x"]  # case matters for ids
    assert ids("acct-3@", "email") == ["ACCT-3"]  # addresses are compared in lower case
    assert ids("Acme 1", "company") == ["ACCT-1", "ACCT-3", "ACCT-5"]
    assert ids("100% P", "company") == ["acct_%x"] and ids("100%x", "company") == []
    assert ids("東都", "company") == ["other"]
    assert ids("東都", "any") == ["other"]
    assert ids("", "any")[:2] == ["other", "acct_%x"]  # no query: the newest first

    seen, after = [], None
    while True:  # keyset pages of two
        page = customer_directory.search_customers(
            engine, "ACCT", "external_id", after=after, limit=2
        )
        seen += [row.external_id for row in page.rows]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == [f"ACCT-{i}" for i in range(7)]
    with pytest.raises(InvalidField, match="q: at most 200"):
        customer_directory.search_customers(engine, "x" * 201)


@pytest.mark.parametrize("field", ["external_id", "email", "company"])
def test_a_search_is_a_range_on_an_index(runtime: Runtime, field: str) -> None:
    engine = runtime.engine
    statement = customer_directory.prefix_statement(field, "acme", ("acme-9", 9), 26)  # type: ignore[arg-type]
    compiled = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET enable_seqscan = off"))  # an empty table: ask anyway
            plan = "\n".join(connection.execute(text(f"EXPLAIN {compiled}")).scalars())
            assert "Index" in plan and "Seq Scan" not in plan, plan
        else:
            plan = " ".join(
                str(r[-1]) for r in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            )
            assert "USING" in plan and "INDEX" in plan and "SCAN customer" not in plan, plan


# -- one customer ----------------------------------------------------------------------------


def test_the_customer_page_holds_everything_about_them(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    sign_up(client, "cust-1", consent={"source": "webinar-form", "text_version": "v9"})
    run_due(runtime)
    with runtime.engine.begin() as connection:
        customer_id = connection.execute(select(customers.c.id)).scalar_one()
        connection.execute(
            insert(csm_tasks).values(
                customer_id=customer_id,
                kind="at_risk",
                reason="score 28",
                status="open",
                created_at=clock.now(),
                due_at=clock.now() + timedelta(days=2),
            )
        )
    subjects = SubjectRenderer(runtime.renderer, runtime.sender, clock.now())
    profile = customer_directory.customer_profile(
        runtime.engine, "cust-1", journeys=runtime.journeys, subject_of=subjects
    )
    (enrollment,) = profile.enrollments
    steps = {step.step_id: step for step in enrollment.steps}
    assert steps["welcome"].state == "sent" and steps["welcome"].subject
    outbox = email.message_from_bytes(outbox_files(runtime.settings)[0].read_bytes())
    assert str(email.header.make_header(email.header.decode_header(outbox["Subject"]))) == (
        steps["welcome"].subject
    )
    assert steps["basics"].state == "pending" and steps["basics"].subject is None
    assert steps["next_steps"].state is None and steps["next_steps"].waits_for == "report_created"
    assert [m.kind for m in profile.timeline] == ["mail"]
    assert profile.consent[0]["source"] == "webinar-form"
    assert [t.kind for t in profile.tasks] == ["at_risk"]
    assert steps["welcome"].archived  # the subject it went out with, from the archive
    assert profile.suppression is None and profile.subject_source == "archived"
    with pytest.raises(CustomerNotFound):
        customer_directory.customer_profile(runtime.engine, "nobody", journeys=runtime.journeys)


# -- the CSM inbox ---------------------------------------------------------------------------


def test_the_inbox_lists_mine_and_the_teams_and_every_change_is_audited(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    sign_up(client, "c1")
    engine = runtime.engine
    with engine.begin() as connection:
        customer_id = connection.execute(select(customers.c.id)).scalar_one()
        for kind, assignee, due in [
            ("at_risk", ME.name, -1),
            ("nps_detractor", "x@acme.example", 3),
            ("new_high_touch", None, 1),
        ]:
            connection.execute(
                insert(csm_tasks).values(
                    customer_id=customer_id,
                    kind=kind,
                    reason=kind,
                    status="open",
                    assignee=assignee,
                    created_at=clock.now(),
                    due_at=clock.now() + timedelta(days=due),
                )
            )
    now = clock.now()
    mine = task_inbox.inbox(engine, me=ME.name, scope="mine", now=now)
    team = task_inbox.inbox(engine, me=ME.name, scope="team", now=now)
    assert [t.kind for t in mine.tasks] == ["at_risk"] and mine.tasks[0].overdue
    assert [t.kind for t in team.tasks] == ["at_risk", "new_high_touch", "nps_detractor"]
    assert team.kinds == ["at_risk", "new_high_touch", "nps_detractor"]
    filtered = task_inbox.inbox(engine, me=ME.name, scope="team", kind="nps_detractor", now=now)
    assert [t.kind for t in filtered.tasks] == ["nps_detractor"]

    task_id = team.tasks[1].id
    task_inbox.assign_task(engine, task_id, "CSM@acme.example", actor=ME, clock=clock)
    task_inbox.add_note(engine, task_id, "  called, left a message  ", actor=ME, clock=clock)
    task_inbox.close_inbox_task(engine, task_id, actor=ME, clock=clock)
    detail, notes = task_inbox.task_detail(engine, task_id, now=now)
    assert (detail.assignee, detail.status, detail.notes) == (ME.name, "closed", 1)
    assert [(n.author, n.body) for n in notes] == [(ME.name, "called, left a message")]
    assert [a[0] for a in audited(engine)] == ["task.assign", "task.note", "task.close"]
    for bad in ["", "x" * 2001, "nul\x00"]:
        with pytest.raises(InvalidField):
            task_inbox.add_note(engine, task_id, bad, actor=ME, clock=clock)
    with pytest.raises(InvalidField):
        task_inbox.assign_task(engine, task_id, "not an address", actor=ME, clock=clock)
    with pytest.raises(TaskNotFound):
        task_inbox.add_note(engine, 999_999, "x", actor=ME, clock=clock)


# -- operations ------------------------------------------------------------------------------


def test_suppressions_are_searched_added_and_lifted_with_an_audit_row(
    runtime: Runtime, clock: FrozenClock
) -> None:
    engine = runtime.engine
    for address in ["b@x.example", "a@x.example", "c@y.example"]:
        assert operations.suppress_address(engine, address.upper(), actor=ME, clock=clock)
    assert not operations.suppress_address(engine, "a@x.example", actor=ME, clock=clock)
    assert [e.email for e in operations.search_suppressions(engine, "A@X").entries] == [
        "a@x.example"
    ]
    page = operations.search_suppressions(engine, limit=2)
    assert [e.email for e in page.entries] == ["a@x.example", "b@x.example"]
    rest = operations.search_suppressions(engine, after=page.next_after)
    assert [e.email for e in rest.entries] == ["c@y.example"] and rest.next_after is None
    assert operations.search_suppressions(engine).entries[0].source == "console:" + ME.name
    operations.lift_suppression(engine, "a@x.example", actor=ME, clock=clock)
    with pytest.raises(NotFound):
        operations.lift_suppression(engine, "a@x.example", actor=ME, clock=clock)
    actions = [a[0] for a in audited(engine)]
    assert actions == ["suppression.add"] * 3 + ["suppression.remove"]


def test_an_unknown_send_is_settled_with_the_clis_code_and_audited(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    sign_up(client, "u1")
    engine = runtime.engine
    with engine.begin() as connection:
        send_id = connection.execute(
            select(scheduled_sends.c.id).where(scheduled_sends.c.step_id == "welcome")
        ).scalar_one()
        connection.execute(
            update(scheduled_sends).where(scheduled_sends.c.id == send_id).values(state="unknown")
        )
    assert [s.send_id for s in operations.unknown_sends(engine)] == [send_id]
    operations.settle_send(
        engine, send_id, Settlement.RESEND, "not in the log", actor=ME, clock=clock
    )
    with engine.connect() as connection:
        row = connection.execute(
            select(scheduled_sends).where(scheduled_sends.c.id == send_id)
        ).one()
    assert row.state == "pending" and row.reason == "settled by hand as resend: not in the log"
    with pytest.raises(StepmailError, match="is pending, not unknown"):
        operations.settle_send(engine, send_id, Settlement.SKIP, "", actor=ME, clock=clock)
    assert [a[0] for a in audited(engine)] == ["send.settle"]  # the refusal wrote nothing


# -- previews and test sends -----------------------------------------------------------------


def test_a_preview_is_the_mail_the_pipeline_builds_for_that_tier(
    runtime: Runtime, clock: FrozenClock
) -> None:
    def preview(tier: str, locale: str) -> Any:
        return preview_step(
            runtime.journeys,
            runtime.renderer,
            journey_id="onboarding",
            step_id="welcome",
            tier=tier,
            locale=locale,
            rules=runtime.preview_rules(),
            now=clock.now(),
        )

    high, tech = preview("high", "en"), preview("tech", "ja")
    headers = dict(high.headers)
    assert headers["From"] == "Daniel Brooks (Acme Cloud) <onboarding@acme.example>"
    assert headers["Reply-To"] == "Daniel Brooks <daniel.brooks@example.com>"
    assert headers["List-Unsubscribe"] == ("<https://stepmail.example.com/unsubscribe/PREVIEW>")
    assert "Reply-To" not in dict(tech.headers) and tech.template_name.endswith(".tech.ja.html")
    assert "Northwind" in high.mail.html and "Northwind" in high.mail.text
    with pytest.raises(InvalidField, match="tier"):
        preview("vip", "ja")
    with pytest.raises(NotFound):
        preview_step(
            runtime.journeys,
            runtime.renderer,
            journey_id="onboarding",
            step_id="nope",
            tier="high",
            locale="ja",
            rules=runtime.preview_rules(),
            now=clock.now(),
        )


class Refusing:
    name, idempotent = "refusing", False

    def send(self, mail: OutgoingMail) -> SendResult:
        raise PermanentDeliveryError("550 mailbox unavailable")

    def close(self) -> None:
        pass


def test_a_test_send_is_marked_addressed_to_one_person_and_never_counted(
    runtime: Runtime, clock: FrozenClock
) -> None:
    def send(**overrides: Any) -> Any:
        values: dict[str, Any] = {
            "transport": runtime.transport,
            "journeys": runtime.journeys,
            "renderer": runtime.renderer,
            "rules": runtime.preview_rules(),
            "journey_id": "onboarding",
            "step_id": "faq",
            "tier": "low",
            "locale": "ja",
            "to": "editor@acme.example",
            "actor": Actor("editor@acme.example"),
            "clock": clock,
        }
        return send_test(runtime.engine, **{**values, **overrides})

    sent = send()
    (path,) = outbox_files(runtime.settings)
    mail = email.message_from_bytes(path.read_bytes())
    assert path.name == sent.idempotency_key + ".eml"
    assert mail["To"] == "editor@acme.example" and mail["X-Stepmail-Test"] == "1"
    assert sent.subject.startswith("[TEST] ") and mail["List-Unsubscribe"]
    assert send().idempotency_key != sent.idempotency_key  # each test is its own mail
    with runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(scheduled_sends)).scalar() == 0
    with pytest.raises(PermanentDeliveryError):
        send(transport=Refusing())
    with pytest.raises(InvalidField, match="to"):
        send(to="a@b.example\r\nBcc: x@y.example")
    assert [a[0] for a in audited(runtime.engine)] == [
        "step.test_send",
        "step.test_send",
        "step.test_send_failed",
    ]


def test_a_test_of_a_broken_template_names_it(
    runtime: Runtime, clock: FrozenClock, tmp_path: Any
) -> None:
    broken = tmp_path / "templates"
    import shutil

    shutil.copytree(runtime.settings.templates_dir, broken)
    (broken / "onboarding" / "faq.html").write_text("{% block subject %}{{ nope.x }}{% endblock %}")
    for name in (broken / "onboarding").glob("faq.*.html"):
        name.unlink()
    from orchestrator.rendering.renderer import MailRenderer

    renderer = MailRenderer(broken, "ja")
    with pytest.raises(TemplateError, match="faq"):
        preview_step(
            runtime.journeys,
            renderer,
            journey_id="onboarding",
            step_id="faq",
            tier="low",
            locale="ja",
            rules=runtime.preview_rules(),
            now=clock.now(),
        )
