"""The teacher cache is keyed by content, written complete-or-absent, checked on load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from rcekd_core.config import load_config
from rcekd_core.errors import ConfigError
from rcekd_core.experiment import run_experiment
from rcekd_core.runs.events import Phase, RunWarning, read_events
from rcekd_core.runs.store import RunDir

TINY = {
    "teacher": {"dim": 8, "blocks": 1, "heads": 1, "max_len": 10},
    "student": {"dim": 4, "blocks": 1, "heads": 1, "max_len": 10},
    "teacher_train": {"epochs": 2}, "student_train": {"epochs": 1}, "methods": ["scratch"],
}


def write_log(path: Path, seed: int) -> Path:
    """A user,item,timestamp CSV: 40 users with 8 interactions each over 30 items."""
    rng = np.random.default_rng(seed)
    lines = ["user,item,timestamp"]
    for u in range(40):
        for t, i in enumerate(rng.choice(30, size=8, replace=False)):
            lines.append(f"u{u},i{i},{t}")
    path.write_text("\n".join(lines) + "\n")
    return path


def run(data_file: Path, run_dir: Path, **kw) -> tuple[bool, list]:
    cfg = load_config("demo", {**TINY, "data": {"source": "file", "file": str(data_file)}})
    run_experiment(cfg, run_dir, **kw)
    events = read_events(RunDir(run_dir).events)
    phase = next(e for e in events if isinstance(e, Phase) and e.phase == "teacher")
    return phase.cached, events


def entries(home: Path) -> list[Path]:
    return [p for p in (home / "teachers").iterdir() if not p.name.startswith(".")]


def test_a_rewritten_data_file_trains_a_new_teacher_a_moved_one_does_not(tmp_path, monkeypatch):
    monkeypatch.setenv("RCEKD_HOME", str(tmp_path / "home"))
    data = write_log(tmp_path / "log.csv", seed=0)
    assert run(data, tmp_path / "r1")[0] is False
    assert run(data, tmp_path / "r2")[0] is True
    write_log(data, seed=1)  # same path, other interactions
    os.utime(data, ns=(1, 1))
    assert run(data, tmp_path / "r3")[0] is False
    moved = tmp_path / "elsewhere.csv"
    moved.write_bytes(data.read_bytes())  # same content, another path
    assert run(moved, tmp_path / "r4")[0] is True
    assert len(entries(tmp_path / "home")) == 2


@pytest.mark.parametrize("damage", ["truncate", "tamper_meta", "delete_meta"])
def test_a_corrupt_entry_is_named_set_aside_and_trained_again(damage, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("RCEKD_HOME", str(home))
    data = write_log(tmp_path / "log.csv", seed=0)
    run(data, tmp_path / "r1")
    (entry,) = entries(home)
    if damage == "truncate":
        weights = entry / "teacher.pt"
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "tamper_meta":
        meta = json.loads((entry / "meta.json").read_text())
        (entry / "meta.json").write_text(json.dumps({**meta, "sha256": "0" * 64}))
    else:
        (entry / "meta.json").unlink()
    with pytest.raises(ConfigError, match=f"teacher cache entry {entry} is corrupt"):
        run(data, tmp_path / "refused", retrain=False)
    cached, events = run(data, tmp_path / "r2")
    assert cached is False
    warning = next(e for e in events if isinstance(e, RunWarning))
    assert str(entry) in warning.message and "corrupt" in warning.message
    assert run(data, tmp_path / "r3")[0] is True  # the retrained entry is sound
    assert any(p.name.startswith(".corrupt-") for p in (home / "teachers").iterdir())


def test_a_cache_that_cannot_be_written_costs_only_the_speed_up(tmp_path, monkeypatch):
    from rcekd_core.train import teacher as teacher_module

    monkeypatch.setenv("RCEKD_HOME", str(tmp_path / "home"))

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self.root))

    monkeypatch.setattr(teacher_module.TeacherCache, "store", refuse)
    cached, events = run(write_log(tmp_path / "log.csv", seed=0), tmp_path / "r1")
    assert cached is False and events[-1].status == "finished"
    assert any(isinstance(e, RunWarning) and "cannot write the teacher cache" in e.message for e in events)


def test_two_processes_training_the_same_teacher_share_one_sound_entry(tmp_path):
    home = tmp_path / "home"
    data = write_log(tmp_path / "log.csv", seed=0)
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump({**TINY, "name": "p", "data": {"source": "file", "file": str(data)}}))
    env = {**os.environ, "RCEKD_HOME": str(home), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "rcekd_tui", "train-teacher", "--preset", str(preset),
                               "--run-dir", str(tmp_path / f"r{i}")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stdout.read().decode()
    (entry,) = entries(home)
    assert not [p for p in (home / "teachers").iterdir() if p.name.startswith(".staging")]
    from rcekd_core.train.teacher import TeacherCache

    cache = TeacherCache.__new__(TeacherCache)
    cache.root, cache.dir, cache.key = home / "teachers", entry, entry.name
    assert cache.verify()["best_epoch"] >= 1
