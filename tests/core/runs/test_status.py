"""rcekd_core.runs.status on hand-written run directories: finished, stopped, failed, interrupted, running."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rcekd_core.runs.events import End, EventWriter, Resumed
from rcekd_core.runs.status import (
    RECENT,
    TAIL_BYTES,
    is_run_dir,
    last_end,
    pid_alive,
    process_alive,
    run_status,
    why_not_resumable,
)
from rcekd_core.runs.store import RunDir


@pytest.fixture
def dead_pid():
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("end", ["finished", "stopped", "failed"])
def test_status_is_the_end_event(write_run, end):
    run = write_run(end=end)
    assert run_status(run) == end
    assert run_status(run.root, now=run.last_modified() + 10 * RECENT) == end  # old runs too
    assert last_end(run).status == end


def test_the_end_event_wins_over_a_dead_process(write_run, dead_pid):
    run = write_run(end="finished")
    run.write_pid(dead_pid)
    assert run_status(run) == "finished"


def test_without_end_recent_is_running_old_is_interrupted(write_run):
    run = write_run(end=None)
    assert last_end(run) is None
    assert run_status(run) == "running"
    assert run_status(run, now=run.last_modified() + RECENT + 1) == "interrupted"


def test_a_dead_launch_is_interrupted_however_recent(write_run, dead_pid):
    run = write_run(end=None)
    run.write_pid(dead_pid)
    assert pid_alive(run) is False
    assert run_status(run) == "interrupted"


def test_a_launch_that_died_before_its_first_event_failed(tmp_path, dead_pid):
    run = RunDir(tmp_path / "early").create()
    run.stdout.write_text("error: bad data file\n")
    run.write_pid(dead_pid)
    assert is_run_dir(run.root) and not run.events.exists()
    assert run_status(run) == "failed"


def test_a_live_process_is_running_however_old(write_run, tmp_path, live_pid):
    run = write_run(end=None)
    run.write_pid(live_pid)
    assert pid_alive(run) is True
    assert run_status(run, now=run.last_modified() + 10 * RECENT) == "running"
    starting = RunDir(tmp_path / "starting").create()
    starting.stdout.write_text("reading demo\n")
    starting.write_pid(live_pid)
    assert run_status(starting) == "starting"


def test_an_unreaped_child_counts_as_ended(write_run):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited; still a zombie
        run = write_run(end=None)
        run.write_pid(proc.pid)
        assert pid_alive(run) is False
        assert run_status(run) == "interrupted"
    finally:
        proc.wait()


def test_no_pid_file_means_unknown(write_run):
    assert pid_alive(write_run(end=None)) is None


def test_end_is_read_from_the_tail_only_and_parsed_through_the_schema(tmp_path):
    run = RunDir(tmp_path / "r").create()
    filler = json.dumps({"type": "warning", "message": "x" * 1000}) + "\n"
    with run.events.open("w") as fh:
        fh.write(json.dumps({"type": "end", "status": "stopped"}) + "\n")  # far before the tail
        fh.write(filler * (TAIL_BYTES // len(filler) + 2))
        fh.write(json.dumps({"type": "warning", "message": 'not an "end"'}) + "\n")
        fh.write('{"type": "end", "sta')  # torn: skipped
    assert last_end(run) is None
    with run.events.open("a") as fh:
        fh.write("\n" + json.dumps({"type": "end", "status": "finished"}) + "\n")  # v0: no version field
    assert last_end(run).status == "finished" and last_end(run).v == 0


def test_a_folder_without_events_or_output_is_not_a_run(tmp_path, write_run):
    (tmp_path / "empty").mkdir()
    assert not is_run_dir(tmp_path / "empty")
    assert is_run_dir(write_run().root)


def test_status_imports_neither_torch_nor_pandas():
    code = ("import sys, rcekd_core.runs.status; "
            "print(sorted(m for m in ('torch', 'pandas', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- interrupted, resumed ----------------------------------------------------------------

def old(run: RunDir) -> RunDir:
    """As if the run last wrote long ago."""
    os.utime(run.events, (1, 1))
    return run


def test_stopped_and_failed_stay_so_and_are_resumable(write_run):
    for end in ("stopped", "failed"):
        run = old(write_run(end, end=end))
        assert run_status(run) == end and why_not_resumable(run) is None
    assert why_not_resumable(write_run("done", end="finished")) == "it finished"
    assert why_not_resumable(write_run("live", end=None)) == "it is running"
    assert why_not_resumable(old(write_run("killed", end=None))) is None


def test_a_run_that_never_started_is_not_resumable(tmp_path, dead_pid):
    run = RunDir(tmp_path / "early").create()
    run.stdout.write_text("error: bad data file\n")
    run.write_pid(dead_pid)
    assert run_status(run) == "failed" and "never started" in why_not_resumable(run)


def test_a_resumed_event_after_the_end_means_the_end_is_over(write_run, dead_pid):
    run = write_run(end="stopped")
    w = EventWriter(run.events)
    w.emit(Resumed(fits_done=2, continuing="rcekd seed 0 from epoch 2"))
    w.close()
    assert last_end(run) is None
    assert run_status(run) == "running"  # written just now
    run.write_pid(dead_pid)
    assert run_status(run) == "interrupted"  # the resumed process is gone: killed again
    w = EventWriter(run.events)
    w.emit(End(status="finished"))
    w.close()
    assert run_status(run) == "finished"


def test_a_resume_launched_after_the_end_is_running(write_run, live_pid):
    run = old(write_run(end="stopped"))
    run.write_pid(live_pid)  # newer than the last event: the resume is loading its data
    assert run_status(run) == "running" and why_not_resumable(run) == "it is running"
    os.utime(run.pid_file, (0, 0))  # a pid file older than the end: the run's own, finishing
    assert run_status(run) == "stopped"


def test_the_runs_lock_tells_a_live_writer_from_a_killed_one(write_run):
    run = old(write_run(end=None))
    assert process_alive(run) is None and run_status(run) == "interrupted"  # by age alone
    fresh = write_run("fresh", end=None)
    handle = fresh.lock()
    try:
        assert process_alive(fresh) is True
        assert run_status(fresh, now=fresh.last_modified() + 10 * RECENT) == "running"  # quiet, but locked
        assert why_not_resumable(old(fresh)) == "it is running"
    finally:
        handle.close()  # as SIGKILL would release it
    os.utime(fresh.events, None)  # written just now
    assert process_alive(fresh) is False and run_status(fresh) == "interrupted"  # however recent
    other = write_run("other", end=None)
    assert process_alive(other) is None and not other.lock_file.exists()  # asking never creates a lock file


@pytest.mark.parametrize("junk", [b"\x00\xff\xfe binary \"end\"\n", b'["end", "finished"]\n',
                                  b'{"type": "end", "status": ["x"]}\n', b'{"type": "end", "status": 5}\n',
                                  b"[" * 5000 + b' "end"\n', b'{"type": "resumed", \n'])
def test_unreadable_end_lines_are_passed_over(write_run, junk):
    run = write_run(end="stopped")
    with run.events.open("ab") as fh:
        fh.write(junk)
    assert last_end(run).status == "stopped" and run_status(run) == "stopped"
