"""Whether a run directory's run is running, finished, stopped, failed or interrupted.

Engine-free and light (neither torch nor pandas): the TUI's runs list calls it for every run
directory on its first frame. The answer comes from, in order:

    the last `end` event             finished | stopped | failed, as the run wrote it
                                     (unless a `resumed` event follows it, or a resume launched
                                     after it is alive: then running)
    the run's lock, the pid file     running/starting while the process writing the run holds its lock
                                     (or the process the TUI launched lives), else interrupted/failed
    how recently the run wrote       (neither file: a run of an older version) running/starting if
                                     within RECENT seconds, else interrupted/failed

"interrupted" is a run that wrote events but no `end` and whose process is gone (SIGKILL, the
machine died): `rcekd distill --resume D` continues it. "starting" and "failed" are for a
directory without events yet (a launch still loading data, or one that died before its first
event, e.g. on bad data: its stdout log says why).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .events import End, parse_event
from .store import RunDir

RECENT = 300.0  # seconds: a run without an `end` event counts as running if touched this recently
TAIL_BYTES = 65536  # the `end` event is the last line; no need to read the whole file


def _run(run: RunDir | Path) -> RunDir:
    return run if isinstance(run, RunDir) else RunDir(run)


def is_run_dir(path: RunDir | Path) -> bool:
    """Written by a run, or by a TUI launch that has not produced events yet."""
    return _run(path).is_run()


def last_end(run: RunDir | Path) -> End | None:
    """The last `end` event of the run, read from the tail of its events file.

    None if there is none, or if a `resumed` event follows it (the run was continued since).
    Unreadable lines (torn, binary, not an object) are passed over.
    """
    events = _run(run).events
    try:
        with events.open("rb") as fh:
            fh.seek(max(events.stat().st_size - TAIL_BYTES, 0))
            tail = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(tail):
        if '"end"' not in line and '"resumed"' not in line:  # cheap filter before parsing
            continue
        try:
            raw = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(raw, dict) and raw.get("type") == "resumed":
            return None
        ev = parse_event(raw)
        if isinstance(ev, End) and isinstance(ev.status, str) and ev.status:
            return ev
    return None


RESUMABLE = ("interrupted", "stopped", "failed")  # what `rcekd distill --resume` continues


def started_at(run: RunDir | Path) -> float | None:
    """When the run started: the time of its first event (None before it wrote one)."""
    try:
        with _run(run).events.open("rb") as fh:
            first = fh.readline(TAIL_BYTES).decode("utf-8", "replace")
        t = json.loads(first).get("t")
    except (OSError, ValueError, RecursionError, AttributeError):
        return None
    return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else None


def run_status(run: RunDir | Path, now: float | None = None) -> str:
    """From the last `end` event; else running if its process lives or it wrote recently.

    running | starting | finished | stopped | failed | interrupted.
    """
    run = _run(run)
    end = last_end(run)
    alive = process_alive(run)
    if end is not None:
        if alive and _launched_after_events(run):  # a resume started, not yet writing
            return "running"
        return end.status
    has_events = run.events.is_file()
    if alive is None:  # neither a lock nor a pid file: judge by how recently it wrote
        now = time.time() if now is None else now
        alive = now - last_modified(run) < RECENT
    if alive:
        return "running" if has_events else "starting"
    return "interrupted" if has_events else "failed"


def why_not_resumable(run: RunDir | Path) -> str | None:
    """None if `rcekd distill --resume` may continue the run now; else why not, in a few words."""
    run = _run(run)
    status = run_status(run)
    if status not in RESUMABLE:
        return {"finished": "it finished", "running": "it is running", "starting": "it is starting"}.get(
            status, f"it is {status}")
    if not run.events.is_file():
        return f"it never started (no {run.events.name}; its {run.stdout.name} says why)"
    if run.lock_file.is_file() and run.is_locked():
        return "another process is writing it"
    return None


def _launched_after_events(run: RunDir) -> bool:
    """The pid file is newer than the last event: a process launched since the run ended."""
    try:
        return run.pid_file.stat().st_mtime > run.events.stat().st_mtime
    except OSError:
        return False


def process_alive(run: RunDir | Path) -> bool | None:
    """Whether a process writes the run (holds its lock) or the TUI's launch lives; None if the run
    has neither a lock nor a pid file (an older run: nothing to ask)."""
    run = _run(run)
    locked = run.is_locked() if run.lock_file.is_file() else None  # never creates the lock file
    launched = pid_alive(run)
    if locked or launched:
        return True
    return None if locked is None and launched is None else False


def pid_alive(run: RunDir | Path) -> bool | None:
    """None when there is no pid file (run started elsewhere); else whether that process lives."""
    pid = _run(run).read_pid()
    return None if pid is None else process_exists(pid)


def process_exists(pid: int) -> bool:
    """Whether a live (not zombie) process has this id."""
    if pid <= 0:  # not a process id (os.kill would signal a whole process group)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A child the TUI has not reaped yet still 'exists'; its state in /proc says it ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def last_modified(run: RunDir | Path) -> float:
    """When the run last wrote its events or output (the folder's own time if neither exists)."""
    return _run(run).last_modified()
