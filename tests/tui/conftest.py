"""A tiny finished run made by the engine once per session (a few seconds on a CPU), and the
function that makes one (the set-up tests start it instead of a process)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

TINY = {
    "data": {"n_users": 120, "n_items": 60, "n_clusters": 6, "mean_len": 12},
    "teacher": {"dim": 8, "blocks": 1, "heads": 1}, "student": {"dim": 4},
    "teacher_train": {"epochs": 2}, "student_train": {"epochs": 2},
    "methods": ["scratch", "rcekd"], "rcekd": {"K": 5, "L": 5, "M": 10}, "kd": {"K": 5},
}


def _run_tiny(run_dir: Path, overrides: dict | None = None) -> Path:
    from rcekd_core.config import load_config, merge
    from rcekd_core.experiment import run_experiment

    run_experiment(load_config("demo", merge(TINY, overrides or {})), run_dir)
    return run_dir


@pytest.fixture(scope="session")
def run_tiny() -> Callable[..., Path]:
    """run_tiny(run_dir, overrides=None): the tiny demo experiment, run by the engine into run_dir."""
    return _run_tiny


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rcekd_home")


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_home) -> Path:
    """runs_root/tiny-run holding a finished run; RCEKD_HOME points at a temp cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RCEKD_HOME", str(tiny_home))
    try:
        root = tmp_path_factory.mktemp("runs")
        return _run_tiny(root / "tiny-run")
    finally:
        mp.undo()


@pytest.fixture(autouse=True)
def _home(monkeypatch, tiny_home):
    monkeypatch.setenv("RCEKD_HOME", str(tiny_home))

