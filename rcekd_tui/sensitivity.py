"""Sensitivity panels: the validation metric against each swept setting, one line per method.

Rows are sensitivity.csv's (method, parameter, value, valid metric, trial, state), from the
sweep's storage (`rcekd sweep show`) or read from the trials' run directories alone (the TUI,
live, without Optuna). One panel per setting name: `rcekd.lam` and `kd.lam` share the λ panel,
a line each. Where other settings were swept too, a value's point is its best trial (the
best the sweep found with that value), as a one-at-a-time sensitivity figure would show it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rcekd_core.runs.status import is_run_dir, run_status
from rcekd_core.runs.store import RunDir
from rcekd_core.sweep.sweepdir import SweepDir

from .sweepinfo import valid_score
from .widgets.palette import style_of


@dataclass
class Panel:
    """One setting: per method, (value, best validation metric) sorted by value."""

    setting: str
    log: bool  # x on a log scale (a log range, or positive numbers spanning 100× or more)
    labels: list[str] = field(default_factory=list)  # categorical x: the values in order; empty: numeric
    lines: dict[str, list[tuple[Any, float]]] = field(default_factory=dict)

    def x(self, value: Any) -> float:
        """Where a value sits on the panel's x axis."""
        if self.labels:
            return float(self.labels.index(str(value)))
        return math.log10(value) if self.log else float(value)

    def ticks(self) -> tuple[list[float], list[str]]:
        if self.labels:
            return [float(i) for i in range(len(self.labels))], list(self.labels)
        values = sorted({v for pts in self.lines.values() for v, _ in pts})
        if len(values) > 7:  # keep the labels readable: ends and evenly spaced ones between
            step = (len(values) - 1) / 6
            values = [values[round(i * step)] for i in range(7)]
        return [self.x(v) for v in values], [f"{v:g}" for v in values]


def panels(rows: list[dict[str, Any]], column: str, log_params: set[str] = frozenset()) -> list[Panel]:
    """Rows → panels, in the order settings first appear; trials without a finite metric are left out."""
    out: dict[str, Panel] = {}
    best: dict[tuple[str, str, Any], float] = {}
    kinds: dict[str, list[Any]] = {}
    for r in rows:
        v = r.get(column)
        if not isinstance(v, (int, float)) or not math.isfinite(v) or r.get("state") not in (None, "complete"):
            continue
        setting = str(r["parameter"]).split(".", 1)[-1]
        key = (setting, str(r["method"]), r["value"])
        best[key] = max(v, best.get(key, -math.inf))
        kinds.setdefault(setting, []).append(r["value"])
        if setting not in out:
            out[setting] = Panel(setting, False)
        if r["parameter"] in log_params:
            out[setting].log = True
    for setting, panel in out.items():
        values = kinds[setting]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            lo, hi = min(values), max(values)
            panel.log = panel.log or (lo > 0 and hi / lo >= 100)
        else:
            panel.labels = sorted({str(v) for v in values})
            panel.log = False
    for (setting, method, value), v in best.items():
        out[setting].lines.setdefault(method, []).append((value, v))
    for panel in out.values():
        for pts in panel.lines.values():
            pts.sort(key=lambda p: panel.x(p[0]))
    return list(out.values())


def draw(plt, panel: Panel, metric: str) -> None:
    """The panel on a plotext figure (the TUI widget's or plotext's own, for a terminal)."""
    plt.clear_data()
    plt.clear_figure()
    for method, pts in panel.lines.items():
        xs, ys = [panel.x(v) for v, _ in pts], [y for _, y in pts]
        style = style_of(method)  # the method's colour everywhere in the app
        plt.plot(xs, ys, label=method, marker=style.marker, color=style.color)
        # the trials themselves (a lone value included)
        plt.scatter(xs, ys, marker="●" if style.marker == "braille" else style.marker, color=style.color)
    ticks, labels = panel.ticks()
    if ticks:
        plt.xticks(ticks, labels)
    plt.xlabel(f"{panel.setting} (log scale)" if panel.log else panel.setting)
    plt.ylabel(f"valid {metric}")


def rows_from_trials(path: Path) -> tuple[str, set[str], list[dict[str, Any]]]:
    """The sweep's metric, its log-range parameters and sensitivity rows, from sweep.yaml and
    the trial run directories (finished trials only: a running one has no result yet)."""
    sweep = SweepDir(path)
    try:
        plan = yaml.safe_load(sweep.plan.read_text(encoding="utf-8"))
        metric = str(plan["metric"])
        params = [(str(p["name"]), str(p.get("kind"))) for p in plan.get("params") or []]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return "NDCG@10", set(), []
    rows: list[dict[str, Any]] = []
    try:
        trials = sorted(p for p in sweep.trials.iterdir() if p.is_dir() and is_run_dir(p)) if sweep.trials.is_dir() else []
    except OSError:
        trials = []
    for trial in trials:
        method, _, number = trial.name.rpartition("-")
        run = RunDir(trial)
        if run_status(run) != "finished":
            continue
        score = valid_score(run, metric)
        try:
            config = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        for name, _kind in params:
            owner, setting = name.split(".", 1)
            section = config.get(owner) if isinstance(config, dict) else None
            if owner != method or not isinstance(section, dict) or setting not in section:
                continue
            rows.append({"method": method, "parameter": name, "value": section[setting],
                         f"valid_{metric}": score, "trial": int(number) if number.isdigit() else number,
                         "state": "complete" if score is not None else "diverged"})
    return metric, {n for n, k in params if k == "log"}, rows
