"""``stepmail users add|list|disable``: who may sign in to the operator console.

The password of a new user comes from a hidden prompt (typed twice), or from
``STEPMAIL_NEW_USER_PASSWORD`` when a script creates the account; it is never a flag, so it
stays out of shell history and process lists.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from orchestrator.accounts.passwords import make_hasher
from orchestrator.accounts.roles import Role
from orchestrator.accounts.users import User
from orchestrator.cli.arguments import utf8_text
from orchestrator.cli.output import printable
from orchestrator.clock import SystemClock
from orchestrator.errors import InvalidField
from orchestrator.runtime import open_engine
from orchestrator.services import accounts
from orchestrator.settings import load_settings

app = typer.Typer(no_args_is_help=True, help="Console users: who may sign in, with which role.")
PASSWORD_VARIABLE = "STEPMAIL_NEW_USER_PASSWORD"  # noqa: S105  (a variable name)


@app.command("add")
def add_command(
    email: str,
    role: Annotated[Role, typer.Option("--role", help="admin | editor | csm | viewer")],
) -> None:
    """Add a console user (password from a prompt, or STEPMAIL_NEW_USER_PASSWORD)."""
    utf8_text("EMAIL", email)
    password = _new_password()
    with open_engine(load_settings()) as engine:
        user = accounts.add_user(
            engine, email, role, password, hasher=make_hasher(), clock=SystemClock()
        )
    typer.echo(f"added {printable(user.email)} ({user.role.value})")


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON array")] = False,
) -> None:
    """Every console user: address, role, created, disabled."""
    with open_engine(load_settings()) as engine:
        found = accounts.list_users(engine)
    if as_json:
        typer.echo(json.dumps([_plain(user) for user in found], ensure_ascii=False, indent=2))
        return
    for user in found:
        state = f"disabled {user.disabled_at.isoformat()}" if user.disabled_at else "active"
        fields = (user.email, user.role.value, user.created_at.isoformat(), state)
        typer.echo("\t".join(map(printable, fields)))
    if not found:
        typer.echo("no console users yet: stepmail users add EMAIL --role admin")


@app.command("disable")
def disable_command(email: str) -> None:
    """Disable a console user: their sessions end at once; the audit log keeps their name."""
    utf8_text("EMAIL", email)
    with open_engine(load_settings()) as engine:
        user = accounts.disable_user(engine, email, clock=SystemClock())
    typer.echo(f"disabled {printable(user.email)}")


def _new_password() -> str:
    given = os.environ.get(PASSWORD_VARIABLE)
    if given:
        return given
    if not sys.stdin.isatty():
        raise InvalidField(
            PASSWORD_VARIABLE, "is unset and there is no terminal to ask for the password"
        )
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _plain(user: User) -> dict[str, object]:
    return {
        "email": user.email,
        "role": user.role.value,
        "created_at": user.created_at.isoformat(),
        "disabled_at": user.disabled_at.isoformat() if user.disabled_at else None,
    }
