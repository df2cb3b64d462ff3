"""Start `distill` as a detached process writing into a run dir: it outlives the TUI and SSH."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rcekd_core.runs.store import RunDir

FLAG_KEYS = {"methods": "--methods", "seeds": "--seeds", "device": "--device"}


def _fmt(value: Any) -> str:
    """A value as `--set` parses it back (YAML scalars; lists as a,b,c)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_fmt(v) for v in value)
    return str(value)


def _flat(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in tree.items():
        key = f"{prefix}{k}"
        out += _flat(v, key + ".") if isinstance(v, dict) else [(key, v)]
    return out


def build_distill_command(preset: str, run_dir: Path, overrides: dict[str, Any], workers: int = 1) -> list[str]:
    """The headless command line for one run: methods/seeds/device as flags, the rest as --set;
    `--workers N` when the student fits run in N processes."""
    cmd = [sys.executable, "-m", "rcekd_tui", "distill", "--preset", str(preset), "--run-dir", str(run_dir)]
    for key, flag in FLAG_KEYS.items():
        if key in overrides:
            cmd += [flag, _fmt(overrides[key])]
    rest = {k: v for k, v in overrides.items() if k not in FLAG_KEYS}
    for key, value in _flat(rest):
        cmd += ["--set", f"{key}={_fmt(value)}"]
    if workers != 1:
        cmd += ["--workers", str(workers)]
    return cmd


def new_run_dir(runs_root: Path, preset: str, now: float | None = None) -> Path:
    """`<preset>-YYYYmmdd-HHMMSS` under the runs root, with a suffix if that second is taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = Path(runs_root) / f"{Path(preset).stem}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def build_resume_command(run_dir: Path) -> list[str]:
    """`rcekd distill --resume D`: finished fits kept, the interrupted fit continues from its last epoch."""
    return [sys.executable, "-m", "rcekd_tui", "distill", "--resume", str(run_dir)]


def start_run(preset: str, run_dir: Path, overrides: dict[str, Any], workers: int = 1) -> subprocess.Popen:
    """Launch in its own session (no SIGHUP from the terminal); output goes to the run's stdout log.

    The run directory also records the command line and the process id (which lets the runs
    list tell a running run from an interrupted one).
    """
    run = RunDir(run_dir).create()
    return _spawn(run, build_distill_command(preset, run.root, overrides, workers))


def start_resume(run_dir: Path) -> subprocess.Popen:
    """Continue an interrupted, stopped or failed run in its own directory, detached like start_run.

    Its output is appended to the run's stdout log; the command line and pid files are
    rewritten; a stop request left from the first part is cleared (the resume means: go on).
    """
    run = RunDir(run_dir)
    run.clear_stop()
    return _spawn(run, build_resume_command(run.root))


def _spawn(run: RunDir, cmd: list[str]) -> subprocess.Popen:
    run.write_command(cmd)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with run.open_stdout() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)
    run.write_pid(proc.pid)
    return proc
