"""The studies: one per method (named after it), created holding exactly its budget of WAITING
trials, so a method can never get more trials than another.

Workers only claim WAITING trials (never `ask` for new ones), so the budget holds with any
number of workers; a trial a worker cannot finish goes back to the queue with its values.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from ..errors import ConfigError
from .plan import SweepPlan
from .storage import claim_lock, experimental, has_heartbeat, retry_callback

OUTCOME = "outcome"  # user attr set on every trial a worker finished: complete | pruned | diverged | invalid
SPENT = ("complete", "pruned", "diverged", "invalid")


def create_studies(plan: SweepPlan, storage) -> None:
    """One study per method with its WAITING trials; refuses names the storage already holds."""
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    taken = [m for m in plan.methods if m in existing]
    if taken:
        raise ConfigError(f"the storage already holds studies named {', '.join(taken)} (another sweep); "
                          "pass another --storage")
    for method in plan.methods:
        study = optuna.create_study(storage=storage, study_name=method, direction="maximize")
        for values in plan.slots(method):
            study.enqueue_trial(values)


def load(plan: SweepPlan, storage, method: str, number: int = 0) -> optuna.Study:
    """The method's study with a sampler seeded per trial number: two workers never draw the
    same random values, and a trial's draw does not depend on which worker took it."""
    if plan.sampler == "tpe":
        sampler = optuna.samplers.TPESampler(seed=plan.seed * 100_003 + number, constant_liar=True,
                                             n_startup_trials=max(1, min(10, plan.budget // 2)))
    else:  # every grid point is fixed in its trial: nothing is sampled
        sampler = optuna.samplers.RandomSampler(seed=plan.seed)
    return optuna.load_study(study_name=method, storage=storage, sampler=sampler, pruner=pruner(plan))


def pruner(plan: SweepPlan) -> optuna.pruners.BasePruner:
    """Median pruning on the per-epoch validation metric: once a few trials have finished, and
    never in the first quarter of the epoch cap (early epochs rank settings poorly)."""
    if not plan.prune:
        return optuna.pruners.NopPruner()
    epochs = plan.config["student_train"]["epochs"]
    return optuna.pruners.MedianPruner(n_startup_trials=max(2, min(5, plan.budget // 4)),
                                       n_warmup_steps=max(1, epochs // 4))


@dataclass
class Claimed:
    """A trial this process took: RUNNING, with the id the storage knows it by."""

    trial: optuna.trial.Trial
    trial_id: int
    method: str

    @property
    def number(self) -> int:
        return self.trial.number


def claim(plan: SweepPlan, storage, url: str, method: str) -> Claimed | None:
    """A WAITING trial of the method, now RUNNING and owned by this process; None if none waits."""
    study = load(plan, storage, method)
    study_id = storage.get_study_id_from_name(method)
    with claim_lock(url):
        if has_heartbeat(storage):
            with experimental():
                optuna.storages.fail_stale_trials(study)  # dead workers' trials: FAIL, queued again
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
            try:
                if not storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            if has_heartbeat(storage):  # at once: a worker killed before its first beat is detected too
                storage.record_heartbeat(trial_id)
            seeded = load(plan, storage, method, frozen.number)
            seeded.get_trials(deepcopy=False)  # a fresh study learns its trials' ids from a listing: writes need them
            return Claimed(optuna.trial.Trial(seeded, trial_id), trial_id, method)
    return None


def finish(url: str, claimed: Claimed, state: TrialState, value: float | None, attrs: dict[str, Any]) -> bool:
    """Record a trial's outcome; False if it was given up meanwhile (its heartbeat was late and
    another worker queued it again), so its result is dropped."""
    trial = claimed.trial
    with claim_lock(url):
        try:
            for k, v in attrs.items():
                trial.set_user_attr(k, v)
            trial.study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        except optuna.exceptions.UpdateFinishedTrialError:
            return False
    return True


def requeue(storage, url: str, study: optuna.Study, trial_id: int) -> None:
    """A trial this worker cannot finish (stopped, crashed): FAIL, and its values queued again."""
    with claim_lock(url), contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        if storage.set_trial_state_values(trial_id, TrialState.FAIL):
            with experimental():
                retry_callback()(study, storage.get_trial(trial_id))


def requeue_running(plan: SweepPlan, storage, url: str) -> int:
    """Every RUNNING trial queued again (storages without heartbeats, after a worker died); how many."""
    n = 0
    for method in plan.methods:
        study = load(plan, storage, method)
        study_id = storage.get_study_id_from_name(method)
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            requeue(storage, url, study, storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number))
            n += 1
    return n


@dataclass
class Progress:
    """Where a method's budget stands: spent (finished one way or another) + left = budget."""

    budget: int
    complete: int = 0
    pruned: int = 0
    failed: int = 0  # diverged or invalid: spent, never best
    retried: int = 0  # a dead worker's trial, queued again (not spent)
    waiting: int = 0
    running: int = 0

    @property
    def spent(self) -> int:
        return self.complete + self.pruned + self.failed

    @property
    def left(self) -> int:
        return self.waiting + self.running


def progress(plan: SweepPlan, trials: list[optuna.trial.FrozenTrial], method: str) -> Progress:
    p = Progress(plan.budgets[method])
    for t in trials:
        if t.state == TrialState.WAITING:
            p.waiting += 1
        elif t.state == TrialState.RUNNING:
            p.running += 1
        elif t.state == TrialState.COMPLETE:
            p.complete += 1
        elif t.state == TrialState.PRUNED:
            p.pruned += 1
        elif t.user_attrs.get(OUTCOME) in SPENT:
            p.failed += 1
        else:
            p.retried += 1
    return p


def all_trials(plan: SweepPlan, storage) -> dict[str, list[optuna.trial.FrozenTrial]]:
    return {m: load(plan, storage, m).get_trials(deepcopy=False) for m in plan.methods}
