"""An optional file (health, lifecycle, programs) that is there but cannot be reached: a
symlink loop, say. ``Path.exists`` answers False for it, as for no file, so ``stepmail check``
said nothing, while the runtime's ``stat`` raised OSError (ELOOP) and simulate and the
worker died. Both now name the file, as a JourneyError, as a file that cannot be read is."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from orchestrator.errors import JourneyError
from orchestrator.journeys.yaml_files import load_problems

Definition = TypeVar("Definition")


def unreachable(path: Path, exc: OSError) -> JourneyError:
    return JourneyError(str(path), None, None, f"cannot read: {exc.strerror or exc}")


def read_optional(read: Callable[[Path], Definition | None], path: Path) -> Definition | None:
    """``read`` (a ``read_when_changed`` loader), with a file it cannot reach a JourneyError."""
    try:
        return read(path)
    except OSError as exc:
        raise unreachable(path, exc) from None


def optional_problems(path: Path, load: Callable[[Path], object]) -> list[str]:
    """For ``stepmail check``: ``load_problems``, and a name there that leads to no file."""
    if os.path.lexists(path) and not path.exists():
        try:
            path.stat()
        except OSError as exc:
            return [str(unreachable(path, exc))]
    return load_problems(path, load)
