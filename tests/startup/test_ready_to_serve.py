"""A serving process reads its definition files (health, lifecycle, programs, the event
catalogue) before its first request: the first group of events after a start used to parse
their YAML while ~30 requests waited behind it (bench/README, "Session 23")."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import orchestrator.journeys.yaml_files as yaml_files
from orchestrator.errors import JourneyError
from orchestrator.runtime import Runtime, build_runtime, ready_to_serve
from orchestrator.transports.outbox import OutboxTransport
from tests.support.environment import ROOT, make_settings

DEFINITION_FILES = ("health.yaml", "lifecycle.yaml", "programs.yaml", "events.yaml")


@pytest.fixture
def journeys(tmp_path: Path) -> Path:
    """A copy of the shipped journeys (the test ones have no lifecycle or programs) at a path
    no other test used: the definitions are cached per file, so a path read before would be
    found in the cache whatever start-up did."""
    folder = tmp_path / "journeys"
    shutil.copytree(ROOT / "journeys", folder)
    for name in DEFINITION_FILES:
        assert (folder / name).exists(), f"the shipped journeys lost {name}"
    return folder


@pytest.fixture
def runtime(tmp_path: Path, database_url: str, journeys: Path) -> Iterator[Runtime]:
    settings = make_settings(tmp_path, database_url, journeys_dir=journeys)
    built = build_runtime(settings, transport=OutboxTransport(settings.outbox_dir))
    thresholds = gc.get_threshold()
    yield built
    built.close()
    gc.unfreeze()  # the test process keeps collecting everything, as before
    gc.set_threshold(*thresholds)


def refuse_parsing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every YAML parse from here on fails the caller and is recorded."""
    parsed: list[str] = []

    def parse(text: str, path: Path, what: str) -> object:
        parsed.append(path.name)
        raise AssertionError(f"{path.name} parsed while serving")

    monkeypatch.setattr(yaml_files, "parse_mapping", parse)
    return parsed


def test_a_ready_process_serves_events_and_signups_without_parsing_a_file(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready_to_serve(runtime)
    parsed = refuse_parsing(monkeypatch)

    rules = runtime.usage_rules()  # what every group of events asks for
    enrollment = runtime.enrollment_rules()  # and every group of signups
    deps = runtime.delivery_deps()  # and every batch of sends

    assert parsed == []
    assert rules.health is not None and rules.lifecycle is not None
    assert rules.catalogue is not None
    assert enrollment.first_stage is not None
    assert deps.programs is not None


def test_a_worker_reads_only_what_the_send_path_reads(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process serves only sends: its batches parse nothing, and the files only the
    API reads (health, lifecycle, the catalogue) are left unread."""
    ready_to_serve(runtime, sends_only=True)
    parsed = refuse_parsing(monkeypatch)

    assert runtime.delivery_deps().programs is not None
    assert parsed == []
    with pytest.raises(AssertionError, match="parsed while serving"):
        runtime.usage_rules()


def test_without_it_the_first_request_parses_them(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: on a runtime that was only built, the first ask parses."""
    parsed = refuse_parsing(monkeypatch)

    with pytest.raises(AssertionError, match="parsed while serving"):
        runtime.usage_rules()

    assert parsed


def test_a_broken_file_does_not_stop_start_up_and_still_fails_where_it_is_used(
    runtime: Runtime, journeys: Path
) -> None:
    """As before the change: the events path reports a broken health file, start-up did not."""
    (journeys / "health.yaml").write_text("bands: [unclosed\n", encoding="utf-8")

    ready_to_serve(runtime)

    with pytest.raises(JourneyError, match=r"health\.yaml"):
        runtime.usage_rules()
