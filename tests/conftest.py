"""Fixtures shared across test folders: the CLI's tiny preset, and hand-written run directories.

A hand-written run directory is what the engine writes (config, typed events, metrics,
results), made in milliseconds without training, so the TUI and run-status tests do not
depend on the engine.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import pytest
import yaml

from rcekd_core.atomic import atomic_write
from rcekd_core.runs.events import (
    End,
    Epoch,
    Error,
    EventWriter,
    FitStart,
    Phase,
    Result,
    RunStart,
)
from rcekd_core.runs.store import RunDir, csv_text

TINY = {
    "name": "tiny",
    "data": {"source": "demo", "n_users": 120, "n_items": 60, "n_clusters": 6, "mean_len": 12},
    "teacher": {"dim": 16, "blocks": 1, "heads": 1, "max_len": 20},
    "student": {"dim": 4, "blocks": 1, "heads": 1, "max_len": 20},
    "teacher_train": {"epochs": 3, "patience": 5},
    "student_train": {"epochs": 2, "patience": 5},
    "methods": ["scratch", "kd", "rcekd"],
    "kd": {"K": 5},
    "rcekd": {"K": 5, "L": 5, "M": 10},
}


@pytest.fixture
def tiny_settings() -> dict:
    """The CLI tests' tiny experiment (a preset file's content)."""
    return copy.deepcopy(TINY)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RCEKD_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def preset(home, tiny_settings):
    path = home / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_settings))
    return str(path)


# test NDCG@10 of each method at seed 0 (seed s adds s/1000): rcekd is the best student
NDCG = {"teacher": 0.30, "popularity": 0.05, "scratch": 0.10, "kd": 0.12, "rcekd": 0.15}


def _rows(model: str, method: str, seed: int | None) -> list[dict]:
    base = NDCG[method] + (seed or 0) / 1000
    return [{"model": model, "method": method, "seed": seed, "split": split,
             "NDCG@10": base + shift, "Recall@10": 2 * base + shift, "NDCG@20": base + 0.02,
             "Recall@20": 2 * base + 0.04, "overlap@10": 0.5 if model == "teacher" else 0.2, "best_epoch": 2}
            for split, shift in (("valid", 0.01), ("test", 0.0))]


def write_run_dir(path: Path, *, end: str | None = "finished", methods=("scratch", "rcekd"), seeds=(0,),
                  epochs: int = 3, results: bool = True) -> RunDir:
    """A run directory as the engine leaves it; `end=None`: no end event yet (running or crashed)."""
    run = RunDir(path).create()
    run.write_config({"name": "demo", "data": {"source": "demo", "file": None}, "methods": list(methods),
                      "seeds": list(seeds), "teacher_train": {"epochs": epochs}})
    w, metrics, rows = EventWriter(run.events), [], []
    w.emit(RunStart(name="demo", device="cpu", dataset={"users": 120, "items": 60, "interactions": 1400},
                    methods=list(methods), seeds=list(seeds)))
    fits = [("teacher", "teacher", 0)] + [("student", m, s) for m in methods for s in seeds]
    for model, method, seed in fits:
        w.emit(Phase(phase="teacher", cached=False, key="k0") if model == "teacher"
               else Phase(phase="student", method=method, seed=seed))
        w.emit(FitStart(model=model, method=method, seed=seed, epochs=epochs, batches=4))
        for n in range(1, epochs + 1):
            values = {"loss": 3.0 - n / 10, "base_loss": 2.5 - n / 10}
            if method not in ("teacher", "scratch"):
                values |= {"kd_loss": 1.0 / n, "overlap@10": 0.1 * n}
            ev = Epoch(model=model, method=method, seed=seed, epoch=n, seconds=0.5, best_epoch=n,
                       valid={"NDCG@10": 0.01 * n, "Recall@10": 0.02 * n}, values=values)
            w.emit(ev)
            metrics.append(ev.row())
        new = _rows(model, method, seed) + (_rows("popularity", "popularity", None) if model == "teacher" else [])
        w.emit(Result(rows=new))
        rows += new
    if end == "failed":
        w.emit(Error(message="boom", kind="ValueError"))
    if end is not None:
        w.emit(End(status=end))
    w.close()
    atomic_write(run.metrics, csv_text(metrics))
    if results:
        run.write_results(rows)
    return run


@pytest.fixture
def write_run(tmp_path) -> Callable[..., RunDir]:
    """write_run(name, **options): a hand-written run directory under tmp_path/runs (see write_run_dir)."""

    def make(name: str = "run", **options) -> RunDir:
        return write_run_dir(tmp_path / "runs" / name, **options)

    return make
