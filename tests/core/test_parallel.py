"""`workers` > 1 in the engine: a STOP during a parallel run stops it and a resume completes it
with the sequential run's results (a fit stopped before its first saved state starts over in its
worker, its partial rows dropped); a failed worker fails the run with its error."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcekd_core.config import load_config
from rcekd_core.errors import WorkerFailed
from rcekd_core.experiment import resume_experiment, run_experiment
from rcekd_core.parallel import deal
from rcekd_core.runs.events import End, Epoch, Error, Result, read_events
from rcekd_core.runs.store import RunDir

TINY = {
    "name": "tiny",
    "data": {"source": "demo", "n_users": 60, "n_items": 40, "n_clusters": 4, "mean_len": 8},
    "teacher": {"dim": 8, "blocks": 1, "heads": 1, "max_len": 10},
    "student": {"dim": 4, "blocks": 1, "heads": 1, "max_len": 10},
    "teacher_train": {"epochs": 2, "patience": 5},
    # long enough that a STOP reaches the workers mid-share, short enough for a test
    "student_train": {"epochs": 25, "patience": 100},
    "methods": ["scratch", "rcekd"], "seeds": [0, 1], "rcekd": {"K": 5, "L": 5, "M": 10},
}


def fit_epochs(run: Path) -> list[tuple[str, str, str, str]]:
    """(model, method, seed, epoch) of every metrics.csv row, sorted (a repeated epoch shows)."""
    return sorted(tuple(r[k] for k in ("model", "method", "seed", "epoch")) for r in RunDir(run).read_metric_rows())


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, module_home):
    """The teacher in the cache, then the sequential run that a parallel one must reproduce."""
    root = tmp_path_factory.mktemp("seq")
    run_experiment(load_config("demo", TINY), root / "teacher", teacher_only=True)
    run_experiment(load_config("demo", TINY), root / "run")
    return root / "run"


def test_fits_are_dealt_round_robin_in_the_sequential_order():
    todo = [("scratch", 0), ("scratch", 1), ("kd", 0), ("kd", 1), ("rcekd", 0)]
    assert deal(todo, 2) == [[("scratch", 0), ("kd", 0), ("rcekd", 0)], [("scratch", 1), ("kd", 1)]]
    assert deal(todo[:1], 3) == [[("scratch", 0)]]  # no idle worker
    assert deal(todo, 10**9) == [[fit] for fit in todo]  # a huge count costs nothing: one worker per fit at most


def test_a_stop_during_a_parallel_run_stops_it_and_resume_completes_it(sequential, tmp_path):
    run = tmp_path / "run"

    def stop_at_the_first_student_epoch(ev):
        if isinstance(ev, Epoch) and ev.model == "student":
            RunDir(run).request_stop()

    run_experiment(load_config("demo", TINY), run, display=stop_at_the_first_student_epoch, workers=2)
    events = read_events(RunDir(run).events)
    ends = [e for e in events if isinstance(e, End)]
    assert [e.status for e in ends] == ["stopped"] and events[-1] is ends[-1]
    finished = {(r["method"], r["seed"]) for r in RunDir(run).read_result_values()
                if r["model"] == "student" and r["status"] == "finished"}
    assert len(finished) < 4  # stopped mid-way
    for part in RunDir(run).all_parts():  # every worker has ended and recorded the stop
        assert not part.is_locked() and read_events(part.events)[-1].status == "stopped"
    assert RunDir(run).read_config()["runtime"]["workers"] == 2

    resume_experiment(run)
    assert read_events(RunDir(run).events)[-1].status == "finished"
    assert (run / "results.csv").read_bytes() == (sequential / "results.csv").read_bytes()
    assert fit_epochs(run) == fit_epochs(sequential)  # each epoch once: continued, not redone
    ckpt = {p.name for p in RunDir(run).checkpoints.glob("student-*")}
    assert ckpt == {f"student-{m}-{s}.pt" for m in TINY["methods"] for s in TINY["seeds"]}  # no state left over


def test_a_failed_worker_fails_the_run_with_its_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RCEKD_HOME", str(tmp_path / "home"))
    cfg = load_config("demo", TINY)
    run = tmp_path / "run"

    def corrupt_the_cache_after_the_teacher(ev):  # the parent has its teacher; the workers load it
        if isinstance(ev, Result) and ev.rows[0]["model"] == "teacher":
            (Path(RunDir(run).read_config()["runtime"]["teacher_cache"]) / "teacher.pt").write_bytes(b"x")

    with pytest.raises(WorkerFailed, match="corrupt"):
        run_experiment(cfg, run, display=corrupt_the_cache_after_the_teacher, workers=2)
    events = read_events(RunDir(run).events)
    assert events[-1].status == "failed"
    error = next(e for e in reversed(events) if isinstance(e, Error))
    assert "worker" in error.message and "corrupt" in error.message


def test_a_parallel_resume_starts_over_a_fit_stopped_inside_its_first_epoch(sequential, tmp_path,
                                                                            stop_in_rcekds_first_epoch):
    """Stopped during rcekd's first epoch (before any saved state) and resumed with 2 workers:
    the worker starts that fit over, and the partial epoch's row gives way to the redone one."""
    import yaml

    run = tmp_path / "run"
    stop_in_rcekds_first_epoch(run)
    run_experiment(load_config("demo", TINY), run)  # one process, so the stop lands where it is put
    partial = [r for r in RunDir(run).read_metric_rows() if r["method"] == "rcekd"]
    assert [(r["seed"], r["epoch"]) for r in partial] == [("0", "1")]
    assert not RunDir(run).resume_file("student", "rcekd", 0).is_file()
    config = yaml.safe_load(RunDir(run).config.read_text())
    config["runtime"]["workers"] = 2  # as if started with --workers 2: the resume deals the fits left
    RunDir(run).config.write_text(yaml.safe_dump(config, sort_keys=False))

    resume_experiment(run)
    assert [p.root.name for p in RunDir(run).all_parts()], "the resume ran no worker"
    assert fit_epochs(run) == fit_epochs(sequential)  # each epoch once
    assert (run / "results.csv").read_bytes() == (sequential / "results.csv").read_bytes()
