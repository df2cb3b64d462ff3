"""Summaries of run directories for the runs and compare screens: status, dataset, methods, NDCG.

Plain Python over RunDir's csv rows (no pandas): the runs list is the first screen of
`rcekd tui`, and pandas alone costs a quarter of a second to import. Whether a run is
running, finished, stopped, failed or interrupted is rcekd_core.runs.status's answer.
Files written by hand or torn by a crash never raise here: odd values read as missing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rcekd_core.runs.status import is_run_dir, last_end, last_modified, run_status, started_at
from rcekd_core.runs.store import EVENTS, RunDir

Means = dict[str, dict[str, float | None]]  # method -> metric -> mean over seeds


@dataclass
class RunSummary:
    path: Path
    status: str
    dataset: str
    methods: list[str]
    best_ndcg: float | None
    best_method: str
    mtime: float
    sweep: bool = False  # a sweep folder: status is trials done / budget, best is on validation
    started: float | None = None  # its first event's time
    seconds: float | None = None  # start to end (to now while it runs)
    preset: str = ""
    seeds: list[int] = field(default_factory=list)
    settings: str = ""  # the methods' λ, the setting a KD comparison varies most
    tags: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def name(self) -> str:
        return self.path.name

    def text(self) -> str:
        """What `/` matches against: every column a person reads, tags and note included."""
        return " ".join([self.name, self.status, self.dataset, self.preset, ",".join(self.methods),
                         self.settings, " ".join(self.tags), self.note]).lower()


def number(value: Any) -> float | None:
    """A metric cell as a float (csv text or an event's number); None if empty, NaN, infinite or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return x if math.isfinite(x) else None


def _mean(values: Iterable[Any]) -> float | None:
    xs = [x for x in map(number, values) if x is not None]
    return sum(xs) / len(xs) if xs else None


def metric_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every NAME@K column of the rows, first seen first (a csv row's surplus cells have key None)."""
    return list(dict.fromkeys(k for r in rows for k in r if isinstance(k, str) and "@" in k))


def mean_by_method(rows: list[dict[str, Any]], split: str = "test", metrics: list[str] | None = None) -> Means:
    """Mean over seeds per method (in the rows' order, teacher first) of each metric on one split."""
    metrics = metric_columns(rows) if metrics is None else metrics
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if isinstance(r, dict) and r.get("split") == split and r.get("method") not in (None, ""):
            groups.setdefault(str(r["method"]), []).append(r)
    return {m: {k: _mean(r.get(k) for r in g) for k in metrics} for m, g in groups.items()}


def best_method(rows: list[dict[str, Any]], metric: str = "NDCG@10") -> tuple[str, float] | None:
    """The student method with the highest mean test `metric`, and that mean."""
    rows = [r for r in rows if isinstance(r, dict)]
    students = [r for r in rows if r.get("model") == "student"] if any("model" in r for r in rows) else rows
    means = mean_by_method(students, "test", [metric])
    scored = [(m, v[metric]) for m, v in means.items() if v[metric] is not None]
    return max(scored, key=lambda mv: mv[1]) if scored else None  # first of equals, as idxmax


def key_settings(cfg: dict[str, Any], methods: list[str]) -> str:
    """'kd λ0.01 rcekd λ0.1': each method's λ from its config section."""
    parts = []
    for m in methods:
        section = cfg.get(m)
        lam = section.get("lam") if isinstance(section, dict) else None
        if isinstance(lam, (int, float)) and not isinstance(lam, bool):
            parts.append(f"{m} λ{lam:g}")
    return " ".join(parts)


def summarize(path: Path, now: float | None = None) -> RunSummary:
    import time

    run = RunDir(path)
    cfg = run.read_config()
    best = best_method(run.read_result_rows())
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    dataset = data.get("file") or data.get("source") or "?"
    methods = cfg.get("methods")
    methods = [str(m) for m in methods] if isinstance(methods, list) else []
    seeds = cfg.get("seeds")
    seeds = [int(x) for x in seeds if isinstance(x, int) and not isinstance(x, bool)] if isinstance(seeds, list) else []
    status = run_status(run, now)
    end = last_end(run) if status not in ("running", "starting") else None
    if status == "finished" and end is not None and isinstance(end.diverged, int) and end.diverged > 0:
        status = "diverged"  # finished, but some fit's numbers are not results
    started = started_at(run)
    stop = end.t if end is not None and isinstance(end.t, (int, float)) else None
    if stop is None and status in ("running", "starting"):
        stop = time.time() if now is None else now
    seconds = stop - started if started is not None and stop is not None and stop >= started else None
    tags, note = run.read_notes()
    return RunSummary(run.root, status, str(dataset), methods, best[1] if best else None,
                      best[0] if best else "", last_modified(run), started=started, seconds=seconds,
                      preset=str(cfg.get("name") or ""), seeds=seeds, settings=key_settings(cfg, methods),
                      tags=tags, note=note)


def watch_problem(path: Path) -> str | None:
    """Why `rcekd watch` cannot follow `path` (one line), or None.

    A folder without events yet is fine: its run may be starting (the screen waits for it).
    """
    path = Path(path)
    if not path.exists():
        return f"'{path}' does not exist; pass a run directory (rcekd tui lists those under runs/)"
    if not path.is_dir():
        return f"'{path}' is a file; pass a run directory (the folder holding {EVENTS})"
    from .sweepinfo import is_sweep_dir

    if is_sweep_dir(path):
        return None
    run = RunDir(path)
    if run.events.exists() and not run.events.is_file():
        return f"'{run.events}' is not a file; pass a run directory written by rcekd distill"
    if not run.is_run():
        try:
            inner = next((p for p in path.iterdir() if p.is_dir() and is_run_dir(p)), None)
        except OSError as e:
            return f"cannot read '{path}': {e.strerror or e}"
        if inner is not None:
            return (f"'{path}' holds run directories, not a run; pass one of them (e.g. '{inner}') "
                    f"or browse them all with rcekd tui --runs-root {path}")
    return None


def summarize_sweep(path: Path) -> RunSummary | None:
    from .sweepinfo import sweep_progress

    progress = sweep_progress(path)
    if progress is None:
        return None
    best = progress.best_method()
    return RunSummary(progress.path, progress.status, progress.preset, progress.methods,
                      best[1] if best else None, f"{best[0]}, valid" if best else "", path.stat().st_mtime,
                      sweep=True)


def list_runs(root: Path) -> list[RunSummary]:
    """Every run directory and sweep folder directly under root, newest first."""
    from .sweepinfo import is_sweep_dir

    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    try:
        paths = [p for p in root.iterdir() if p.is_dir() and (is_run_dir(p) or is_sweep_dir(p))]
    except OSError:  # the root went away or cannot be read: nothing to list
        return []
    for p in paths:
        try:
            summary = summarize_sweep(p) if is_sweep_dir(p) else summarize(p)
        except OSError:  # deleted while the list was being read
            continue
        if summary is not None:
            runs.append(summary)
    return sorted(runs, key=lambda r: r.mtime, reverse=True)


def fit_curves(path: Path, column: str, teacher: bool = False,
               rows: list[dict[str, str]] | None = None) -> dict[tuple[str, str], tuple[list[int], list[float | None]]]:
    """(method, seed) → (epochs, `column` of metrics.csv) of each student fit (and the teacher's);
    `rows`: metrics.csv already read (several columns from one read)."""
    fits: dict[tuple[str, str], tuple[list[int], list[float | None]]] = {}
    for r in RunDir(path).read_metric_rows() if rows is None else rows:
        epoch = number(r.get("epoch"))
        model = r.get("model")
        if not (model == "student" or (teacher and model == "teacher")) or epoch is None \
                or not float(epoch).is_integer():
            continue
        xs, ys = fits.setdefault((r.get("method", "") if model == "student" else "teacher", r.get("seed", "")),
                                 ([], []))
        xs.append(int(epoch))
        ys.append(number(r.get(column)))
    return fits


def validation_curves(path: Path, metric: str = "NDCG@10") -> list[tuple[str, list[int], list[float | None]]]:
    """(method/seed, epochs, validation `metric`) of each student fit in the run's metrics."""
    fits = fit_curves(path, f"valid_{metric}")
    return [(f"{method}/s{seed}", xs, ys) for (method, seed), (xs, ys) in fits.items()]


@dataclass
class Band:
    """A method's curve over its seeds: the mean at each epoch, and mean ± std where ≥ 2 seeds have it."""

    method: str
    seeds: int
    epochs: list[int]
    mean: list[float | None]
    low: list[float | None]
    high: list[float | None]


def seed_bands(fits: dict[tuple[str, str], tuple[list[int], list[float | None]]]) -> list[Band]:
    """One band per method, in the order methods first appear (a fit that stopped early adds
    nothing after its last epoch: the mean is over the seeds that reached that epoch)."""
    by_method: dict[str, list[dict[int, float]]] = {}
    for (method, _seed), (xs, ys) in fits.items():
        by_method.setdefault(method, []).append({x: y for x, y in zip(xs, ys) if y is not None and math.isfinite(y)})
    out = []
    for method, seeds in by_method.items():
        epochs = sorted({e for s in seeds for e in s})
        band = Band(method, len(seeds), epochs, [], [], [])
        for e in epochs:
            vals = [s[e] for s in seeds if e in s]
            mean = sum(vals) / len(vals)
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else None
            band.mean.append(mean)
            band.low.append(None if std is None else mean - std)
            band.high.append(None if std is None else mean + std)
        out.append(band)
    return out


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values so they compare as a whole."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(flatten(v, key) if isinstance(v, dict) else {key: v})
    return out


def config_diff(paths: list[Path], skip: tuple[str, ...] = ("runtime.host",)) -> dict[str, list[Any]]:
    """Only the flattened config keys whose values differ between the runs."""
    flats = [flatten(RunDir(p).read_config()) for p in paths]
    keys = sorted(set().union(*flats)) if flats else []
    return {k: [f.get(k) for f in flats] for k in keys
            if k not in skip and len({json.dumps(f.get(k), default=str) for f in flats}) > 1}
