"""`rcekd distill --workers N`: the sequential run's results, one run directory for watch and the
TUI, SIGTERM stops the workers too, and a bad N is refused before anything is written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from rcekd_core.runs.events import End, Epoch, FitStart, read_events
from rcekd_core.runs.store import RunDir
from rcekd_tui.cli import app
from rcekd_tui.follow import RunState

runner = CliRunner()  # fixtures home, preset (the tiny experiment): tests/conftest.py
FITS = ["--methods", "scratch,rcekd", "--seeds", "0,1"]


@pytest.fixture
def one_thread(monkeypatch):
    """The sequential run at the workers' thread count: floating-point sums then agree exactly."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(before)


def test_workers_give_the_sequential_results_in_one_run_directory(preset, home, one_thread):
    teacher = runner.invoke(app, ["train-teacher", "--preset", preset, "--run-dir", str(home / "t")])
    assert teacher.exit_code == 0, teacher.output  # both runs below load it from the cache
    for name, n in (("seq", "1"), ("par", "2")):
        res = runner.invoke(app, ["distill", "--preset", preset, *FITS, "--workers", n, "--run-dir", str(home / name)])
        assert res.exit_code == 0, res.output
    seq, par = RunDir(home / "seq"), RunDir(home / "par")
    assert par.results.read_bytes() == seq.results.read_bytes()  # rows in the sequential order, same numbers
    assert not seq.parts.exists() and [p.name for p in par.all_parts()] == ["0", "1"]

    events = read_events(par.events)
    assert events[0].type == "run_start" and [e.status for e in events if isinstance(e, End)] == ["finished"]
    fits = {(m, s) for m in ("scratch", "rcekd") for s in (0, 1)}
    epochs = {(e.method, e.seed, e.epoch) for e in events if isinstance(e, Epoch) and e.model == "student"}
    assert epochs == {(m, s, n) for m, s in fits for n in (1, 2)}
    keys = lambda run: sorted(tuple(r[k] for k in ("model", "method", "seed", "epoch"))  # noqa: E731
                              for r in run.read_metric_rows())
    assert keys(par) == keys(seq)
    assert {p.name for p in par.checkpoints.glob("student-*")} == {f"student-{m}-{s}.pt" for m, s in fits}

    state = RunState()  # what `rcekd watch` and the TUI fold the events into
    state.apply(events)
    assert {k[1:] for k in state.series if k[0] == "student"} == fits
    assert state.status == "finished" and state.fits_done == 1 + len(fits)


def test_the_live_screen_shows_every_fit_in_flight():
    state = RunState()
    state.apply([FitStart(model="student", method="kd", seed=0, epochs=10),
                 FitStart(model="student", method="kd", seed=1, epochs=10),
                 Epoch(model="student", method="kd", seed=0, epoch=3, seconds=1.0),
                 Epoch(model="student", method="kd", seed=1, epoch=1, seconds=1.0)])
    line = state.status_line()
    assert "kd seed 0 epoch 3/10" in line and "kd seed 1 epoch 1/10" in line
    assert state.eta_seconds() == (7 + 9) / 2  # the two fits' epochs left, run side by side


@pytest.mark.parametrize("n", ["0", "-2"])
def test_bad_workers_exit_2_and_write_nothing(n, home):
    d = home / "bad"
    res = runner.invoke(app, ["distill", "--workers", n, "--run-dir", str(d)])
    assert res.exit_code == 2 and "--workers" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not d.exists()


def test_resume_takes_the_workers_it_started_with(write_run, home):
    run = write_run(end="stopped")
    res = runner.invoke(app, ["distill", "--resume", str(run.root), "--workers", "2"])
    assert res.exit_code == 2 and "drop --workers" in res.output


def test_sigterm_of_the_parent_stops_the_workers(preset, home):
    d = home / "run"
    cmd = [sys.executable, "-m", "rcekd_tui", "distill", "--preset", preset, *FITS, "--workers", "2",
           "--set", "student_train.epochs=500", "--set", "student_train.patience=1000", "--run-dir", str(d)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 240
        while len({(e.method, e.seed) for e in read_events(RunDir(d).events)
                   if isinstance(e, Epoch) and e.model == "student"}) < 2:  # both workers train
            assert proc.poll() is None and time.monotonic() < deadline, "the workers did not start training"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    run = RunDir(d)
    assert read_events(run.events)[-1].status == "stopped"
    parts = run.all_parts()
    assert len(parts) == 2
    for part in parts:  # each worker saved its state, recorded the stop and ended
        assert not part.is_locked() and read_events(part.events)[-1].status == "stopped"
    assert list(run.checkpoints.glob("student-*.resume.pt"))  # adopted: `--resume` continues from there
