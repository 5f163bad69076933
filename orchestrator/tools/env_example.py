"""``.env.example``, written from the settings model, so it names every setting there is.

    python -m orchestrator.tools.env_example > .env.example

Each setting is a commented-out line with its default under its description (a setting's
docstring in :class:`~orchestrator.settings.Settings`): a copy of the file as it is runs on
the defaults, which production refuses until the secrets and the sender's identity are set.
``tests/release/test_env_example.py`` fails when the file and the model part ways.
"""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

from pydantic.fields import FieldInfo

from orchestrator.settings import Settings

WIDTH = 96
HEADER = """\
# Stepmail's settings, every one of them. Copy this file to .env (deploy/compose.yaml reads it)
# or to /etc/stepmail/stepmail.env (the systemd units in deploy/systemd read that), then set
# what your installation needs. Written by `python -m orchestrator.tools.env_example` from the
# settings' own descriptions: change those, not this file.
#
# An empty value means unset. Each setting below shows its default, commented out. In
# production (the default environment) Stepmail refuses to start until at least these are
# set: STEPMAIL_SIGNUP_HOOK_SECRET, STEPMAIL_SENDER_NAME, STEPMAIL_SENDER_EMAIL,
# STEPMAIL_SENDER_POSTAL_ADDRESS, STEPMAIL_SENDER_CONTACT, STEPMAIL_CSM_TEAM_EMAIL and
# STEPMAIL_PUBLIC_BASE_URL; then a real transport (STEPMAIL_MAIL_TRANSPORT=sendgrid with
# STEPMAIL_SENDGRID_API_KEY, or smtp), PostgreSQL and Redis for more than one process.

# deploy/compose.yaml only: the password of its PostgreSQL (it builds STEPMAIL_DATABASE_URL
# and STEPMAIL_REDIS_URL itself), where the host publishes the API, the project's name.
POSTGRES_PASSWORD=
# API_PUBLISH=127.0.0.1:8000
COMPOSE_PROJECT_NAME=stepmail
"""


def default_text(field: FieldInfo) -> str:
    """The default as it would be written in the file; unset ones are empty."""
    value = field.default
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return f"./{value}" if not value.is_absolute() else str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def setting_block(name: str, field: FieldInfo) -> str:
    description = " ".join((field.description or "").split())
    lines = textwrap.wrap(description, WIDTH - 2) or [""]
    comment = "\n".join(f"# {line}" for line in lines)
    return f"{comment}\n# STEPMAIL_{name.upper()}={default_text(field)}\n"


def env_example() -> str:
    blocks = [setting_block(name, field) for name, field in Settings.model_fields.items()]
    return HEADER + "\n" + "\n".join(blocks)


if __name__ == "__main__":
    print(env_example(), end="")
