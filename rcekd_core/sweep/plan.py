"""A sweep's plan (sweep.yaml): what every worker, `best` and `confirm` read, checked once at start.

The plan keeps the fully resolved config every trial starts from (preset + --set + the epoch
cap + the metric), so a worker on another machine, or a preset edited meanwhile, cannot
change what the trials of one sweep are.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import ExperimentConfig
from .space import Param, as_overrides, bind, grid, of_method, parse_param

SAMPLERS = ("tpe", "grid")
SWEEP_SEED = 0  # trials train seed 0; `confirm` adds the others
PLAN_VERSION = 1


@dataclass
class SweepPlan:
    preset: str
    methods: list[str]
    params: list[Param]
    budget: int  # as asked
    budgets: dict[str, int]  # trials each method gets: the budget (grid: at most its grid; nothing swept: 1)
    sampler: str
    metric: str  # validation metric the trials maximise (also eval.select: the best epoch)
    epochs: int | None  # student_train.epochs of every trial and of `confirm`
    prune: bool
    sets: list[str]
    storage: str | None  # None: study.db in the sweep directory
    config: dict[str, Any] = field(default_factory=dict)
    seed: int = SWEEP_SEED

    def space(self, method: str) -> list[Param]:
        return of_method(self.params, method)

    def slots(self, method: str) -> list[dict[str, Any]]:
        """The trials a method's study starts with: grid points (a seeded shuffle, cut to the
        budget) or, for TPE, empty ones whose values are sampled when a worker takes them."""
        space = self.space(method)
        if self.sampler == "grid" and space:
            points = grid(space)
            random.Random(self.seed).shuffle(points)
            return points[: self.budgets[method]]
        return [{} for _ in range(self.budgets[method])]

    def trial_config(self, method: str, values: dict[str, Any]) -> ExperimentConfig:
        from ..config import from_dict, merge

        return from_dict(merge(self.config, {"methods": [method], "seeds": [self.seed], **as_overrides(values)}))

    def confirm_config(self, best: dict[str, dict[str, Any]], seeds: list[int]) -> ExperimentConfig:
        """Every method with its best values (each in its own section) on `seeds`, same epoch cap."""
        from ..config import from_dict, merge

        chosen: dict[str, Any] = {}
        for values in best.values():
            chosen = merge(chosen, as_overrides(values))
        return from_dict(merge(self.config, {"methods": list(self.methods), "seeds": list(seeds), **chosen}))

    def to_dict(self) -> dict[str, Any]:
        return {"version": PLAN_VERSION, "preset": self.preset, "methods": list(self.methods),
                "params": [p.to_dict() for p in self.params], "budget": self.budget, "budgets": dict(self.budgets),
                "sampler": self.sampler, "metric": self.metric, "epochs": self.epochs, "prune": self.prune,
                "sets": list(self.sets), "storage": self.storage, "seed": self.seed, "config": self.config}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepPlan:
        try:
            return cls(d["preset"], list(d["methods"]), [Param.from_dict(p) for p in d["params"]], int(d["budget"]),
                       {k: int(v) for k, v in d["budgets"].items()}, d["sampler"], d["metric"], d.get("epochs"),
                       bool(d.get("prune")), list(d.get("sets") or []), d.get("storage"), dict(d["config"]),
                       int(d.get("seed", SWEEP_SEED)))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ConfigError(f"the sweep plan is incomplete or malformed ({e.__class__.__name__}: {e}); "
                              "restore sweep.yaml") from None


def plan_sweep(preset: str, methods: list[str] | None, specs: list[str], budget: int, sampler: str = "tpe",
               metric: str | None = None, epochs: int | None = None, prune: bool = False,
               sets: list[str] | None = None, storage: str | None = None) -> SweepPlan:
    """Every check of `rcekd sweep start`, before anything is written: the config, the data
    (sizes against the catalogue), each parameter, the sampler, the budget, the storage URL."""
    from ..config import from_dict, load_preset_dict, merge, parse_overrides
    from ..experiment import prepare

    if budget < 1:
        raise ConfigError(f"--budget must be at least 1 trial per method; got {budget}")
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown --sampler '{sampler}'; choose tpe or grid")
    if epochs is not None and epochs < 1:
        raise ConfigError(f"--epochs caps every trial's student epochs: at least 1; got {epochs}")
    extra: dict[str, Any] = {"seeds": [SWEEP_SEED]}
    if methods is not None:
        extra["methods"] = methods
    if epochs is not None:
        extra["student_train"] = {"epochs": epochs}
    if metric is not None:
        extra["eval"] = {"select": metric}
    cfg = from_dict(merge(load_preset_dict(preset), merge(parse_overrides(sets or []), extra)))
    base = cfg.to_dict()
    if cfg.data.file:  # as started, wherever a worker runs from
        base["data"]["file"] = str(Path(cfg.data.file).expanduser().resolve())
    params = [parse_param(s) for s in specs]
    params = bind(params, base, cfg.methods)  # names, types, ranges: cheap, before the data loads
    n_items = prepare(cfg).data.n_items
    params = bind(params, base, cfg.methods, n_items)  # item counts against the catalogue
    budgets = {}
    for m in cfg.methods:
        space = of_method(params, m)
        budgets[m] = 1 if not space else min(budget, len(grid(space))) if sampler == "grid" else budget
    check_storage(storage)
    return SweepPlan(preset, list(cfg.methods), params, budget, budgets, sampler, cfg.eval.select, epochs, prune,
                     list(sets or []), storage, base)


def check_storage(storage: str | None) -> None:
    """An RDB URL SQLAlchemy can parse, or a journal file path (not a folder)."""
    if storage is None:
        return
    if not storage.strip():
        raise ConfigError("--storage is empty; pass an RDB URL (postgresql://..., sqlite:///...) or a journal "
                          "file path")
    if "://" in storage:
        from sqlalchemy import create_engine
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            create_engine(storage).dispose()  # loads the dialect and its driver; connects only when used
        except (NoSuchModuleError, ImportError) as e:  # NoSuchModuleError is an ArgumentError: first
            raise ConfigError(f"--storage '{storage}': no database driver for it ({e}); install the module it "
                              "names, or name an installed driver (e.g. postgresql+psycopg2://...)") from None
        except ArgumentError:
            raise ConfigError(f"--storage '{storage}' is not a database URL; e.g. postgresql://user@host/db, "
                              "sqlite:///path/study.db, or a journal file path") from None
    elif Path(storage).is_dir():
        raise ConfigError(f"--storage '{storage}' is a folder; a journal storage is a file path "
                          f"(e.g. {storage}/sweep.log)")
