"""Seconds from process start to the first frame of `rcekd watch D` and `rcekd tui`.

    python bench/first_frame.py [--run-dir D] [--repeats 5] [--timeout 30]

Each command is started in a pseudo-terminal (120x40, TERM=xterm-256color) as a user types
it (`rcekd watch D`, `rcekd tui --runs-root R`: the console script beside this Python, else
`python -m rcekd_tui`); the
clock runs from just before the process is spawned until the screen's title is on the
terminal (ANSI sequences stripped), i.e. Python start-up, imports, app start and the first
paint. A second time is when the screen shows the run's content: the replayed `finished`
status for watch, the run's row in the runs list for tui. Prints the median (and min–max)
of the repeats per command.

Without --run-dir a small finished run directory is written by hand into a temporary folder
(teacher + 3 methods, 10 epochs each), so the benchmark needs no engine and no torch.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROWS, COLS = 40, 120
ANSI = re.compile(rb"\x1b(\[[0-9;?<=>$ ]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\|[@-Z\\-_])")


def fake_run(root: Path) -> Path:
    """A finished run as the engine writes it: config.yaml, events.jsonl, results.csv, metrics.csv."""
    from rcekd_core.runs.events import (
        End,
        Epoch,
        EventWriter,
        FitStart,
        Phase,
        Result,
        RunStart,
    )
    from rcekd_core.runs.store import MetricsCsv, RunDir

    run = RunDir(root / "bench-run").create()
    methods = ["scratch", "kd", "rcekd"]
    run.write_config({"name": "demo", "data": {"source": "demo"}, "methods": methods, "seeds": [0]})
    w, metrics, rows = EventWriter(run.events), MetricsCsv(run.metrics), []
    w.emit(RunStart(name="demo", device="cpu", dataset={"users": 1500, "items": 600, "interactions": 45000},
                    methods=methods, seeds=[0]))
    for model, method in [("teacher", "teacher")] + [("student", m) for m in methods]:
        w.emit(Phase(phase=model, method=None if model == "teacher" else method, seed=0))
        w.emit(FitStart(model=model, method=method, seed=0, epochs=10, batches=12))
        for n in range(1, 11):
            values = {"loss": 6.0 - n / 10, "base_loss": 6.0 - n / 10}
            if method in ("kd", "rcekd"):
                values |= {"kd_loss": 2.0 - n / 20, "overlap@10": 0.1 + n / 100}
            ev = Epoch(model=model, method=method, seed=0, epoch=n, seconds=0.5, best_epoch=n,
                       valid={"NDCG@10": 0.02 * n, "Recall@10": 0.04 * n}, values=values)
            w.emit(ev)
            metrics.append(ev.row())
        new = [{"model": model, "method": method, "seed": 0, "split": split, "NDCG@10": 0.2 + 0.01 * i,
                "Recall@10": 0.4 + 0.01 * i, "NDCG@20": 0.25, "Recall@20": 0.5, "overlap@10": 0.3}
               for i, split in enumerate(("valid", "test"))]
        rows += new
        w.emit(Result(rows=new))
    w.emit(End(status="finished"))
    w.close()
    run.write_results(rows)
    return run.root


def time_to(argv: list[str], first: bytes, content: bytes, timeout: float) -> tuple[float, float]:
    """(seconds to `first` on screen, seconds to `content` on screen) for one launch."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    seen, t_first, t_content = b"", None, None
    try:
        while t_content is None:
            left = t0 + timeout - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"{' '.join(argv)}: no {content!r} after {timeout}s; screen:\n"
                                   + ANSI.sub(b"", seen).decode(errors="replace")[-2000:])
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                chunk = b""
            if not chunk:
                raise RuntimeError(f"{' '.join(argv)} exited; output:\n{seen.decode(errors='replace')[-2000:]}")
            seen += chunk
            plain = ANSI.sub(b"", seen)
            now = time.perf_counter() - t0
            if t_first is None and first in plain:
                t_first = now
            if t_first is not None and content in plain:
                t_content = now
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    return t_first, t_content


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path, help="a finished run directory (default: a small one written here)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="rcekd-ff-") as tmp:
        root = Path(tmp) / "runs"
        root.mkdir()
        if args.run_dir:
            from rcekd_core.runs.store import CHECKPOINTS, LOCK  # not read by a viewer

            run = root / args.run_dir.resolve().name
            shutil.copytree(args.run_dir, run, ignore=shutil.ignore_patterns(CHECKPOINTS, LOCK))
        else:
            run = fake_run(root)
        script = Path(sys.executable).with_name("rcekd")
        py = [str(script)] if script.is_file() else [sys.executable, "-m", "rcekd_tui"]
        commands = {
            f"rcekd watch {run.name}": (py + ["watch", str(run)], run.name.encode(), b"finished |"),
            "rcekd tui": (py + ["tui", "--runs-root", str(root)], b"Runs in", b"finished"),
        }
        print(f"{args.repeats} launches each in a {COLS}x{ROWS} pty; python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs; run dir {run.name}; command {' '.join(py)}")
        for label, (argv, first, content) in commands.items():
            time_to(argv, first, content, args.timeout)  # warm the OS file cache once, not counted
            times = [time_to(argv, first, content, args.timeout) for _ in range(args.repeats)]
            firsts, contents = [t[0] for t in times], [t[1] for t in times]
            print(f"{label:<28} first frame: median {statistics.median(firsts):.2f}s "
                  f"(min {min(firsts):.2f}, max {max(firsts):.2f})   content shown: median "
                  f"{statistics.median(contents):.2f}s")


if __name__ == "__main__":
    main()
