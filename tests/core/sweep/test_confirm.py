"""`confirm`: every method's best settings in one run reproduce each best trial on seed 0."""

from __future__ import annotations

import pytest

from rcekd_core.errors import ConfigError
from rcekd_core.experiment import run_experiment
from rcekd_core.sweep.confirm import confirm_config
from rcekd_core.sweep.report import best
from rcekd_core.sweep.worker import work


def test_confirm_on_seed_0_reproduces_every_best_trial(make_sweep, home):
    opened = make_sweep("kd.lam=log:1e-3..1", "rcekd.lam=log:1e-2..1", methods="scratch,kd,rcekd", budget=2,
                        sampler="tpe", epochs=3)
    work(opened.sweep, opened.plan, opened.storage, opened.url)
    cfg, bests = confirm_config(opened, [0])
    assert cfg.methods == ["scratch", "kd", "rcekd"] and cfg.seeds == [0]
    assert cfg.student_train.epochs == 3  # the sweep's cap, not the preset's
    assert cfg.kd.lam == bests["kd"].values["kd.lam"] and cfg.rcekd.lam == bests["rcekd"].values["rcekd.lam"]
    rows = run_experiment(cfg, home / "confirm")
    valid = {r["method"]: r["NDCG@10"] for r in rows if r["model"] == "student" and r["split"] == "valid"}
    for method, b in bests.items():
        assert valid[method] == pytest.approx(b.value, rel=1e-9, abs=1e-12), method


def test_confirm_refuses_a_sweep_with_trials_left(make_sweep):
    opened = make_sweep("kd.lam=0.1,1", methods="kd")
    with pytest.raises(ConfigError, match="trials left .*kd 2"):
        confirm_config(opened, [0, 1])
    assert best(opened.plan, opened.storage)["kd"].progress.waiting == 2
