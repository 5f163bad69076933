"""Small journey files for tests, with the shipped onboarding's ``vars`` so its templates render."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.support.environment import STANDARD_JOURNEYS

# Two journeys a customer can choose between on the unsubscribe page (one name needs escaping).
TOPICS = {
    "tips": """
name: Product tips <b>&</b> tricks
steps:
  - id: hello
    after: 0d
    template: onboarding/welcome
  - id: more
    after: 1d
    template: onboarding/basics
""",
    "news": """
name: Monthly news
steps:
  - id: hello
    after: 0d
    template: onboarding/welcome
  - id: more
    after: 1d
    template: onboarding/basics
""",
}


def write_journeys(directory: Path, journeys: dict[str, str]) -> Path:
    """Write ``{id: yaml body}`` as ``<id>.yaml`` files (``id`` is added) and return the folder."""
    directory.mkdir(parents=True, exist_ok=True)
    for journey_id, body in journeys.items():
        (directory / f"{journey_id}.yaml").write_text(journey_text(journey_id, body), "utf-8")
    return directory


def journey_text(journey_id: str, body: str) -> str:
    """A journey file: its id, the onboarding's ``vars`` (so its templates render), ``body``."""
    onboarding = yaml.safe_load((STANDARD_JOURNEYS / "onboarding.yaml").read_text("utf-8"))
    template_vars = yaml.safe_dump({"vars": onboarding["vars"]}, allow_unicode=True)
    return f"id: {journey_id}\n{template_vars}{body}"


def standard_with(directory: Path, files: dict[str, str]) -> Path:
    """The frozen standard journeys copied to ``directory``, plus ``{file name: text}`` (a
    journey, lifecycle.yaml, programs.yaml…): behaviour tests add small files of their own."""
    shutil.copytree(STANDARD_JOURNEYS, directory)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def own_journeys(directory: Path) -> Path:
    """The standard journeys as an operator ready for production would have them: the demo's
    ``relay.example`` links (RFC 2606, refused in production) replaced by a real domain."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in STANDARD_JOURNEYS.glob("*.yaml"):
        text = source.read_text("utf-8").replace("relay.example", "relaycloud.co.jp")
        (directory / source.name).write_text(text, encoding="utf-8")
    return directory
