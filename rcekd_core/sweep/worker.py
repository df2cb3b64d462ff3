"""A worker: take a WAITING trial (methods in the plan's order), run it, tell the study; until no
trial waits or runs anywhere. Any number of workers, on any machines, can share a sweep.

While other workers' trials are still running, a worker waits for them: should one of those
workers die, its trial turns stale after the grace period and this worker runs it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .plan import SweepPlan
from .report import write_sensitivity
from .storage import has_heartbeat, heartbeat, heartbeat_interval
from .study import Claimed, all_trials, claim, finish, progress, requeue
from .sweepdir import SweepDir
from .trial import run_trial

Say = Callable[[str], None]


def work(sweep: SweepDir, plan: SweepPlan, storage, url: str, say: Say = lambda s: None) -> int:
    """Run trials until the sweep's budget is spent; how many this worker ran."""
    ran = 0
    try:
        while True:
            claimed = claim_next(plan, storage, url)
            if claimed is not None:
                run_claimed(sweep, plan, storage, url, claimed, say)
                ran += 1
                continue
            running = sum(progress(plan, trials, m).running for m, trials in all_trials(plan, storage).items())
            if not running:
                break
            if not has_heartbeat(storage):  # a journal storage cannot tell a dead worker from a slow one
                say(f"{running} trial(s) still running in other workers; this worker stops here "
                    f"(`rcekd sweep work {sweep.root} --requeue-running` queues them again if their workers died)")
                break
            time.sleep(heartbeat_interval())
    finally:
        write_sensitivity(sweep, plan, storage)
    return ran


def claim_next(plan: SweepPlan, storage, url: str) -> Claimed | None:
    """A waiting trial of the first method (in the plan's order) that has one."""
    for method in plan.methods:
        claimed = claim(plan, storage, url, method)
        if claimed is not None:
            return claimed
    return None


def run_claimed(sweep: SweepDir, plan: SweepPlan, storage, url: str, claimed: Claimed, say: Say) -> None:
    say(f"{claimed.method} trial {claimed.number}: started")
    try:
        with heartbeat(storage, claimed.trial_id):
            verdict = run_trial(plan, sweep, claimed)
    except BaseException:  # a signal, bad data, a diverged teacher: not this trial's result
        requeue(storage, url, claimed.trial.study, claimed.trial_id)
        raise
    if finish(url, claimed, verdict.state, verdict.value, verdict.attrs):
        say(verdict.line)
    else:
        say(f"{verdict.line} — dropped: the trial was given up (late heartbeat) and queued again")
