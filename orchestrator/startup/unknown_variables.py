"""Mistyped ``STEPMAIL_*`` names: pydantic-settings ignores what it does not know, so
``STEPMAIL_DATABSE_URL`` would silently leave the default database in place. Warn instead."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from orchestrator.settings import Settings

PREFIX = "STEPMAIL_"
# The test suite's server URLs (README, Development); the password `stepmail users add` reads.
NOT_SETTINGS = ("STEPMAIL_TEST_", "STEPMAIL_NEW_USER_PASSWORD")


def known_variables() -> list[str]:
    return sorted(PREFIX + name.upper() for name in Settings.model_fields)


def unknown_variable_warnings(
    environ: Mapping[str, str] | None = None, env_file: Path = Path(".env")
) -> list[str]:
    """One line per ignored variable, with the closest known name when there is one."""
    environ = os.environ if environ is None else environ
    known = known_variables()
    warnings = [
        _warning(name, "", known) for name in sorted(environ) if _is_unknown(name.upper(), known)
    ]
    for name in _dotenv_names(env_file):
        upper = name.upper()
        if _is_unknown(upper, known):
            warnings.append(_warning(name, f" (in {env_file})", known))
        elif not upper.startswith(PREFIX) and PREFIX + upper in known:
            warnings.append(f"{name} in {env_file} is ignored: did you mean {PREFIX}{upper}?")
    return warnings


def _is_unknown(upper: str, known: list[str]) -> bool:
    return upper.startswith(PREFIX) and not upper.startswith(NOT_SETTINGS) and upper not in known


def _warning(name: str, where: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name.upper(), known, n=1)
    hint = f": did you mean {close[0]}?" if close else ""
    return f"{name}{where} is not a Stepmail setting and is ignored{hint}"


def _dotenv_names(env_file: Path) -> list[str]:
    if not env_file.is_file():
        return []
    return [name for name in dotenv_values(env_file) if name]
