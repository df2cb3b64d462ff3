"""Resume in process: a STOP-file stop continues from its last epoch, a stop during the teacher
keeps one set of reference rows, changed data is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcekd_core.config import load_config
from rcekd_core.errors import ConfigError
from rcekd_core.experiment import resume_experiment, run_experiment
from rcekd_core.runs.events import Epoch
from rcekd_core.runs.store import RunDir

TINY = {
    "name": "tiny",
    "data": {"source": "demo", "n_users": 60, "n_items": 40, "n_clusters": 4, "mean_len": 8},
    "teacher": {"dim": 8, "blocks": 1, "heads": 1, "max_len": 10},
    "student": {"dim": 4, "blocks": 1, "heads": 1, "max_len": 10},
    "teacher_train": {"epochs": 3, "patience": 5}, "student_train": {"epochs": 4, "patience": 5},
    "methods": ["scratch", "rcekd", "de"], "rcekd": {"K": 5, "L": 5, "M": 10}, "de": {"experts": 3},
}


def stop_after(run: Path, n: int):
    """A display that touches STOP once n epoch events were emitted."""
    seen = []

    def display(ev):
        if isinstance(ev, Epoch):
            seen.append(ev)
            if len(seen) == n:
                RunDir(run).request_stop()
    return display


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    mp = pytest.MonkeyPatch()
    mp.setenv("RCEKD_HOME", str(root / "home"))
    run_experiment(load_config("demo", TINY), root / "run")
    mp.undo()
    return root / "run"


@pytest.mark.parametrize("point", [2, 5, 12])  # during the teacher; the first student; de (state of its own)
def test_a_stopped_run_resumes_from_its_last_epoch(point, full, tmp_path, monkeypatch):
    monkeypatch.setenv("RCEKD_HOME", str(tmp_path / "home"))
    run = tmp_path / "run"
    run_experiment(load_config("demo", TINY), run, display=stop_after(run, point))
    stopped = RunDir(run).read_result_values()
    assert {r["status"] for r in stopped} <= {"stopped", "finished"} and any(r["status"] == "stopped" for r in stopped)
    redone = []
    resume_experiment(run, display=lambda ev: redone.append(ev) if isinstance(ev, Epoch) else None)
    first = redone[0]
    assert first.epoch > 1  # continued, not started over
    assert (run / "results.csv").read_bytes() == (full / "results.csv").read_bytes()
    keys = lambda p: sorted(line.split(",")[:4] for line in (p / "metrics.csv").read_text().splitlines()[1:])  # noqa: E731
    assert keys(run) == keys(full)
    rows = RunDir(run).read_result_values()
    assert sum(r["model"] == "popularity" for r in rows) == 2  # one reference row per split


def test_resume_refuses_changed_data(tmp_path, monkeypatch):
    monkeypatch.setenv("RCEKD_HOME", str(tmp_path / "home"))
    data = tmp_path / "log.csv"
    lines = ["user,item,timestamp"] + [f"u{u},i{(u * 7 + t) % 30},{t}" for u in range(40) for t in range(8)]
    data.write_text("\n".join(lines) + "\n")
    cfg = load_config("demo", {**TINY, "data": {"source": "file", "file": str(data)}})
    run = tmp_path / "run"
    run_experiment(cfg, run, display=stop_after(run, 2))
    data.write_text("\n".join(lines[:-20]) + "\n")  # other interactions behind the same path
    with pytest.raises(ConfigError, match="data of .* changed since the run started"):
        resume_experiment(run)


def test_a_kill_after_the_teacher_reached_the_cache_still_reads_as_trained_here(full, tmp_path, monkeypatch):
    """Killed between publishing the teacher to the cache and writing its rows: the resumed run
    continues its own teacher fit (teacher_cached stays False), as the uninterrupted run."""
    from rcekd_core.experiment import Experiment

    monkeypatch.setenv("RCEKD_HOME", str(tmp_path / "home"))
    real = Experiment.add_results

    def killed_before_the_rows(self, rows):
        raise KeyboardInterrupt  # stands in for SIGKILL at that instant

    monkeypatch.setattr(Experiment, "add_results", killed_before_the_rows)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(load_config("demo", TINY), run)
    assert list((tmp_path / "home" / "teachers").iterdir())  # the teacher is in the cache
    monkeypatch.setattr(Experiment, "add_results", real)
    resume_experiment(run)
    assert (run / "results.csv").read_bytes() == (full / "results.csv").read_bytes()


def test_a_stop_inside_a_first_epoch_leaves_no_row_that_the_resumed_run_repeats(full, tmp_path, monkeypatch,
                                                                                stop_in_rcekds_first_epoch):
    """Stopped during rcekd's first epoch (no saved state yet): the fit starts over on resume, and
    the partial epoch's row gives way to the redone one (each epoch once, as in an unbroken run)."""
    monkeypatch.setenv("RCEKD_HOME", str(tmp_path / "home"))
    run = tmp_path / "run"
    stop_in_rcekds_first_epoch(run)
    run_experiment(load_config("demo", TINY), run)
    partial = [r for r in RunDir(run).read_metric_rows() if r["method"] == "rcekd"]
    assert [r["epoch"] for r in partial] == ["1"]  # the stopped epoch was logged
    assert not RunDir(run).resume_file("student", "rcekd", 0).is_file()  # and left no state to continue
    resume_experiment(run)
    keys = lambda p: sorted(line.split(",")[:4] for line in (p / "metrics.csv").read_text().splitlines()[1:])  # noqa: E731
    assert keys(run) == keys(full)
    assert (run / "results.csv").read_bytes() == (full / "results.csv").read_bytes()
