"""A journey's text is parsed once: ``stepmail check`` loads it, then reads it again for the
lines of its problems, and PyYAML takes ~2 µs a character (4 s a parse of a journey with a
2 MB ``vars`` value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.journeys import yaml_files
from orchestrator.journeys.yaml_files import parse_mapping, read_text, read_tree


def test_a_text_parsed_already_is_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses: list[Path] = []
    load = yaml_files._load

    def counted(text: str, path: Path) -> Any:
        parses.append(path)
        return load(text, path)

    monkeypatch.setattr(yaml_files, "_load", counted)
    path = tmp_path / "welcome.yaml"
    path.write_text("id: welcome\nvars:\n  note: " + "word " * 1000 + "\n", "utf-8")
    root, _ = parse_mapping(read_text(path), path, "a journey file")
    assert read_tree(path, "a journey file") is root
    assert parses == [path]
    path.write_text("id: welcome\n", "utf-8")  # changed since: read as it is now
    changed = read_tree(path, "a journey file")
    assert changed is not root
    assert changed is not None
    assert [key.value for key, _ in changed.value] == ["id"]
    assert parses == [path, path]
