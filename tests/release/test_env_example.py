""".env.example names every setting, with its description and its default, because it is
written from the settings model: a setting added without a description, or a file not
written again, fails here (``make env-example`` writes it)."""

from __future__ import annotations

import re

import pytest

from orchestrator.settings import Settings, load_settings
from orchestrator.tools.env_example import env_example
from tests.support.environment import ROOT

EXAMPLE = ROOT / ".env.example"


def test_the_file_is_the_one_the_model_writes() -> None:
    assert EXAMPLE.read_text() == env_example(), "run `make env-example` and commit .env.example"


def test_every_setting_is_described() -> None:
    for name, field in Settings.model_fields.items():
        description = field.description or ""
        assert len(description.split()) >= 3, f"STEPMAIL_{name.upper()}: describe it (docstring)"


def test_every_setting_has_its_line() -> None:
    text = EXAMPLE.read_text()
    for name in Settings.model_fields:
        assert re.search(rf"^# STEPMAIL_{name.upper()}=", text, re.MULTILINE), name


def test_the_defaults_shown_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uncommenting every line as it stands changes nothing: each shown default is the value."""
    for key, value in re.findall(r"^# (STEPMAIL_[A-Z_]+)=(.*)$", EXAMPLE.read_text(), re.MULTILINE):
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(ROOT / "tests")  # no .env of the developer's is read
    fresh = Settings.model_construct()
    loaded = load_settings()
    for name in Settings.model_fields:
        if name != "public_base_url":  # derived from HOST and PORT when unset
            assert getattr(loaded, name) == getattr(fresh, name), name


def test_a_copy_as_it_is_sets_nothing_but_the_compose_variables() -> None:
    active = [
        line.split("=", 1)[0]
        for line in EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert active == ["POSTGRES_PASSWORD", "COMPOSE_PROJECT_NAME"]
