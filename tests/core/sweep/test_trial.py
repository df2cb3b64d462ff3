"""A trial is one run directory; diverged and pruned trials spend their slot and are never best."""

from __future__ import annotations

import csv

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from rcekd_core.errors import ConfigError
from rcekd_core.runs.events import StopRequested, read_events
from rcekd_core.runs.store import RunDir
from rcekd_core.sweep import study as study_module
from rcekd_core.sweep.confirm import confirm_config
from rcekd_core.sweep.report import best
from rcekd_core.sweep.study import all_trials
from rcekd_core.sweep.worker import work


def run(opened) -> dict[str, list[optuna.trial.FrozenTrial]]:
    work(opened.sweep, opened.plan, opened.storage, opened.url)
    return all_trials(opened.plan, opened.storage)


def test_a_diverged_trial_fails_and_is_never_best(make_sweep):
    # λ = 1e300 makes the loss inf at the first batch; rcekd has no other value to fall back on
    opened = make_sweep("kd.lam=0.01,1e300", "rcekd.lam=1e300", methods="kd,rcekd", epochs=2)
    trials = run(opened)
    kd = {t.params["kd.lam"]: t for t in trials["kd"]}
    assert kd[1e300].state == TrialState.FAIL and kd[1e300].user_attrs["outcome"] == "diverged"
    assert kd[0.01].state == TrialState.COMPLETE
    bests = best(opened.plan, opened.storage)
    assert bests["kd"].values == {"kd.lam": 0.01} and bests["kd"].value == kd[0.01].value
    assert bests["kd"].progress.spent == 2 and bests["kd"].progress.failed == 1  # the budget counts it
    assert bests["rcekd"].value is None and bests["rcekd"].progress.spent == 1
    # the trial's own run says why
    diverged_run = RunDir(opened.sweep.root / kd[1e300].user_attrs["run_dir"])
    assert {r["status"] for r in diverged_run.read_result_rows() if r["model"] == "student"} == {"diverged"}
    with opened.sweep.sensitivity.open() as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["method"], r["value"], r["state"]) for r in rows} == {
        ("kd", "0.01", "complete"), ("kd", "1e+300", "diverged"), ("rcekd", "1e+300", "diverged")}
    with pytest.raises(ConfigError, match="rcekd has no completed trial"):
        confirm_config(opened, [0])


def test_a_completed_trial_records_its_run_values_and_test_metrics(make_sweep):
    opened = make_sweep("kd.lam=0.05", methods="kd", epochs=3, sets=("student_train.patience=50",))
    (t,) = run(opened)["kd"]
    run_dir = RunDir(opened.sweep.trial_dir("kd", t.number))
    assert t.user_attrs["run_dir"] == f"trials/kd-{t.number}" and run_dir.results.is_file()
    cfg = run_dir.read_config()
    assert cfg["kd"]["lam"] == 0.05 and cfg["student_train"]["epochs"] == 3 and cfg["methods"] == ["kd"]
    assert cfg["seeds"] == [0]
    valid = next(r for r in run_dir.read_result_values() if r["model"] == "student" and r["split"] == "valid")
    test = next(r for r in run_dir.read_result_values() if r["model"] == "student" and r["split"] == "test")
    assert t.value == pytest.approx(valid["NDCG@10"], rel=1e-5)  # the objective: valid at the best epoch
    assert t.user_attrs["test_NDCG@10"] == pytest.approx(test["NDCG@10"], rel=1e-5)  # recorded, not chosen on
    assert t.user_attrs["epochs"] == 3


class PruneLargeLambda(optuna.pruners.BasePruner):
    """Prunes the trial with kd.lam = 1 at its first report, never the others."""

    def prune(self, study, trial) -> bool:
        return trial.params.get("kd.lam") == 1.0


def test_a_pruned_trial_stops_its_fit_and_is_never_best(make_sweep, monkeypatch):
    monkeypatch.setattr(study_module, "pruner", lambda plan: PruneLargeLambda())
    opened = make_sweep("kd.lam=0.01,1", methods="kd", epochs=4, prune=True, sets=("student_train.patience=50",))
    kd = {t.params["kd.lam"]: t for t in run(opened)["kd"]}
    pruned, kept = kd[1.0], kd[0.01]
    assert pruned.state == TrialState.PRUNED and pruned.user_attrs["epochs"] == 1  # stopped after its first epoch
    assert kept.state == TrialState.COMPLETE and kept.user_attrs["epochs"] == 4
    assert list(pruned.intermediate_values) == [1] and len(kept.intermediate_values) == 4
    run_dir = RunDir(opened.sweep.root / pruned.user_attrs["run_dir"])
    assert any(isinstance(e, StopRequested) for e in read_events(run_dir.events))
    assert best(opened.plan, opened.storage)["kd"].values == {"kd.lam": 0.01}
    assert yaml.safe_load(opened.sweep.plan.read_text())["prune"] is True
