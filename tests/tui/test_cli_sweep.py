"""`rcekd sweep` end to end: bad input, two worker processes, a worker killed mid-trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from rcekd_core.runs.store import RunDir
from rcekd_tui.cli import app

runner = CliRunner()  # fixtures home, preset (the tiny experiment): tests/conftest.py


def studies(sweep) -> dict[str, list[optuna.trial.FrozenTrial]]:
    url = f"sqlite:///{sweep / 'study.db'}"
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=url).get_trials()
            for s in optuna.get_all_study_summaries(url)}


@pytest.mark.parametrize("args, needle", [
    (["--param", "rcekd.lam=log:0..1"], "above 0"),
    (["--param", "rcekd.lam=2..1"], "low end must be below"),
    (["--param", "rcekd.lam"], "<method>.<setting>=<values>"),
    (["--param", "nope.lam=1,2"], "unknown method 'nope'"),
    (["--param", "rcekd.nope=1,2"], "no setting 'nope'"),
    (["--param", "rrd.lam=1,2"], "not in --methods"),
    (["--param", "rcekd.K=1000"], "must be ≥ rcekd.K (1000)"),
    (["--param", "kd.K=5,1000"], "exceeds the 60 items"),
    (["--param", "rcekd.lam=log:0.01..1", "--sampler", "grid"], "--sampler grid needs lists"),
    (["--sampler", "random"], "unknown --sampler"),
    (["--budget", "0"], "--budget"),
    (["--epochs", "0"], "--epochs"),
    (["--workers", "-1"], "--workers"),
    (["--storage", "nope:://x"], "not a database URL"),
    (["--storage", "nope://"], "no database driver"),
])
def test_bad_input_is_one_line_exit_2_and_no_directory(preset, home, args, needle):
    d = home / "bad"
    base = ["sweep", "start", "--preset", preset, "--methods", "scratch,kd,rcekd", "--dir", str(d)]
    if "--budget" not in args:
        base += ["--budget", "2"]
    res = runner.invoke(app, base + args)
    assert res.exit_code == 2, res.output
    assert needle in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not d.exists()


def test_commands_on_a_folder_that_holds_no_sweep_exit_2(home):
    (home / "empty").mkdir()
    for cmd in ("work", "best", "show", "confirm"):
        res = runner.invoke(app, ["sweep", cmd, str(home / "empty")])
        assert res.exit_code == 2 and "holds no sweep" in res.output, res.output


def test_two_workers_spend_the_budget_without_running_anything_twice(preset, home):
    d = home / "sw"
    res = runner.invoke(app, ["sweep", "start", "--preset", preset, "--methods", "scratch,kd,rcekd", "--budget", "3",
                              "--sampler", "grid", "--param", "kd.lam=0.001,0.01,0.1,1", "--param", "rcekd.beta=1,3",
                              "--workers", "2", "--dir", str(d)])
    assert res.exit_code == 0, res.output
    assert "its whole grid of 2" in res.output  # grid budget: min(budget, grid size), said at start
    trials = studies(d)
    assert {m: len(ts) for m, ts in trials.items()} == {"scratch": 1, "kd": 3, "rcekd": 2}
    assert all(t.state == TrialState.COMPLETE for ts in trials.values() for t in ts)
    for m, ts in trials.items():  # no grid point twice
        assert len({tuple(sorted(t.params.items())) for t in ts}) == len(ts)
    expected = {f"{m}-{t.number}" for m, ts in trials.items() for t in ts}
    assert {p.name for p in (d / "trials").iterdir()} == expected  # one run directory per trial, no other
    for m, ts in trials.items():
        for t in ts:
            run = RunDir(d / "trials" / f"{m}-{t.number}")
            events = [json.loads(x) for x in run.events.read_text().splitlines()]
            assert [e["type"] for e in events].count("run_start") == 1 and events[-1]["status"] == "finished"
            assert run.read_config()["runtime"]["teacher_cached"] is True  # trained once, before the workers
            assert {r["method"] for r in run.read_result_rows() if r["model"] == "student"} == {m}
    assert (d / "teacher" / "results.csv").is_file()
    workers = {t.user_attrs["worker"].rsplit(":", 1)[1] for ts in trials.values() for t in ts}
    assert 1 <= len(workers) <= 2 and str(os.getpid()) not in workers  # run by the worker processes
    assert len(list((d / "logs").glob("worker-*.log"))) == 2
    best = runner.invoke(app, ["sweep", "best", str(d)])
    assert best.exit_code == 0 and "3/3" in best.output and "2/2" in best.output, best.output
    show = runner.invoke(app, ["sweep", "show", str(d)])
    assert show.exit_code == 0 and "kd.lam" in show.output, show.output
    assert "validation NDCG@10 against lam" in show.output and "against beta" in show.output  # the charts
    rows = (d / "sensitivity.csv").read_text().splitlines()
    assert rows[0] == "method,parameter,value,valid_NDCG@10,trial,state" and len(rows) == 1 + 3 + 2
    again = runner.invoke(app, ["sweep", "start", "--preset", preset, "--budget", "1", "--dir", str(d)])
    assert again.exit_code == 2 and "sweep work" in again.output


def wait_for_student_epoch(trial_dir, proc, timeout=180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the worker ended before it could be killed"
        rows = RunDir(trial_dir).read_metric_rows()
        if any(r["model"] == "student" for r in rows):
            return
        time.sleep(0.05)
    raise AssertionError("no student epoch within the timeout")


def test_a_worker_killed_mid_trial_and_a_restarted_worker_complete_the_budget(preset, home, monkeypatch):
    monkeypatch.setenv("RCEKD_SWEEP_HEARTBEAT", "1")  # stale after 4 s instead of minutes
    d = home / "sw"
    res = runner.invoke(app, ["sweep", "start", "--preset", preset, "--methods", "kd", "--budget", "2",
                              "--param", "kd.lam=log:1e-3..1", "--epochs", "25", "--set", "student_train.patience=100",
                              "--workers", "0", "--dir", str(d)])
    assert res.exit_code == 0, res.output
    proc = subprocess.Popen([sys.executable, "-m", "rcekd_tui", "sweep", "work", str(d)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        wait_for_student_epoch(d / "trials" / "kd-0", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert [t.state for t in studies(d)["kd"]] == [TrialState.RUNNING, TrialState.WAITING]
    res = runner.invoke(app, ["sweep", "work", str(d)])
    assert res.exit_code == 0, res.output
    trials = studies(d)["kd"]
    killed, *rest = trials
    assert killed.state == TrialState.FAIL and "outcome" not in killed.user_attrs  # not spent: retried
    assert [t.state for t in rest] == [TrialState.COMPLETE, TrialState.COMPLETE]
    retry = next(t for t in rest if t.system_attrs.get("failed_trial") == killed.number)
    assert retry.params == killed.params  # the same values, run again in a new trial
    assert sorted(p.name for p in (d / "trials").iterdir()) == [f"kd-{t.number}" for t in trials]
    killed_run = RunDir(d / "trials" / "kd-0").events.read_text().splitlines()
    assert not any(json.loads(x)["type"] == "end" for x in killed_run)  # it died mid-fit
    assert "2/2" in res.output


def grid_sweep(preset, d):
    """scratch and kd (λ 0.001 or 1), 2 epochs each, in sweep folder d: (d, kd's best trial)."""
    res = runner.invoke(app, ["sweep", "start", "--preset", preset, "--methods", "scratch,kd", "--budget", "2",
                              "--sampler", "grid", "--param", "kd.lam=0.001,1", "--epochs", "2", "--dir", str(d)])
    assert res.exit_code == 0, res.output
    return d, max((t for t in studies(d)["kd"]), key=lambda t: t.value)


def test_confirm_runs_every_best_setting_on_the_seeds_in_worker_processes(preset, home):
    d, chosen = grid_sweep(preset, home / "sw")
    res = runner.invoke(app, ["sweep", "confirm", str(d), "--seeds", "0,1", "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert "each row tuned with the same budget of 2 trials" in res.output.replace("\n", " ")
    run = RunDir(d / "confirm")
    rows = [r for r in run.read_result_values() if r["model"] == "student"]
    assert {(r["method"], r["seed"]) for r in rows} == {("scratch", 0), ("scratch", 1), ("kd", 0), ("kd", 1)}
    assert run.read_config()["kd"]["lam"] == chosen.params["kd.lam"]
    assert run.read_config()["runtime"]["workers"] == 2
    valid0 = next(r for r in rows if r["method"] == "kd" and r["seed"] == 0 and r["split"] == "valid")
    assert valid0["NDCG@10"] == pytest.approx(chosen.value, rel=1e-6)  # seed 0 reproduces the trial (csv: 7 digits)
    assert (run.root / "summary.csv").is_file()


def test_confirm_reuse_trials_fits_the_other_seeds_and_joins_the_best_trials(preset, home):
    d, chosen = grid_sweep(preset, home / "sw")
    for args, needle in ((["--seeds", "1,2", "--reuse-trials"], "include it in --seeds"),
                         (["--out", str(home / "x")], "add --reuse-trials")):
        res = runner.invoke(app, ["sweep", "confirm", str(d), *args])
        assert res.exit_code == 2 and needle in res.output and len(res.output.strip().splitlines()) == 1, res.output
        assert not (d / "confirm").exists() and not (d / "confirmed").exists() and not (home / "x").exists()

    res = runner.invoke(app, ["sweep", "confirm", str(d), "--seeds", "0,1", "--reuse-trials"])
    assert res.exit_code == 0, res.output
    fitted = {(r["method"], r["seed"]) for r in RunDir(d / "confirm").read_result_values() if r["model"] == "student"}
    assert fitted == {("scratch", 1), ("kd", 1)}  # seed 0 was not fitted again
    joined = RunDir(d / "confirmed")
    rows = [r for r in joined.read_result_values() if r["model"] == "student"]
    assert {(r["method"], r["seed"]) for r in rows} == {("scratch", 0), ("scratch", 1), ("kd", 0), ("kd", 1)}
    trial = RunDir(d / "trials" / f"kd-{chosen.number}")
    from_trial = [r for r in trial.read_result_values() if r["model"] == "student"]
    assert [r for r in rows if r["method"] == "kd" and r["seed"] == 0] == from_trial  # the trial's rows, as they are
    assert (joined.root / "summary.csv").is_file()
    res = runner.invoke(app, ["sweep", "confirm", str(d), "--seeds", "0,1", "--reuse-trials", "--run-dir",
                              str(home / "again")])
    assert res.exit_code == 2 and "already holds results" in res.output, res.output
    assert not (home / "again").exists()  # refused before any fit
