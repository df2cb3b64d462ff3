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


def test_workers_become_a_flag_only_above_one():
    assert "--workers" not in launch.build_distill_command("demo", Path("R"), {})
    assert launch.build_distill_command("demo", Path("R"), {"seeds": [0, 1]}, workers=3)[-4:] == [
        "--seeds", "0,1", "--workers", "3"]


def test_new_run_dirs_never_collide(tmp_path):
    first = launch.new_run_dir(tmp_path, "presets/demo.yaml", now=0)
    first.mkdir()
    second = launch.new_run_dir(tmp_path, "demo", now=0)
    assert first.name.startswith("demo-") and second.name == first.name + "-2"


def test_start_run_records_command_output_and_pid(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "build_distill_command",
                        lambda preset, run_dir, overrides, workers: [sys.executable, "-c", "print('hello from the run')"])
    proc = launch.start_run("demo", tmp_path / "r", {})
    assert proc.wait(30) == 0
    run = RunDir(tmp_path / "r")
    assert run.command.read_text().endswith("-c print('hello from the run')\n")
    assert run.read_pid() == proc.pid
    assert run.stdout.read_text() == "hello from the run\n"
    assert run_status(run) == "failed"  # exited without writing a single event


def test_resume_command_line():
    assert launch.build_resume_command(Path("runs/R")) == [sys.executable, "-m", "rcekd_tui", "distill", "--resume",
                                                           "runs/R"]


def test_start_resume_appends_output_and_rewrites_command_and_pid(tmp_path, monkeypatch):
    """Detached exactly like a new run: own session, stdin closed, output appended to the run's log."""
    run = RunDir(tmp_path / "r").create()
    run.stdout.write_bytes(b"first part\n")
    run.write_command(["old", "command"])
    run.write_pid(1)
    run.request_stop()  # left over from the stopped first part
    seen = {}

    class FakePopen:
        pid = 4242

        def __init__(self, cmd, **kwargs):
            seen["cmd"], seen["kwargs"] = cmd, kwargs
            kwargs["stdout"].write(b"resumed output\n")

    monkeypatch.setattr(launch.subprocess, "Popen", FakePopen)
    proc = launch.start_resume(run.root)
    assert seen["cmd"] == [sys.executable, "-m", "rcekd_tui", "distill", "--resume", str(run.root)]
    kw = seen["kwargs"]
    assert kw["start_new_session"] and kw["stdin"] is launch.subprocess.DEVNULL
    assert kw["stderr"] is launch.subprocess.STDOUT and kw["env"]["PYTHONUNBUFFERED"] == "1"
    assert run.command.read_text() == " ".join(seen["cmd"]) + "\n"
    assert run.read_pid() == proc.pid == 4242
    assert run.stdout.read_bytes() == b"first part\nresumed output\n"
    assert not run.stop_requested()


def test_start_resume_runs_a_real_detached_process(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "build_resume_command", lambda run_dir: [sys.executable, "-c", "print('again')"])
    run = RunDir(tmp_path / "r").create()
    run.stdout.write_text("once\n")
    proc = launch.start_resume(run.root)
    assert proc.wait(30) == 0 and run.read_pid() == proc.pid
    assert run.stdout.read_text() == "once\nagain\n"
