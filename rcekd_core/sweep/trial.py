"""One trial: a run directory made by `run_experiment` for one method on the sweep seed, with
the trial's values and the sweep's epoch cap. Its objective is the student's validation
metric at its best epoch; test metrics are recorded beside it, never used to choose.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from ..errors import ConfigError
from ..runs.events import Epoch, Event
from ..runs.store import RunDir
from .plan import SweepPlan
from .study import OUTCOME, Claimed
from .sweepdir import SweepDir


@dataclass
class Verdict:
    """What a worker tells the study about a trial, and one line for its console."""

    state: TrialState
    value: float | None
    attrs: dict[str, Any]
    line: str


class PruneOnEpoch:
    """The trial run's display: each epoch's validation metric goes to Optuna; when the pruner
    says stop, the run is asked to stop (its STOP file): the fit ends after this epoch with its
    best weights evaluated and its rows marked `stopped`."""

    def __init__(self, trial, metric: str, run: RunDir):
        self.trial, self.metric, self.run = trial, metric, run
        self.pruned = False

    def __call__(self, event: Event) -> None:
        if self.pruned or not isinstance(event, Epoch) or event.model != "student":
            return
        score = event.valid.get(self.metric)
        if score is None or not math.isfinite(score):
            return
        try:
            self.trial.report(score, event.epoch)
            stop = self.trial.should_prune()
        except optuna.exceptions.UpdateFinishedTrialError:  # given up meanwhile (late heartbeat): its result
            stop = True  # would be dropped anyway, and the trial runs again elsewhere
        if stop:
            self.pruned = True
            self.run.request_stop()


def describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def run_trial(plan: SweepPlan, sweep: SweepDir, claimed: Claimed) -> Verdict:
    """Train the trial's student and judge it. Errors that are not the trial's own (data, a
    diverged teacher, a signal) propagate: the worker queues the trial again."""
    from ..experiment import run_experiment

    trial, method = claimed.trial, claimed.method
    values = {p.name: p.suggest(trial) for p in plan.space(method)}
    run_dir = sweep.trial_dir(method, claimed.number)
    label = f"{method} trial {claimed.number}" + (f" ({describe(values)})" if values else "")
    attrs: dict[str, Any] = {"run_dir": str(run_dir.relative_to(sweep.root)),
                             "worker": f"{platform.node()}:{os.getpid()}"}
    t0 = time.perf_counter()
    try:
        cfg = plan.trial_config(method, values)
        display = PruneOnEpoch(trial, plan.metric, RunDir(run_dir)) if plan.prune else (lambda e: None)
        rows = run_experiment(cfg, run_dir, display)
    except ConfigError as e:  # values the config refuses together (e.g. K > M): spent, never best
        attrs.update({OUTCOME: "invalid", "error": str(e)})
        return Verdict(TrialState.FAIL, None, attrs, f"{label}: invalid ({e})")
    attrs["seconds"] = round(time.perf_counter() - t0, 3)
    return judge(plan, rows, attrs, label)


def judge(plan: SweepPlan, rows: list[dict[str, Any]], attrs: dict[str, Any], label: str) -> Verdict:
    """The objective from the student's rows: valid metric at the best epoch (seed plan.seed)."""
    mine = {r["split"]: r for r in rows if r["model"] == "student" and r["seed"] == plan.seed}
    valid, test = mine["valid"], mine["test"]
    for split, row in (("valid", valid), ("test", test)):
        attrs.update({f"{split}_{k}": v for k, v in row.items() if "@" in k and v is not None})
    attrs.update({"best_epoch": valid.get("best_epoch"), "epochs": valid.get("epochs"), "status": valid["status"]})
    value = valid.get(plan.metric)
    if valid["status"] == "diverged" or value is None or not math.isfinite(value):
        attrs[OUTCOME] = "diverged"
        return Verdict(TrialState.FAIL, None, attrs, f"{label}: diverged at epoch {valid.get('epochs')}")
    score = f"valid {plan.metric} {value:.4f} (best epoch {valid.get('best_epoch')} of {valid.get('epochs')})"
    if valid["status"] == "stopped":
        attrs[OUTCOME] = "pruned"
        return Verdict(TrialState.PRUNED, None, attrs, f"{label}: pruned at epoch {valid.get('epochs')}, {score}")
    attrs[OUTCOME] = "complete"
    return Verdict(TrialState.COMPLETE, float(value), attrs, f"{label}: {score}")
