"""`rcekd distill --workers N`: the student fits of one run in N worker processes, while the
run directory D is still written by one process only.

The parent has run the teacher phase (so the teacher is in the cache). It deals the remaining
(method, seed) fits round-robin into N shares; worker k runs its share as an ordinary run of
D's config in D/parts/<k>/ (`python -m rcekd_core.part`), teacher from the cache. The parent
follows the parts' events and re-emits the student-side ones into D (events.jsonl, metrics.csv,
results.csv in the order a sequential run writes), passes D's STOP on to every part, and moves
the students' checkpoints into D/checkpoints, so `rcekd watch D`, the TUI and `--resume` see one
run. Every fit seeds its own generators at its start: how the fits are shared out changes no
number (at the same threads per fit).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .errors import ConfigError, WorkerFailed
from .runs.events import End, Epoch, Error, Event, EventTailer, FitStart, Phase, Result, RunWarning
from .runs.store import MetricsCsv, RunDir, drop_epochs_after
from .train.checkpoint import load_resume_state

if TYPE_CHECKING:
    from .experiment import Experiment

POLL = 0.3  # seconds between reads of the parts' events
GRACE = 60.0  # seconds a worker told to stop gets to save its state before it is killed
Fit = tuple[str, int]


def deal(todo: list[Fit], n: int) -> list[list[Fit]]:
    """Round-robin in the sequential order: worker k gets fits k, k + n, k + 2n, ..."""
    return [share for share in (todo[k::n] for k in range(min(n, len(todo)))) if share]


def threads_per_worker(n: int) -> int:
    """The cores shared out, and never more than this process uses itself (OMP_NUM_THREADS)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(torch.get_num_threads(), cores // n))


@dataclass
class Worker:
    """One worker process, its part directory and what its events said so far."""

    index: int
    part: RunDir
    fits: list[Fit]
    proc: subprocess.Popen | None = None
    tailer: EventTailer | None = None
    end: str | None = None  # the status of the part's `end` event, once read
    error: str = ""  # the part's last run-level error

    def start(self, run: RunDir, threads: int) -> None:
        cmd = [sys.executable, "-m", "rcekd_core.part", "--run", str(run.root), "--part", str(self.index),
               "--fits", json.dumps(self.fits), "--threads", str(threads), "--parent", str(os.getpid())]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        with self.part.open_stdout() as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         env=env)
        self.tailer = EventTailer(self.part.events)

    @property
    def exited(self) -> bool:
        return self.proc is None or self.proc.poll() is not None

    def failure(self) -> str | None:
        """Why the exited worker failed; None if it finished or was stopped."""
        if self.end in ("finished", "stopped"):
            return None
        code = "never started" if self.proc is None else f"exit code {self.proc.returncode}"
        last = _last_line(self.part.stdout)  # an error before its first event: the traceback's last line
        why = self.error or f"it ended without an end event ({code}{': ' + last if last else ''})"
        return f"worker {self.index} failed: {why}; its output is in {self.part.stdout}"

    def finish(self) -> None:
        """A worker still running is told to stop (it saves its state, as on SIGTERM), then killed."""
        if self.exited:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(GRACE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_in_parts(exp: Experiment, todo: list[Fit]) -> None:
    """The student phase of `exp` in `exp.workers` processes; returns once every worker ended."""
    Parts(exp, todo).run()


class Parts:
    """The workers of one student phase, and the parent's side of them."""

    def __init__(self, exp: Experiment, todo: list[Fit]):
        self.exp = exp
        self.workers = [Worker(k, exp.run.part(k), share) for k, share in enumerate(deal(todo, exp.workers))]
        self.view_shown = False  # the teacher view's phase is shown once, not once per worker

    def run(self) -> None:
        exp, run = self.exp, self.exp.run
        adopt_parts(exp)  # an earlier attempt's parts: kept in the run, then their folders go
        run.clear_parts()
        for w in self.workers:
            self.hand_over(w)
        exp.metrics = MetricsCsv(run.metrics)  # a hand-over may have rewritten metrics.csv
        threads = threads_per_worker(len(self.workers))
        failed: str | None = None
        try:
            for w in self.workers:
                w.start(run, threads)
            while True:
                exited = [w.exited for w in self.workers]  # before reading: their last lines are read now
                for w in self.workers:
                    self.relay(w)
                if not failed:
                    failed = next((why for w, gone in zip(self.workers, exited) if gone and (why := w.failure())), None)
                if exp.should_stop() or failed:
                    for w in self.workers:  # every poll: a worker still starting clears a STOP file
                        if not w.exited:
                            w.part.request_stop()
                if all(exited):
                    break
                time.sleep(POLL)
        finally:  # also on SIGTERM / Ctrl-C of this process: the workers stop and save their state
            for w in self.workers:
                w.finish()
            for w in self.workers:
                if w.tailer is not None:
                    self.relay(w)
            adopt_parts(exp)
        if failed:
            raise WorkerFailed(failed)
        if any(w.end == "stopped" for w in self.workers):
            exp.stop_requested = True  # a worker stopped on its own (a signal): the run is not complete

    def hand_over(self, w: Worker) -> None:
        """A fit of a resumed run that continues from its saved state: the state moves to the worker,
        and metrics.csv loses that fit's rows after the state's epoch, as a sequential resume does
        (a fit without one starts over: all its rows go)."""
        run = self.exp.run
        for method, seed in w.fits:
            label = {"model": "student", "method": method, "seed": seed}
            path = run.resume_file(**label)
            if path.is_file():
                ev = Epoch.from_dict(load_resume_state(path)["event"])
                drop_epochs_after(run.metrics, label, ev.epoch, ev.row())
                run.hand_over(w.part, **label)
            else:  # starts over: rows of a first epoch stopped before any save go
                drop_epochs_after(run.metrics, label, 0, None)

    def relay(self, w: Worker) -> None:
        """The part's new events: the student-side ones into the run, the rest noted or dropped."""
        for ev in w.tailer.poll():
            if isinstance(ev, End):
                w.end = ev.status
            elif isinstance(ev, Error) and ev.method is None:  # the worker's own failure
                w.error = ev.message
            elif isinstance(ev, Result):
                rows = [r for r in ev.rows if r.get("model") == "student"]
                if rows:
                    self.exp.add_results(rows)
            elif self.student_side(ev):
                self.exp.emit(ev)

    def student_side(self, ev: Event) -> bool:
        if isinstance(ev, (FitStart, Epoch)):
            return ev.model == "student"
        if isinstance(ev, Phase):
            if ev.phase == "teacher_view" and not self.view_shown:
                self.view_shown = True
                return True
            return ev.phase == "student"
        if isinstance(ev, RunWarning):
            return ev.method != "teacher"  # the teacher's were the parent's to give
        return isinstance(ev, Error)  # one fit's (a divergence)


def adopt_parts(exp: Experiment) -> None:
    """What parts of this run hold and the run lacks: every student checkpoint and, if the parent
    died before it copied them, result rows of finished fits and metrics rows (a no-op otherwise)."""
    from .experiment import FINAL

    run = exp.run
    for part in run.all_parts():
        if part.lock_file.is_file() and part.is_locked():
            raise ConfigError(f"worker '{part.root}' of this run is still running; wait for it to end "
                              "(or stop it) first")
        run.adopt_checkpoints(part)
        have = {_fit(r) for r in exp.rows}
        rows = [r for r in part.read_result_values()
                if r.get("model") == "student" and r.get("status") in FINAL and _fit(r) not in have]
        if rows:
            exp.rows = exp.in_run_order(exp.rows + rows)
            run.write_results(exp.rows)
        logged = {_epoch(r) for r in run.read_metric_rows()}
        for r in part.read_metric_rows():
            if r.get("model") == "student" and _epoch(r) not in logged:
                exp.metrics.append(r)


def _last_line(path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def _fit(row: dict) -> tuple[str, str, str]:
    return tuple(str(row.get(k)) for k in ("model", "method", "seed"))


def _epoch(row: dict) -> tuple[str, str, str, str]:
    return tuple(str(row.get(k)) for k in ("model", "method", "seed", "epoch"))
