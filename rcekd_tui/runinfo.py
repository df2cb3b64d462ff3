"""Summaries of run directories for the runs screen: status, dataset, methods, best NDCG."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

RECENT = 300.0  # seconds: a run without an `end` event counts as running if touched this recently
TAIL_BYTES = 65536  # the `end` event is the last line; no need to read the whole file


@dataclass
class RunSummary:
    path: Path
    status: str
    dataset: str
    methods: list[str]
    best_ndcg: float | None
    best_method: str
    mtime: float

    @property
    def name(self) -> str:
        return self.path.name


def is_run_dir(path: Path) -> bool:
    return (path / "events.jsonl").is_file() or (path / "stdout.log").is_file()


def run_status(path: Path, now: float | None = None) -> str:
    """From the last `end` event; else running if recently written, else unknown/crashed."""
    events = path / "events.jsonl"
    now = time.time() if now is None else now
    if events.is_file():
        with events.open("rb") as fh:
            fh.seek(max(events.stat().st_size - TAIL_BYTES, 0))
            tail = fh.read().decode("utf-8", "replace").splitlines()
        for line in reversed(tail):
            if '"end"' in line:
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if ev.get("type") == "end":
                    return str(ev.get("status", "finished"))
    alive = pid_alive(path)
    if alive is not None:  # launched by the TUI: the process itself says whether it runs
        if alive:
            return "running" if events.is_file() else "starting"
        return "unknown/crashed" if events.is_file() else "failed"
    mtime = last_modified(path)
    if now - mtime < RECENT:
        return "running" if events.is_file() else "starting"
    return "unknown/crashed" if events.is_file() else "failed"


def pid_alive(path: Path) -> bool | None:
    """None when there is no pid file (run started elsewhere); else whether that process lives."""
    try:
        pid = int((path / "pid").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    """A child the TUI has not reaped yet still 'exists'; its state in /proc says it ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def last_modified(path: Path) -> float:
    stamps = [p.stat().st_mtime for p in (path / "events.jsonl", path / "stdout.log") if p.is_file()]
    return max(stamps, default=path.stat().st_mtime)


def read_config(path: Path) -> dict[str, Any]:
    try:
        cfg = yaml.safe_load((path / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def read_results(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path / "results.csv")
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError):
        return pd.DataFrame()


def mean_by_method(results: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Mean over seeds per method (teacher first), numeric metric columns only."""
    if results.empty or "split" not in results:
        return pd.DataFrame()
    df = results[results["split"] == split]
    metrics = [c for c in df.columns if "@" in c]
    out = df.groupby("method", sort=False)[metrics].mean()
    return out


def summarize(path: Path, now: float | None = None) -> RunSummary:
    cfg = read_config(path)
    res = read_results(path)
    best, best_method = None, ""
    means = mean_by_method(res[res["model"] == "student"] if "model" in res else res)
    if not means.empty and "NDCG@10" in means:
        best_method = str(means["NDCG@10"].idxmax())
        best = float(means["NDCG@10"].max())
    data = cfg.get("data") or {}
    dataset = data.get("file") or data.get("source") or "?"
    return RunSummary(path, run_status(path, now), str(dataset), list(cfg.get("methods") or []),
                      best, best_method, last_modified(path))


def list_runs(root: Path) -> list[RunSummary]:
    """Every run directory directly under root, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [summarize(p) for p in root.iterdir() if p.is_dir() and is_run_dir(p)]
    return sorted(runs, key=lambda r: r.mtime, reverse=True)


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
    flats = [flatten(read_config(p)) for p in paths]
    keys = sorted(set().union(*flats)) if flats else []
    return {k: [f.get(k) for f in flats] for k in keys
            if k not in skip and len({json.dumps(f.get(k), default=str) for f in flats}) > 1}
