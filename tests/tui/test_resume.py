"""`rcekd distill --resume` after SIGKILL at random points gives the uninterrupted results.csv,
bit for bit; SIGTERM ends a run as `stopped` (exit 143) and resume finishes it."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

TINY = {
    "name": "tiny",
    "data": {"source": "demo", "n_users": 100, "n_items": 50, "n_clusters": 5, "mean_len": 10},
    "teacher": {"dim": 8, "blocks": 1, "heads": 1, "max_len": 10},
    "student": {"dim": 4, "blocks": 1, "heads": 1, "max_len": 10},
    "teacher_train": {"epochs": 4, "patience": 5},
    "student_train": {"epochs": 5, "patience": 5},
    "methods": ["scratch", "rcekd", "de"],  # de: a distiller with trained state of its own
    "rcekd": {"K": 5, "L": 5, "M": 10},
    "de": {"experts": 3},
}
EPOCHS = 4 + 3 * 5  # epoch events of an uninterrupted run


def distill(args: list[str], home: Path) -> subprocess.Popen:
    env = {**os.environ, "RCEKD_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "rcekd_tui", "distill", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def epochs_written(run: Path) -> int:
    try:
        return sum('"type": "epoch"' in line for line in (run / "events.jsonl").read_text().splitlines())
    except OSError:
        return 0


def run_until(proc: subprocess.Popen, run: Path, n_epochs: int, sig: int) -> None:
    """Send `sig` once the run has written n_epochs epoch events (or let it end)."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if epochs_written(run) >= n_epochs:
            proc.send_signal(sig)
            break
        time.sleep(0.01)
    proc.wait(timeout=120)


@pytest.fixture(scope="module")
def preset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("preset") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def uninterrupted(preset, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("full")
    proc = distill(["--preset", str(preset), "--run-dir", str(root / "run")], root / "home")
    assert proc.wait(timeout=300) == 0, proc.stdout.read().decode()
    assert epochs_written(root / "run") == EPOCHS
    return root / "run"


@pytest.mark.parametrize("point", sorted(random.Random(7).sample(range(1, EPOCHS), 3)))
def test_sigkill_anywhere_then_resume_gives_the_same_results(point, preset, uninterrupted, tmp_path):
    run, home = tmp_path / "run", tmp_path / "home"  # its own cache: the teacher is trained here too
    run_until(distill(["--preset", str(preset), "--run-dir", str(run)], home), run, point, signal.SIGKILL)
    assert epochs_written(run) < EPOCHS  # killed before the end
    resumed = distill(["--resume", str(run)], home)
    out = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, out
    assert (run / "results.csv").read_bytes() == (uninterrupted / "results.csv").read_bytes()
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x.strip()]
    assert [e["type"] for e in events].count("resumed") == 1 and events[-1]["type"] == "end"
    assert events[-1]["status"] == "finished"
    assert not list(run.rglob("*.tmp")) and not list(run.rglob("*.resume.pt"))
    # metrics.csv holds each epoch once, as the uninterrupted run's does
    keys = lambda p: sorted(tuple(line.split(",")[:4]) for line in (p / "metrics.csv").read_text().splitlines()[1:])  # noqa: E731
    assert keys(run) == keys(uninterrupted)


def test_sigterm_stops_cleanly_and_resume_finishes(preset, uninterrupted, tmp_path):
    run, home = tmp_path / "run", tmp_path / "home"
    proc = distill(["--preset", str(preset), "--run-dir", str(run)], home)
    run_until(proc, run, 7, signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stdout.read().decode()
    last = json.loads((run / "events.jsonl").read_text().splitlines()[-1])
    assert last["type"] == "end" and last["status"] == "stopped"
    resumed = distill(["--resume", str(run)], home)
    assert resumed.wait(timeout=300) == 0
    assert (run / "results.csv").read_bytes() == (uninterrupted / "results.csv").read_bytes()


def test_resume_refuses_a_finished_run_and_extra_options(uninterrupted, tmp_path):
    from typer.testing import CliRunner

    from rcekd_tui.cli import app

    res = CliRunner().invoke(app, ["distill", "--resume", str(uninterrupted)])
    assert res.exit_code == 2 and "has finished" in res.output
    res = CliRunner().invoke(app, ["distill", "--resume", str(uninterrupted), "--methods", "kd"])
    assert res.exit_code == 2 and "drop --methods" in res.output
    res = CliRunner().invoke(app, ["distill", "--resume", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "no run to resume" in res.output
