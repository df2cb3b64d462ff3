"""What a sweep found: per method the best trial and the budget spent, and sensitivity.csv
(the validation metric against each swept parameter, one row per trial × parameter).

Only COMPLETE trials can be best: pruned, diverged and invalid ones are spent, never chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from .plan import SweepPlan
from .study import OUTCOME, Progress, all_trials, progress
from .sweepdir import SweepDir


@dataclass
class Best:
    method: str
    progress: Progress
    values: dict[str, Any]  # the best trial's parameters ({} for a method with none swept)
    value: float | None  # its validation metric; None: no completed trial
    number: int | None
    test: float | None  # its test metric: recorded, never used to choose


def status(t: FrozenTrial) -> str:
    """waiting, running, complete, pruned, diverged, invalid, or retried (a dead worker's, queued again)."""
    if t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED):
        return t.state.name.lower()
    return t.user_attrs.get(OUTCOME, "retried")


def best_of(plan: SweepPlan, trials: dict[str, list[FrozenTrial]]) -> dict[str, Best]:
    out = {}
    for method, ts in trials.items():
        done = [t for t in ts if t.state == TrialState.COMPLETE and t.value is not None]
        top = max(done, key=lambda t: (t.value, -t.number), default=None)  # ties: the earlier trial
        out[method] = Best(method, progress(plan, ts, method), dict(top.params) if top else {},
                           top.value if top else None, top.number if top else None,
                           top.user_attrs.get(f"test_{plan.metric}") if top else None)
    return out


def best(plan: SweepPlan, storage) -> dict[str, Best]:
    return best_of(plan, all_trials(plan, storage))


def sensitivity_columns(plan: SweepPlan) -> list[str]:
    return ["method", "parameter", "value", f"valid_{plan.metric}", "trial", "state"]


def sensitivity_rows(plan: SweepPlan, trials: dict[str, list[FrozenTrial]]) -> list[dict[str, Any]]:
    metric = f"valid_{plan.metric}"
    rows = []
    for method, ts in trials.items():
        for p in plan.space(method):
            for t in sorted(ts, key=lambda t: t.number):
                if p.name in t.params:
                    rows.append({"method": method, "parameter": p.name, "value": t.params[p.name],
                                 metric: t.user_attrs.get(metric), "trial": t.number, "state": status(t)})
    return rows


def write_sensitivity(sweep: SweepDir, plan: SweepPlan, storage) -> list[dict[str, Any]]:
    rows = sensitivity_rows(plan, all_trials(plan, storage))
    sweep.write_sensitivity(rows, sensitivity_columns(plan))
    return rows
