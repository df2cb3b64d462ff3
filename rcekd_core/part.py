"""One worker of `rcekd distill --workers N` (parallel.py): its share of a run's student fits,
run as an ordinary run of the run's config in the part directory D/parts/<k>/, with the
teacher from the cache (never trained here).

    python -m rcekd_core.part --run D --part K --fits '[["kd", 0], ["rcekd", 1]]' --threads T --parent PID
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys


def die_with_parent(parent: int) -> None:
    """SIGTERM when the parent dies, even by SIGKILL, so this worker saves its state and stops (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # elsewhere a worker outlives a killed parent and finishes its share
    if os.getppid() != parent:  # the parent died before the request was in place
        os.kill(os.getpid(), signal.SIGTERM)


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP stop the part as Ctrl-C does: it records `stopped`, its fits resumable."""
    from .errors import Interrupted

    def handler(signum, frame):
        raise Interrupted(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rcekd_core.part", description=__doc__)
    ap.add_argument("--run", required=True, help="the run directory whose config is run")
    ap.add_argument("--part", type=int, required=True, help="this worker's number: writes D/parts/<k>/")
    ap.add_argument("--fits", required=True, help="JSON list of [method, seed] pairs")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--parent", type=int, required=True, help="process id of the parent")
    args = ap.parse_args(argv)
    die_with_parent(args.parent)
    stop_on_signals()

    import torch

    from .errors import ConfigError
    from .experiment import Experiment, check_same_data, prepare, run_config
    from .runs.store import RunDir
    from .train.teacher import TeacherCache

    torch.set_num_threads(args.threads)
    run = RunDir(args.run)
    cfg, runtime = run_config(run)
    prep = prepare(cfg)
    check_same_data(run, runtime, prep)
    if not TeacherCache(cfg, prep.fingerprint).exists():
        raise ConfigError("the teacher is not in the cache; a worker never trains it (run without --workers)")
    fits = [(str(m), int(s)) for m, s in json.loads(args.fits)]
    try:
        Experiment(prep, run.part(args.part).root, retrain=False, fits=fits).run_all()
    except KeyboardInterrupt:  # recorded as stopped in the part's events
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
