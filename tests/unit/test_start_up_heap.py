"""A worker process freezes what start-up built once its runtime exists, so full garbage
collections stop rescanning the ~150,000 objects that live as long as the process, and
collects its youngest objects less often than the default."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import orchestrator.runtime as runtime_module


@pytest.fixture
def unfrozen() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process keeps collecting everything, as before
    gc.set_threshold(*thresholds)
    runtime_module.install_runtime(None)


def test_a_worker_building_its_runtime_freezes_the_start_up_heap(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[bool] = []

    def compile_templates() -> int:
        compiled.append(True)
        return 0

    built: Any = SimpleNamespace(
        catalog=SimpleNamespace(compile_templates=compile_templates),
        read_definitions=lambda sends_only: compiled.append(sends_only),
    )
    monkeypatch.setattr(runtime_module, "build_runtime", lambda settings: built)
    runtime_module.install_runtime(None)
    assert gc.get_freeze_count() == 0

    assert runtime_module.current_runtime() is built
    assert compiled == [True, True]  # templates compiled, the send path's files read, settled

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == runtime_module.YOUNG_COLLECTION_EVERY
    frozen = gc.get_freeze_count()
    runtime_module.current_runtime()  # already built: nothing frozen or compiled again
    assert gc.get_freeze_count() == frozen
    assert compiled == [True, True]


@pytest.fixture
def default_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_an_api_process_collects_its_young_generation_less_often(
    unfrozen: None, default_thresholds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``stepmail api --workers N``'s app factory: the young generation's threshold is raised
    (a batch of events allocates ~25 times Python's 700), the older ones keep theirs."""
    from orchestrator.processes import serve

    monkeypatch.setattr(serve, "load_settings", lambda: object())
    monkeypatch.setattr(serve, "quiet_uvicorn_access_log", lambda: None)
    built = SimpleNamespace(close=None, read_definitions=lambda sends_only: None)
    monkeypatch.setattr(serve, "build_runtime", lambda settings: built)
    app = SimpleNamespace(router=SimpleNamespace(on_shutdown=[]))
    monkeypatch.setattr(serve, "create_app", lambda runtime, processes=1: app)
    monkeypatch.setattr(
        "orchestrator.processes.log_hygiene.configure_process_logging", lambda settings: None
    )

    serve.api_app()

    assert gc.get_threshold() == (runtime_module.YOUNG_COLLECTION_EVERY, 10, 10)
    assert gc.get_freeze_count() > 0
