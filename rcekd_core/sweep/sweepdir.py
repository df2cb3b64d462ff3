"""The sweep directory: every file name in it, and how each is written and read.

    sweep.yaml        the sweep's plan (plan.py): preset, methods, parameters, budget, metric,
                      epoch cap, --set values, storage, and the resolved config every trial starts from
    study.db          the default storage: one Optuna study per method (SQLite)
    study.db.lock     held (flock) while a worker claims or finishes a trial in study.db
    trials/<method>-<number>/   one run directory per trial (rcekd_core/runs/)
    teacher/          with several workers: the teacher trained (or loaded) once before they start
    confirm/          the default run directory of `rcekd sweep confirm`
    sensitivity.csv   validation metric against each swept parameter, one row per trial × parameter
    logs/worker-<i>.log   what each worker started by `rcekd sweep start --workers W` printed
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from ..atomic import atomic_write
from ..errors import ConfigError
from ..runs.store import csv_text

PLAN = "sweep.yaml"
STUDY_DB = "study.db"
TRIALS = "trials"
TEACHER = "teacher"
CONFIRM = "confirm"
SENSITIVITY = "sensitivity.csv"
LOGS = "logs"


class SweepDir:
    def __init__(self, root: Path):
        self.root = Path(root)

    plan = property(lambda self: self.root / PLAN)
    db = property(lambda self: self.root / STUDY_DB)
    trials = property(lambda self: self.root / TRIALS)
    teacher = property(lambda self: self.root / TEACHER)
    confirm = property(lambda self: self.root / CONFIRM)
    sensitivity = property(lambda self: self.root / SENSITIVITY)
    logs = property(lambda self: self.root / LOGS)

    def trial_dir(self, method: str, number: int) -> Path:
        return self.trials / f"{method}-{number}"

    def worker_log(self, index: int) -> Path:
        return self.logs / f"worker-{index}.log"

    def default_storage(self) -> str:
        return f"sqlite:///{self.db.resolve()}"

    def check_new(self) -> None:
        """A new sweep needs an absent or empty folder."""
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"--dir '{self.root}' is a file; pass a folder path")
        if self.plan.is_file():
            raise ConfigError(f"'{self.root}' already holds a sweep; `rcekd sweep work {self.root}` adds a worker "
                              "to it, or pass a new --dir")
        if self.root.is_dir() and any(self.root.iterdir()):
            raise ConfigError(f"--dir '{self.root}' is not empty; pass a new or empty folder")

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def discard(self, remove_root: bool) -> None:
        """Undo a start that failed before its plan was written (the folder was new or empty)."""
        if self.root.is_dir() and not self.plan.is_file():
            for p in self.root.iterdir():
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            if remove_root:
                self.root.rmdir()

    def write_plan(self, plan: dict[str, Any]) -> None:
        atomic_write(self.plan, yaml.safe_dump(plan, sort_keys=False))

    def read_plan(self) -> dict[str, Any]:
        if not self.plan.is_file():
            raise ConfigError(f"'{self.root}' holds no sweep (no {PLAN}); start one with "
                              f"`rcekd sweep start ... --dir {self.root}`")
        try:
            plan = yaml.safe_load(self.plan.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read {self.plan} ({e.__class__.__name__}); restore the file") from None
        if not isinstance(plan, dict):
            raise ConfigError(f"{self.plan} is not a sweep plan; restore the file")
        return plan

    def write_sensitivity(self, rows: list[dict[str, Any]], columns: list[str]) -> None:
        atomic_write(self.sensitivity, csv_text(rows, columns))
