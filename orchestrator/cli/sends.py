"""``stepmail sends unknown|settle``: the sends whose outcome stayed unknown, for a person to
settle (see :mod:`orchestrator.delivery.unknown_sends`)."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.arguments import utf8_text
from orchestrator.cli.output import JsonFlag, info, print_json, printable
from orchestrator.clock import SystemClock
from orchestrator.delivery.unknown_sends import Settlement
from orchestrator.guards.bounds import ROW_ID_MAX
from orchestrator.runtime import open_engine
from orchestrator.services.unknown_sends import list_unknown_sends, settle_unknown_send
from orchestrator.settings import load_settings

app = typer.Typer(no_args_is_help=True, help="Sends whose outcome is unknown: settle them by hand.")


@app.command("unknown")
def unknown_command(
    limit: Annotated[
        int, typer.Option(min=1, max=ROW_ID_MAX, help="at most this many, oldest first")
    ] = 100,
    json_output: JsonFlag = False,
) -> None:
    """Print the sends waiting for a person: id, address, journey/step, attempts, since, why."""
    with open_engine(load_settings()) as engine:
        sends = list_unknown_sends(engine, limit=limit)
    if json_output:
        print_json(sends)
        return
    for send in sends:
        fields = (
            send.send_id,
            send.email,
            f"{send.journey_id}/{send.step_id}",
            send.attempts,
            send.since.isoformat(),
            send.reason or "",
        )
        typer.echo("\t".join(map(printable, fields)))
    if not sends:
        info("no sends with an unknown outcome")


@app.command("settle")
def settle_command(
    send_id: Annotated[int, typer.Argument(min=1, max=ROW_ID_MAX, help="the send's id")],
    as_: Annotated[
        Settlement,
        typer.Option("--as", help="sent: it went out · resend: send it again · skip: leave it"),
    ],
    note: Annotated[str, typer.Option(help="what you checked (kept on the send)")] = "",
) -> None:
    """Settle one unknown send after checking the provider's log or with the recipient."""
    utf8_text("--note", note)
    with open_engine(load_settings()) as engine:
        settle_unknown_send(engine, send_id, as_, note=note.strip(), clock=SystemClock())
    typer.echo(f"send {send_id} settled as {as_.value}")
