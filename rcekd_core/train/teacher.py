"""The trained teacher, cached under a hash of what made it: the data's content, the split
protocol, the teacher's model and training settings, its seed, and the model's code.

An entry is a folder `teachers/<key>/` with teacher.pt, meta.json (which holds teacher.pt's
SHA-256) and trajectory/ (checkpoints saved while it trained, for HetComp). It is assembled
under a temporary name and renamed into place in one step, so it is complete or absent; two
processes training the same teacher both succeed and the first rename wins. An entry whose
checksum or weights do not load is reported, set aside and trained again.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..data.sources import rcekd_home
from ..errors import RcekdError
from ..runs.status import process_exists
from ..settings import ExperimentConfig

TEACHER_CACHE_VERSION = 2  # bump when training changes what a teacher's weights are


class CorruptEntry(RcekdError):
    """A cache entry that cannot be trusted (checksum, missing file, weights that do not load)."""


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_code_version(arch: str) -> str:
    """A hash of the source of the teacher's model class and the model protocol it builds on."""
    from ..models import base
    from ..models.registry import MODELS

    cls = MODELS[arch]
    sources = {inspect.getsourcefile(c) for c in cls.__mro__ if c.__module__.startswith("rcekd_core")}
    sources.add(inspect.getsourcefile(base))
    h = hashlib.sha256()
    for path in sorted(s for s in sources if s):
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def train_key(train) -> dict[str, Any]:
    """The teacher's training settings as keyed; the window settings only when not their
    defaults, so teachers cached before they existed (all trained on `last`) stay valid."""
    key = asdict(train)
    if key.get("windows") == "last" and key.get("stride") == 0:
        del key["windows"], key["stride"]
    return key


def teacher_key(cfg: ExperimentConfig, data_fingerprint: str) -> str:
    return stable_hash({
        "v": TEACHER_CACHE_VERSION,
        "data": data_fingerprint,
        "protocol": cfg.data.protocol,
        "teacher": asdict(cfg.teacher),
        "train": train_key(cfg.teacher_train),
        "seed": cfg.teacher_seed,
        "select": [cfg.eval.ks, cfg.eval.mask_history, cfg.eval.select],
        "code": model_code_version(cfg.teacher.arch),
    })


class TeacherCache:
    def __init__(self, cfg: ExperimentConfig, data_fingerprint: str, home: Path | None = None):
        self.key = teacher_key(cfg, data_fingerprint)
        self.root = (home or rcekd_home()) / "teachers"
        self.dir = self.root / self.key

    weights = property(lambda self: self.dir / "teacher.pt")
    meta_path = property(lambda self: self.dir / "meta.json")
    trajectory_dir = property(lambda self: self.dir / "trajectory")

    def exists(self) -> bool:
        return self.dir.is_dir()

    def meta(self) -> dict[str, Any]:
        """meta.json of the entry; CorruptEntry when it is missing or unreadable."""
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise CorruptEntry(f"meta.json unreadable ({e.__class__.__name__})") from None
        if not isinstance(meta, dict):
            raise CorruptEntry("meta.json is not an object")
        return meta

    def verify(self) -> dict[str, Any]:
        """The entry's meta after checking teacher.pt against its checksum; CorruptEntry if not."""
        meta = self.meta()
        try:
            digest = _sha256(self.weights)
        except OSError:
            raise CorruptEntry("teacher.pt is missing or unreadable") from None
        if digest != meta.get("sha256"):
            raise CorruptEntry("teacher.pt does not match its checksum")
        return meta

    def set_aside(self) -> Path:
        """Move a corrupt entry out of the way (kept for inspection); where it went."""
        aside = self.root / f".corrupt-{self.key}-{time.time_ns()}-{os.getpid()}"
        try:
            os.replace(self.dir, aside)
        except FileNotFoundError:  # another process set it aside first
            pass
        return aside

    def store(self, weights: Path, meta: dict[str, Any], trajectory: dict[int, Path]) -> bool:
        """Publish an entry from files written elsewhere; False when another process was first."""
        for old in self.root.glob(f".staging-{self.key}-*"):  # left by a killed process
            pid = old.name.rsplit("-", 1)[-1]
            if not (pid.isdigit() and process_exists(int(pid))):
                shutil.rmtree(old, ignore_errors=True)
        staging = self.root / f".staging-{self.key}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "trajectory").mkdir(parents=True)
        try:
            shutil.copyfile(weights, staging / "teacher.pt")
            for epoch, path in trajectory.items():
                shutil.copyfile(path, staging / "trajectory" / trajectory_name(epoch))
            atomic_write(staging / "meta.json", json.dumps({**meta, "sha256": _sha256(staging / "teacher.pt")},
                                                           indent=1))
            try:
                os.rename(staging, self.dir)
            except OSError:
                if self.dir.is_dir():  # another process published the same teacher first
                    return False
                raise
            return True
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def trajectory_files(self) -> dict[int, Path]:
        """epoch -> checkpoint of the teacher trajectory saved during its training."""
        return trajectory_files(self.trajectory_dir)


def trajectory_name(epoch: int) -> str:
    return f"epoch{epoch}.pt"


def trajectory_files(directory: Path) -> dict[int, Path]:
    out = {}
    for p in Path(directory).glob("epoch*.pt"):
        m = re.fullmatch(r"epoch(\d+)\.pt", p.name)
        if m:
            out[int(m.group(1))] = p
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
