"""The trained teacher is cached under a hash of dataset + preprocessing + teacher config + seed.

Beside its best weights the cache keeps the teacher's training trajectory (checkpoints every
few epochs) for the methods that distil it (HetComp).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..data.sources import rcekd_home
from ..settings import ExperimentConfig

TEACHER_CACHE_VERSION = 1


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def teacher_key(cfg: ExperimentConfig) -> str:
    return stable_hash({
        "v": TEACHER_CACHE_VERSION,
        "data": asdict(cfg.data),
        "teacher": asdict(cfg.teacher),
        "train": asdict(cfg.teacher_train),
        "seed": cfg.teacher_seed,
        "select": [cfg.eval.ks, cfg.eval.mask_history, cfg.eval.select],
    })


class TeacherCache:
    def __init__(self, cfg: ExperimentConfig, home: Path | None = None):
        self.key = teacher_key(cfg)
        self.dir = (home or rcekd_home()) / "teachers" / self.key

    weights = property(lambda self: self.dir / "teacher.pt")
    meta_path = property(lambda self: self.dir / "meta.json")
    trajectory_dir = property(lambda self: self.dir / "trajectory")

    def exists(self) -> bool:
        return self.weights.exists() and self.meta_path.exists()

    def meta(self) -> dict[str, Any]:
        return json.loads(self.meta_path.read_text())

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write(self.meta_path, json.dumps(meta, indent=1))

    def trajectory_path(self, epoch: int) -> Path:
        return self.trajectory_dir / f"epoch{epoch}.pt"

    def trajectory_files(self) -> dict[int, Path]:
        """epoch -> checkpoint of the teacher trajectory saved during its training."""
        return trajectory_files(self.trajectory_dir)


def trajectory_files(directory: Path) -> dict[int, Path]:
    out = {}
    for p in Path(directory).glob("epoch*.pt"):
        m = re.fullmatch(r"epoch(\d+)\.pt", p.name)
        if m:
            out[int(m.group(1))] = p
    return out
