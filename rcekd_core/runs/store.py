"""Run directory layout: config.yaml, events.jsonl, metrics.csv, results.csv, checkpoints/."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

METRICS_COLUMNS = [
    "model", "method", "seed", "epoch", "seconds", "loss", "base_loss", "kd_loss", "gamma",
    "refresh_seconds", "overlap@10",
]
RESULT_KEYS = ["model", "method", "seed", "split"]


def atomic_write(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    def __init__(self, root: Path):
        self.root = Path(root)

    config = property(lambda self: self.root / "config.yaml")
    events = property(lambda self: self.root / "events.jsonl")
    metrics = property(lambda self: self.root / "metrics.csv")
    results = property(lambda self: self.root / "results.csv")
    checkpoints = property(lambda self: self.root / "checkpoints")
    stop_file = property(lambda self: self.root / "STOP")

    def create(self) -> "RunDir":
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write(self.config, yaml.safe_dump(config, sort_keys=False))

    def request_stop(self) -> None:
        self.stop_file.touch()


class MetricsCsv:
    """One row per epoch; columns fixed at METRICS_COLUMNS plus the metric names, appended live."""

    def __init__(self, path: Path, metric_names: list[str]):
        self.path = Path(path)
        self.columns = METRICS_COLUMNS + [f"valid_{m}" for m in metric_names]
        if not self.path.exists():
            with self.path.open("w", newline="") as fh:
                csv.writer(fh).writerow(self.columns)

    def append(self, row: dict[str, Any]) -> None:
        with self.path.open("a", newline="") as fh:
            csv.writer(fh).writerow([_fmt(row.get(c)) for c in self.columns])


class ResultsCsv:
    """One row per model x method x seed x split; rewritten atomically after each model."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.rows.extend(rows)
        columns: list[str] = []
        for r in self.rows:
            columns += [c for c in r if c not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({c: _fmt(r.get(c)) for c in columns})
        atomic_write(self.path, buf.getvalue())


def _fmt(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
