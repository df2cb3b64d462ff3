"""A sweep's progress for the runs list and `rcekd watch`, read from its folder alone.

Trials are ordinary run directories (trials/<method>-<number>/), so progress comes from their
files: no Optuna (nor SQLAlchemy) on the first screen. A trial counts as done once its run
ended (finished, stopped by the pruner, or failed); the best so far is the highest validation
metric among finished fits (a diverged fit's rows say so and never count) (the
sweep's own choice of best lives in its storage: `rcekd sweep best D`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rcekd_core.runs.status import is_run_dir, last_modified, run_status
from rcekd_core.runs.store import RunDir
from rcekd_core.sweep.sweepdir import PLAN, SweepDir


@dataclass
class SweepProgress:
    path: Path
    preset: str
    metric: str
    budget: int  # trials in all: every method's budget
    done: int
    running: int
    best: dict[str, float] = field(default_factory=dict)  # method -> best validation metric so far
    methods: list[str] = field(default_factory=list)
    budgets: dict[str, int] = field(default_factory=dict)  # method -> its trials
    done_by: dict[str, int] = field(default_factory=dict)  # method -> trials done
    running_by: dict[str, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return f"sweep {self.done}/{self.budget}"

    def best_method(self) -> tuple[str, float] | None:
        return max(self.best.items(), key=lambda kv: kv[1]) if self.best else None


def is_sweep_dir(path: Path) -> bool:
    return (Path(path) / PLAN).is_file()


def sweep_progress(path: Path) -> SweepProgress | None:
    """None when sweep.yaml cannot be read as a plan (the runs list then leaves the folder out)."""
    sweep = SweepDir(path)
    try:
        plan = yaml.safe_load(sweep.plan.read_text(encoding="utf-8"))
        budgets = {str(m): int(b) for m, b in plan["budgets"].items()}
        metric = str(plan["metric"])
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError):
        return None
    progress = SweepProgress(sweep.root, str(plan.get("preset", "?")), metric, sum(budgets.values()), 0, 0,
                             methods=list(budgets), budgets=budgets)
    try:
        trials = [p for p in sweep.trials.iterdir() if p.is_dir() and is_run_dir(p)] if sweep.trials.is_dir() else []
    except OSError:
        trials = []
    for trial in trials:
        method = trial.name.rsplit("-", 1)[0]
        status = run_status(RunDir(trial))
        if status in ("running", "starting"):
            progress.running_by[method] = progress.running_by.get(method, 0) + 1
            continue
        if status not in ("finished", "stopped", "failed"):  # interrupted: its worker died, it runs again
            continue
        progress.done_by[method] = progress.done_by.get(method, 0) + 1
        score = valid_score(RunDir(trial), metric) if status == "finished" else None
        if score is not None:
            progress.best[method] = max(score, progress.best.get(method, -math.inf))
    # a retried trial leaves its dead run behind: never more than the budget
    progress.done_by = {m: min(n, budgets.get(m, n)) for m, n in progress.done_by.items()}
    progress.done = sum(progress.done_by.values())
    progress.running = sum(progress.running_by.values())
    return progress


def valid_score(run: RunDir, metric: str) -> float | None:
    for row in run.read_result_rows():
        if row.get("model") == "student" and row.get("split") == "valid" and row.get("status") in (None, "", "finished"):
            try:
                value = float(row.get(metric, ""))
            except ValueError:
                return None
            return value if math.isfinite(value) else None
    return None


def newest_trial(path: Path) -> Path | None:
    """The trial run directory written to last: the one in flight while the sweep runs."""
    trials = SweepDir(path).trials
    try:
        runs = [p for p in trials.iterdir() if p.is_dir() and is_run_dir(p)] if trials.is_dir() else []
    except OSError:
        return None
    return max(runs, key=lambda p: last_modified(RunDir(p)), default=None)
