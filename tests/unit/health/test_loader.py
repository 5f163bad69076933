"""The health file: a bad one names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import JourneyError
from orchestrator.health.loader import health_problems, load_health
from tests.support.environment import STANDARD_JOURNEYS


def test_a_bad_health_file_names_file_line_and_field(tmp_path: Path) -> None:
    text = (STANDARD_JOURNEYS / "health.yaml").read_text(encoding="utf-8")
    path = tmp_path / "health.yaml"
    path.write_text(text.replace("weight: 25", "weight: -1"), encoding="utf-8")
    with pytest.raises(JourneyError) as caught:
        load_health(path)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "weight: -1" in t)
    assert (caught.value.line, caught.value.field) == (line, "components.3.weight")
    path.write_text(text.replace("journey: health_tips", "journey: nope"), encoding="utf-8")
    assert health_problems(tmp_path, ["health_upsell", "health_follow_up"]) == [
        f"{path}: bands: a mail action names no journey 'nope'"
    ]
