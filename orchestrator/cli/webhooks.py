"""``stepmail webhooks``: subscribe integrators' URLs to events, read the delivery log, replay.

The same as ``/v1/webhooks``. Deliveries are made by the scheduler process (or ``stepmail run``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orchestrator.cli.arguments import utf8_text
from orchestrator.cli.output import JsonFlag, console, info, print_json, printable
from orchestrator.errors import InvalidInput
from orchestrator.guards.bounds import ROW_ID_MAX
from orchestrator.settings import load_settings
from orchestrator.webhooks.events import EVENT_TYPES

EndpointId = Annotated[int, typer.Argument(min=1, max=ROW_ID_MAX, help="the endpoint's id")]
MessageId = Annotated[int, typer.Argument(min=1, max=ROW_ID_MAX, help="the message's id")]

app = typer.Typer(no_args_is_help=True, help="Outgoing webhooks: endpoints, deliveries, replay.")
STATES = ("pending", "delivering", "delivered", "failed")


@app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(help="https:// URL that receives the POSTs")],
    events: Annotated[
        list[str],
        typer.Option(
            "--event",
            "-e",
            help=f"event to send (repeat, or comma-separated; * = all): {', '.join(EVENT_TYPES)}",
        ),
    ],
    description: Annotated[str, typer.Option(help="a note for operators")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Subscribe a URL; prints its signing secret (shown this once)."""
    utf8_text("URL", url)
    utf8_text("--event", *events)
    utf8_text("--description", description)
    from orchestrator.clock import SystemClock
    from orchestrator.runtime import open_engine
    from orchestrator.services.webhooks import add_endpoint, outgoing_webhook_rules

    settings = load_settings()
    with open_engine(settings) as engine:
        endpoint = add_endpoint(
            engine,
            url,
            events,
            rules=outgoing_webhook_rules(settings),
            clock=SystemClock(),
            description=description,
        )
    if json_output:
        print_json(endpoint)
        return
    console.print(f"endpoint {endpoint['id']}  {printable(endpoint['url'])}")
    console.print(f"events  {', '.join(endpoint['events'])}")
    console.print(f"secret  {endpoint['secret']}")
    info("keep the secret: it verifies the webhook-signature header and is not shown again")


@app.command("list")
def webhooks_list(json_output: JsonFlag = False) -> None:
    """Endpoints and what they subscribe to."""
    from orchestrator.runtime import open_engine
    from orchestrator.services.webhooks import list_endpoints

    with open_engine(load_settings()) as engine:
        endpoints = list_endpoints(engine)
    if json_output:
        print_json(endpoints)
        return
    for e in endpoints:
        state = "enabled" if e["enabled"] else "disabled"
        console.print(
            printable(
                f"#{e['id']}  {state}  {e['url']}  {','.join(e['events'])}  {e['description']}"
            )
        )
    if not endpoints:
        info("no webhook endpoints")


@app.command("disable")
def webhooks_disable(endpoint_id: EndpointId, json_output: JsonFlag = False) -> None:
    """Stop delivering to an endpoint (new events are not queued for it)."""
    _set_enabled(endpoint_id, False, json_output)


@app.command("enable")
def webhooks_enable(endpoint_id: EndpointId, json_output: JsonFlag = False) -> None:
    """Deliver to an endpoint again; what waited in its queue goes first."""
    _set_enabled(endpoint_id, True, json_output)


@app.command("deliveries")
def webhooks_deliveries(
    endpoint: Annotated[
        int | None, typer.Option(min=1, max=ROW_ID_MAX, help="only this endpoint's messages")
    ] = None,
    state: Annotated[str | None, typer.Option(help=" | ".join(STATES))] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    json_output: JsonFlag = False,
) -> None:
    """The delivery log, newest message first, with each attempt's answer."""
    from orchestrator.runtime import open_engine
    from orchestrator.services.webhooks import list_deliveries

    if state is not None and state not in STATES:
        raise InvalidInput(f"--state must be one of {', '.join(STATES)}, not {state!r}")
    with open_engine(load_settings()) as engine:
        messages = list_deliveries(engine, endpoint_id=endpoint, state=state, limit=limit)
    if json_output:
        print_json(messages)
        return
    for m in messages:
        console.print(printable(_delivery_line(m)))
    if not messages:
        info("no webhook deliveries")


@app.command("replay")
def webhooks_replay(message_id: MessageId, json_output: JsonFlag = False) -> None:
    """Deliver a message again from its first attempt (same webhook-id)."""
    from orchestrator.clock import SystemClock
    from orchestrator.runtime import open_engine
    from orchestrator.services.webhooks import replay_message

    with open_engine(load_settings()) as engine:
        result = replay_message(engine, message_id, clock=SystemClock())
    if json_output:
        print_json(result)
    elif result["replayed"]:
        console.print(f"message {message_id} queued again")
    else:
        console.print(f"message {message_id} is being delivered now; not replayed")


@app.command("prune")
def webhooks_prune(
    older_than: Annotated[int, typer.Option(min=0, max=36_500, help="days")] = 30,
    failed: Annotated[bool, typer.Option("--failed", help="failed messages too")] = False,
) -> None:
    """Forget delivered messages (and their attempts) older than --older-than days; the
    scheduler does this hourly with STEPMAIL_WEBHOOK_RETENTION_DAYS."""
    from datetime import timedelta

    from orchestrator.clock import SystemClock
    from orchestrator.runtime import open_engine
    from orchestrator.services.webhooks import prune_delivered

    before = SystemClock().now() - timedelta(days=older_than)
    with open_engine(load_settings()) as engine:
        gone = prune_delivered(engine, before, include_failed=failed)
    console.print(f"{gone} webhook message(s) pruned")


def _set_enabled(endpoint_id: int, enabled: bool, json_output: bool) -> None:
    from orchestrator.runtime import open_engine
    from orchestrator.services.webhooks import set_endpoint_enabled

    with open_engine(load_settings()) as engine:
        endpoint = set_endpoint_enabled(engine, endpoint_id, enabled)
    if json_output:
        print_json(endpoint)
    else:
        state = "enabled" if enabled else "disabled"
        console.print(f"endpoint {endpoint_id} {state}")


def _delivery_line(m: dict[str, Any]) -> str:
    last = m["log"][-1] if m["log"] else None
    answer = "" if last is None else f"  last: {last['status_code'] or last['error']}"
    return (
        f"#{m['id']}  {m['created_at'][:19]}  endpoint {m['endpoint_id']}  {m['event_type']}  "
        f"{m['state']}  attempts {m['attempts']}{answer}"
    )
