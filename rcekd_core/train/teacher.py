"""The trained teacher is cached under a hash of dataset + preprocessing + teacher config + seed."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig, stable_hash
from ..data.sources import rcekd_home
from ..runs.store import atomic_write

TEACHER_CACHE_VERSION = 1


def teacher_key(cfg: ExperimentConfig) -> str:
    return stable_hash({
        "v": TEACHER_CACHE_VERSION,
        "data": asdict(cfg.data),
        "teacher": asdict(cfg.teacher),
        "train": asdict(cfg.teacher_train),
        "seed": cfg.teacher_seed,
        "select": [cfg.eval.ks, cfg.eval.mask_history],
    })


class TeacherCache:
    def __init__(self, cfg: ExperimentConfig, home: Path | None = None):
        self.key = teacher_key(cfg)
        self.dir = (home or rcekd_home()) / "teachers" / self.key

    weights = property(lambda self: self.dir / "teacher.pt")
    meta_path = property(lambda self: self.dir / "meta.json")

    def exists(self) -> bool:
        return self.weights.exists() and self.meta_path.exists()

    def meta(self) -> dict[str, Any]:
        return json.loads(self.meta_path.read_text())

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write(self.meta_path, json.dumps(meta, indent=1))
