"""``STEPMAIL_METRICS_DIR`` may be a folder the operator keeps other things in: a worker group
starting there removes the previous run's metric files (they would add to its counts) and
nothing else."""

from __future__ import annotations

from pathlib import Path

from orchestrator.processes.worker_metrics import prepare_metrics_dir


def test_only_the_previous_runs_metric_files_go(tmp_path: Path) -> None:
    folder = tmp_path / "var"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"old counts")
    (folder / "stepmail.sqlite").write_text("keep me")
    (folder / "notes").mkdir()

    assert prepare_metrics_dir(folder) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["notes", "stepmail.sqlite"]


def test_a_missing_folder_is_made_and_none_means_a_fresh_one(tmp_path: Path) -> None:
    assert prepare_metrics_dir(tmp_path / "a" / "b").is_dir()
    fresh = prepare_metrics_dir(None)
    assert fresh.is_dir() and list(fresh.iterdir()) == []
    fresh.rmdir()
