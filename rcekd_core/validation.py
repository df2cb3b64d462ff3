"""Reject impossible settings before any work starts, with one line that names the fix.

Single settings carry their ranges (settings.setting), a KD method checks its own rules
(MethodSettings.check), a backbone declares the losses it trains with; what stays here are
the rules that span several settings: teacher vs student family, protocol vs family, windows,
the method list, and list sizes against the catalogue.
"""

from __future__ import annotations

import dataclasses
import re

from .errors import ConfigError
from .settings import ExperimentConfig, check_ranges, item_counts

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # the run's name becomes a folder name
SECTIONS = ("data", "teacher", "student", "teacher_train", "student_train", "eval")


def validate(cfg: ExperimentConfig) -> None:
    """Reject impossible settings before any work starts."""
    from .eval.metrics import (
        metric_names,  # late: keeps `import rcekd_core.config` light
    )
    from .kd.registry import METHODS
    from .models.registry import MODELS, is_general

    if not NAME.fullmatch(cfg.name):
        raise ConfigError(f"'name' {cfg.name!r} must be a plain folder name (letters, digits, . _ -, at most 100); "
                          "use --run-dir to choose where a run is written")
    check_ranges(cfg, "")  # the top-level settings (seeds, teacher_seed)
    for name in SECTIONS:
        check_ranges(getattr(cfg, name), f"{name}.")
    for name, section in cfg.method_settings.items():
        check_ranges(section, f"{name}.")
        section.check(f"{name}.")
    for role in ("teacher", "student"):
        arch = getattr(cfg, role).arch
        if arch not in MODELS:
            raise ConfigError(f"unknown {role}.arch '{arch}'; choose one of: {', '.join(MODELS)}")
    general = is_general(cfg.teacher.arch)
    if general != is_general(cfg.student.arch):
        raise ConfigError(f"teacher {cfg.teacher.arch} and student {cfg.student.arch} must both be sequential "
                          "(sasrec, gru4rec, hstu) or both general (mf, lightgcn): their states differ")
    for role in ("teacher", "student"):
        m = getattr(cfg, role)
        if m.dim % m.heads:
            raise ConfigError(f"{role}.dim ({m.dim}) must be divisible by {role}.heads ({m.heads})")
        losses = MODELS[m.arch].losses
        if m.loss not in losses:
            raise ConfigError(f"{role}.loss '{m.loss}' is not available for {m.arch}; choose {', '.join(losses)}")
    if general and cfg.data.protocol != "ratio":  # a user–item model has no "last item" to hold out
        raise ConfigError(f"general models ({cfg.teacher.arch} → {cfg.student.arch}) use data.protocol ratio; "
                          f"got {cfg.data.protocol}: add --set data.protocol=ratio")
    if not general and cfg.kd_positions == "all" and cfg.teacher.max_len < cfg.student.max_len:
        raise ConfigError(
            f"kd_positions=all needs teacher.max_len ({cfg.teacher.max_len}) ≥ student.max_len "
            f"({cfg.student.max_len}); raise the teacher's or use --set kd_positions=last")
    if not cfg.eval.ks or any(k <= 0 for k in cfg.eval.ks):
        raise ConfigError(f"'eval.ks' must be positive cut-offs such as 10,20; got {cfg.eval.ks}")
    measured = metric_names(cfg.eval.ks)
    if cfg.eval.select not in measured:
        raise ConfigError(f"eval.select '{cfg.eval.select}' is not measured with eval.ks {cfg.eval.ks}; "
                          f"choose one of: {', '.join(measured)}")
    _check_methods(cfg, list(METHODS))
    if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"'seeds' must be distinct integers such as 0,1,2; got {cfg.seeds}")


def _check_methods(cfg: ExperimentConfig, known: list[str]) -> None:
    if not cfg.methods:
        raise ConfigError("'methods' is empty; name at least one, e.g. --methods scratch,rcekd")
    if cfg.methods == ["all"]:
        cfg.methods = list(known)
    for name in cfg.methods:
        if name not in known:
            raise ConfigError(f"unknown method '{name}'; choose from: {', '.join(known)} (or all)")
    if len(set(cfg.methods)) != len(cfg.methods):
        raise ConfigError(f"'methods' lists a method twice: {cfg.methods}")


def check_sizes(cfg: ExperimentConfig, n_items: int) -> None:
    """Checks that need the dataset: list sizes of the methods that run cannot exceed the catalogue."""
    sections = [("eval", cfg.eval)] + [(m, cfg.method_settings[m]) for m in cfg.methods if m in cfg.method_settings]
    for name, section in sections:
        for k in item_counts(section):
            v = getattr(section, k)
            if v > n_items:
                raise ConfigError(f"'{name}.{k}' = {v} exceeds the {n_items} items of this dataset; "
                                  f"lower it (e.g. --set {name}.{k}={n_items // 2})")
        if dataclasses.is_dataclass(section) and hasattr(section, "check_catalogue"):
            section.check_catalogue(f"{name}.", n_items)
    if max(cfg.eval.ks) > n_items:
        raise ConfigError(f"'eval.ks' {cfg.eval.ks} exceeds the {n_items} items of this dataset")
