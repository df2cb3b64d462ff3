"""A detached launch records its command, output and process id in the run directory."""

from __future__ import annotations

import sys
from pathlib import Path

from rcekd_core.runs.status import run_status
from rcekd_core.runs.store import RunDir
from rcekd_tui import launch


def test_command_line_from_the_form_overrides():
    cmd = launch.build_distill_command("demo", Path("R"), {
        "methods": "scratch,rcekd", "seeds": [0, 1], "rcekd": {"K": 20, "beta": 0.5}, "data": {"file": None},
        "student_train": {"epochs": 2}, "eval": {"mask_history": False}})
    assert cmd[3:] == ["distill", "--preset", "demo", "--run-dir", "R", "--methods", "scratch,rcekd",
                       "--seeds", "0,1", "--set", "rcekd.K=20", "--set", "rcekd.beta=0.5", "--set", "data.file=null",
                       "--set", "student_train.epochs=2", "--set", "eval.mask_history=false"]


def test_new_run_dirs_never_collide(tmp_path):
    first = launch.new_run_dir(tmp_path, "presets/demo.yaml", now=0)
    first.mkdir()
    second = launch.new_run_dir(tmp_path, "demo", now=0)
    assert first.name.startswith("demo-") and second.name == first.name + "-2"


def test_start_run_records_command_output_and_pid(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "build_distill_command",
                        lambda preset, run_dir, overrides: [sys.executable, "-c", "print('hello from the run')"])
    proc = launch.start_run("demo", tmp_path / "r", {})
    assert proc.wait(30) == 0
    run = RunDir(tmp_path / "r")
    assert run.command.read_text().endswith("-c print('hello from the run')\n")
    assert run.read_pid() == proc.pid
    assert run.stdout.read_text() == "hello from the run\n"
    assert run_status(run) == "failed"  # exited without writing a single event
