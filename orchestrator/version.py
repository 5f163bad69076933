"""The release this code is, as installed: ``stepmail --version``, the OpenAPI document."""

from __future__ import annotations

from importlib import metadata


def stepmail_version() -> str:
    """The installed distribution's version (pyproject.toml is its one source)."""
    try:
        return metadata.version("stepmail")
    except metadata.PackageNotFoundError:  # a checkout run without installing it
        return "0+unknown"
