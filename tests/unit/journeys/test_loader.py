"""Journey files: good ones load and compile; bad ones name the file, the line and the field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.errors import JourneyError
from orchestrator.journeys.compiler import compile_journey
from orchestrator.journeys.durations import parse_duration
from orchestrator.journeys.loader import load_journey
from tests.support.environment import START

GOOD = """\
id: sample
name: Sample
steps:
  - id: hello
    after: 0d
    template: onboarding/welcome
  - id: later
    after: 1d 12h
    template: onboarding/basics
    when: "tier == 'high'"
"""


def write(tmp_path: Path, text: str, name: str = "sample.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_compile_anchors_steps_and_marks_the_overdue_ones_missed(tmp_path: Path) -> None:
    journey = load_journey(write(tmp_path, GOOD))
    planned = compile_journey(journey, START - timedelta(days=2), START)
    assert [(p.step_id, p.due_at, p.missed) for p in planned] == [
        ("hello", START - timedelta(days=2), True),
        ("later", START - timedelta(hours=12), False),
    ]


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        (GOOD.replace("after: 1d 12h", "after: tomorrow"), 8, "steps.1.after", "duration"),
        (GOOD.replace("tier == 'high'", "tier ==="), 10, "steps.1.when", "invalid condition"),
        (GOOD.replace("  - id: later", "  - id: hello"), 1, None, "used twice"),
        (GOOD.replace("name: Sample", "name: Sample\ncolour: blue"), 3, "colour", "unknown key"),
        (
            GOOD.replace("after: 0d", "after: 0d\n    templete: x"),
            6,
            "steps.0.templete",
            "unknown key; did you mean 'template'?",
        ),
        (GOOD.replace("id: sample", "id: other"), 1, "id", "file name"),
        (
            GOOD.replace("    template: onboarding/basics\n", ""),
            7,
            "steps.1",
            "the required key 'template' is missing",
        ),
        ("id: sample\nsteps: [\n", 3, None, "invalid YAML"),
    ],
)
def test_errors_name_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str | None, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(JourneyError) as caught:
        load_journey(path)
    error = caught.value
    assert (error.path, error.line, error.field) == (str(path), line, field)
    assert message in error.message
    assert str(error).startswith(f"{path}:{line}: ")


def test_durations() -> None:
    assert parse_duration("1d 12h") == timedelta(days=1, hours=12)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(weeks=2)
    with pytest.raises(ValueError, match="duration"):
        parse_duration("3 days")
