"""Optional definition files are read once and again only when the file changes: an edit in
place, or a symlink switched to another release's file (a deploy), even with the same
modification time, and never while the file stays the same (the API asks on every request)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from orchestrator.journeys.yaml_files import read_when_changed


def counting_reader() -> tuple[list[Path], Callable[[Path], str | None]]:
    loads: list[Path] = []

    def load(path: Path) -> str:
        loads.append(path)
        return path.read_text()

    return loads, read_when_changed(load)


def test_an_unchanged_file_is_read_once_and_an_edit_is_read_again(tmp_path: Path) -> None:
    loads, read = counting_reader()
    path = tmp_path / "health.yaml"
    path.write_text("one")
    assert [read(path), read(path)] == ["one", "one"]
    assert len(loads) == 1
    path.write_text("two")
    stamp = path.stat().st_mtime_ns + 1_000_000
    os.utime(path, ns=(stamp, stamp))
    assert read(path) == "two"
    assert len(loads) == 2


def test_a_symlink_switched_to_a_file_with_the_same_time_is_read_again(tmp_path: Path) -> None:
    _loads, read = counting_reader()
    first, second = tmp_path / "release-1.yaml", tmp_path / "release-2.yaml"
    first.write_text("first")
    second.write_text("second")
    stamp = first.stat().st_mtime_ns
    for release in (first, second):
        os.utime(release, ns=(stamp, stamp))
    link = tmp_path / "lifecycle.yaml"
    link.symlink_to(first)
    assert read(link) == "first"
    link.unlink()
    link.symlink_to(second)
    assert read(link) == "second"


def test_a_missing_file_is_none(tmp_path: Path) -> None:
    _loads, read = counting_reader()
    assert read(tmp_path / "absent.yaml") is None
    assert read(tmp_path / "absent.yaml" / "below") is None
