"""Studies hold exactly each method's budget; claims never exceed it; a requeued trial keeps its values."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from rcekd_core.errors import ConfigError
from rcekd_core.sweep.space import grid, parse_param
from rcekd_core.sweep.study import all_trials, claim, finish, progress, requeue


def states(opened, method):
    return [t.state for t in all_trials(opened.plan, opened.storage)[method]]


def test_every_method_starts_with_exactly_its_budget(make_sweep):
    tpe = make_sweep("kd.lam=log:1e-3..1", "rcekd.beta=1,3", methods="scratch,kd,rcekd", budget=3, sampler="tpe")
    assert tpe.plan.budgets == {"scratch": 1, "kd": 3, "rcekd": 3}  # nothing swept: one trial
    for m, n in tpe.plan.budgets.items():
        assert states(tpe, m) == [TrialState.WAITING] * n
    g = make_sweep("kd.lam=0.1,1", "rcekd.lam=0.1,1", "rcekd.beta=1,3,5", methods="kd,rcekd", budget=4, name="grid")
    assert g.plan.budgets == {"kd": 2, "rcekd": 4}  # at most the grid
    points = [t.system_attrs["fixed_params"] for t in all_trials(g.plan, g.storage)["rcekd"]]
    full = grid([parse_param("rcekd.lam=0.1,1"), parse_param("rcekd.beta=1,3,5")])
    assert len(points) == 4 and all(p in [{k: float(v) for k, v in f.items()} for f in full] for p in points)
    assert len({tuple(sorted(p.items())) for p in points}) == 4  # no grid point twice


def test_claims_stop_at_the_budget(make_sweep):
    opened = make_sweep("kd.lam=0.01,0.1,1", methods="kd", budget=3)
    plan, storage, url = opened.plan, opened.storage, opened.url
    first, second = claim(plan, storage, url, "kd"), claim(plan, storage, url, "kd")
    assert first.number != second.number  # two workers never hold the same trial
    third = claim(plan, storage, url, "kd")
    assert claim(plan, storage, url, "kd") is None  # three slots, three claims
    seen = []
    for c in (first, second, third):
        seen.append(c.trial.suggest_categorical("kd.lam", [0.01, 0.1, 1.0]))
        assert finish(url, c, TrialState.COMPLETE, 0.1, {"outcome": "complete"})
    assert sorted(seen) == [0.01, 0.1, 1.0]
    p = progress(plan, all_trials(plan, storage)["kd"], "kd")
    assert (p.spent, p.left, p.complete) == (3, 0, 3)


def test_a_requeued_trial_comes_back_with_its_values(make_sweep):
    opened = make_sweep("kd.lam=0.01,1", methods="kd")
    plan, storage, url = opened.plan, opened.storage, opened.url
    c = claim(plan, storage, url, "kd")
    value = c.trial.suggest_categorical("kd.lam", [0.01, 1.0])
    requeue(storage, url, c.trial.study, c.trial_id)
    trials = all_trials(plan, storage)["kd"]
    p = progress(plan, trials, "kd")
    assert (p.retried, p.waiting, p.spent) == (1, 2, 0)  # not spent: the budget is still 2 trials to run
    again = next(t for t in trials if t.system_attrs.get("failed_trial") == c.number)
    assert again.state == TrialState.WAITING and again.params == {"kd.lam": value}


def test_a_storage_holding_the_studies_is_refused_and_nothing_is_left(make_sweep, home):
    url = f"sqlite:///{home / 'shared.db'}"
    make_sweep("kd.lam=0.1,1", methods="kd", storage=url, name="first")
    with pytest.raises(ConfigError, match="already holds studies named kd"):
        make_sweep("kd.lam=0.1,1", methods="kd", storage=url, name="second")
    assert not (home / "second").exists()
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["kd"]


def test_start_refuses_an_existing_sweep(make_sweep):
    make_sweep("kd.lam=0.1,1", methods="kd")
    with pytest.raises(ConfigError, match="already holds a sweep"):
        make_sweep("kd.lam=0.1,1", methods="kd")


def test_a_journal_file_storage_runs_a_sweep(make_sweep, home):
    from rcekd_core.sweep.worker import work

    journal = home / "shared" / "sweep.log"
    opened = make_sweep("kd.lam=0.1", methods="kd", storage=str(journal))
    assert work(opened.sweep, opened.plan, opened.storage, opened.url) == 1
    assert journal.is_file() and not opened.sweep.db.exists()
    assert states(opened, "kd") == [TrialState.COMPLETE]
