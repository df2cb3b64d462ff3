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
    "teacher_train": {"epochs": 3, "patience": 5},
    "student_train": {"epochs": 4, "patience": 5},
    "methods": ["scratch", "rcekd"],  # a distiller with trained state (de): tests/core/test_resume.py
    "rcekd": {"K": 5, "L": 5, "M": 10},
}
EPOCHS = 3 + 2 * 4  # epoch events of an uninterrupted run


def distill(args: list[str], home: Path) -> subprocess.Popen:
    env = {**os.environ, "RCEKD_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "rcekd_tui", "distill", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def epochs_written(run: Path) -> int:
    try:
        return sum('"type": "epoch"' in line for line in (run / "events.jsonl").read_text().splitlines())
    except OSError:
        return 0


@pytest.fixture(scope="module")
def preset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("preset") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


POINTS = sorted(random.Random(7).sample(range(1, EPOCHS), 3))  # epochs after which SIGKILL lands


@pytest.fixture(scope="module")
def runs(preset, tmp_path_factory) -> dict:
    """Three `rcekd distill` processes killed with SIGKILL and one stopped with SIGTERM (each with
    its own cache, so its teacher trains too), side by side; the uninterrupted run and the
    SIGKILLed runs' resumes in this process (the same code at the same thread count, without
    a process start each); the SIGTERMed run resumed by `rcekd distill --resume`."""
    import torch

    from rcekd_core.config import load_config
    from rcekd_core.experiment import resume_experiment, run_experiment

    root = tmp_path_factory.mktemp("runs")
    cases = {**{f"kill{p}": (p, signal.SIGKILL) for p in POINTS}, "term": (5, signal.SIGTERM)}
    procs = {name: distill(["--preset", str(preset), "--run-dir", str(root / name)], root / f"home-{name}")
             for name in cases}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as OMP_NUM_THREADS=1 in the processes: the same reduction order
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("RCEKD_HOME", str(root / "home-full"))
        run_experiment(load_config(str(preset)), root / "full")
        deadline = time.monotonic() + 300
        pending = dict(cases)
        while pending and time.monotonic() < deadline:
            for name, (point, sig) in list(pending.items()):
                if procs[name].poll() is not None:  # ended before its point: the test below says so
                    del pending[name]
                elif epochs_written(root / name) >= point:
                    procs[name].send_signal(sig)
                    del pending[name]
            time.sleep(0.01)
        codes = {name: proc.wait(timeout=300) for name, proc in procs.items()}
        written = {name: epochs_written(root / name) for name in [*cases, "full"]}
        term = distill(["--resume", str(root / "term")], root / "home-term")
        resumed, outputs = {}, {}
        for name in cases:
            if name == "term":
                continue
            mp.setenv("RCEKD_HOME", str(root / f"home-{name}"))
            try:
                resume_experiment(root / name)
                resumed[name], outputs[name] = 0, ""
            except Exception as e:  # noqa: BLE001 — reported by the test that reads it
                resumed[name], outputs[name] = 1, repr(e)
        outputs["term"] = term.communicate(timeout=300)[0].decode()
        resumed["term"] = term.returncode
    finally:
        mp.undo()
        torch.set_num_threads(threads)
    return {"root": root, "codes": {**codes, "full": 0}, "written": written, "resumed": resumed,
            "outputs": outputs}


def metric_keys(run: Path) -> list:
    return sorted(tuple(line.split(",")[:4]) for line in (run / "metrics.csv").read_text().splitlines()[1:])


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_anywhere_then_resume_gives_the_same_results(point, runs):
    root, name = runs["root"], f"kill{point}"
    run, full = root / name, root / "full"
    assert runs["codes"]["full"] == 0 and runs["written"]["full"] == EPOCHS
    assert runs["codes"][name] == -signal.SIGKILL and runs["written"][name] < EPOCHS  # killed before the end
    assert runs["resumed"][name] == 0, runs["outputs"][name]
    assert (run / "results.csv").read_bytes() == (full / "results.csv").read_bytes()
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x.strip()]
    assert [e["type"] for e in events].count("resumed") == 1 and events[-1]["type"] == "end"
    assert events[-1]["status"] == "finished"
    assert not list(run.rglob("*.tmp")) and not list(run.rglob("*.resume.pt"))
    assert metric_keys(run) == metric_keys(full)  # each epoch once, as the uninterrupted run has it


def test_sigterm_stops_cleanly_and_resume_finishes(runs):
    root = runs["root"]
    assert runs["codes"]["term"] == 128 + signal.SIGTERM
    events = [json.loads(x) for x in (root / "term" / "events.jsonl").read_text().splitlines() if x.strip()]
    stopped = next(i for i, e in enumerate(events) if e["type"] == "end")
    assert events[stopped]["status"] == "stopped" and events[stopped + 1]["type"] == "resumed"
    assert runs["resumed"]["term"] == 0, runs["outputs"]["term"]
    assert (root / "term" / "results.csv").read_bytes() == (root / "full" / "results.csv").read_bytes()


def test_resume_refuses_a_finished_run_and_extra_options(runs, tmp_path):
    uninterrupted = runs["root"] / "full"
    from typer.testing import CliRunner

    from rcekd_tui.cli import app

    res = CliRunner().invoke(app, ["distill", "--resume", str(uninterrupted)])
    assert res.exit_code == 2 and "has finished" in res.output
    res = CliRunner().invoke(app, ["distill", "--resume", str(uninterrupted), "--methods", "kd"])
    assert res.exit_code == 2 and "drop --methods" in res.output
    res = CliRunner().invoke(app, ["distill", "--resume", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "no run to resume" in res.output
