"""Seconds per distillation epoch for scratch, kd and rcekd, measured in one run.

    python bench/kd_overhead.py [--preset ml-100k] [--epochs 3] [--device auto] [--positions last,all]

Prints the median epoch seconds (training only; evaluation excluded) of each method, its
ratio to scratch, and the seconds spent in the per-epoch refresh. The teacher is randomly
initialised at the preset's size: its weights do not change the cost of distillation.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rcekd_core.config import load_config
from rcekd_core.experiment import kd_positions, kd_setup, prepare
from rcekd_core.kd.contexts import KDContexts
from rcekd_core.kd.registry import METHODS, build_distiller
from rcekd_core.kd.teacher_view import TeacherView
from rcekd_core.models.registry import build_model
from rcekd_core.train.loop import FitJob, FitLabel, fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ml-100k")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--positions", default="last,all")
    ap.add_argument("--methods", default="scratch,kd,rcekd", help="comma list, or all (scratch first)")
    args = ap.parse_args()

    for positions in args.positions.split(","):
        cfg = load_config(args.preset, {"device": args.device, "kd_positions": positions,
                                        "student_train": {"epochs": args.epochs, "patience": 10**6}})
        prep = prepare(cfg)
        data, device = prep.data, prep.device
        torch.manual_seed(0)
        teacher = build_model(cfg.teacher, data.n_items, data).to(device)
        contexts = KDContexts(data, kd_positions(cfg), cfg.student.max_len)
        t0 = time.perf_counter()
        view = TeacherView(teacher, contexts, cfg.eval.chunk, device)
        once = time.perf_counter() - t0
        print(f"\n{args.preset} on {device} ({torch.get_num_threads()} threads), kd_positions={kd_positions(cfg)}: "
              f"{data.n_users} users, {data.n_items} items, {contexts.n} KD contexts; "
              f"teacher computed once in {once:.2f}s")
        base = None
        methods = list(METHODS) if args.methods == "all" else args.methods.split(",")
        for method in methods:
            torch.manual_seed(0)
            student = build_model(cfg.student, data.n_items, data).to(device)
            distiller = build_distiller(method, cfg.method_settings.get(method), kd_setup(cfg, view, contexts, device, 0))
            job = FitJob(student, data, cfg.student_train, cfg.eval, FitLabel("student", method, 0), device,
                         distiller=distiller, contexts=contexts)
            res = fit(job, sink=lambda e: None)
            secs = statistics.median(e.seconds for e in res.history)
            refresh = statistics.median(e.values.get("refresh_seconds", 0.0) for e in res.history)
            base = base or secs
            print(f"  {method:8s} {secs:7.3f} s/epoch  ratio {secs / base:5.2f}x  "
                  f"refresh {refresh:6.3f}s ({refresh / secs:5.1%} of the epoch)")


if __name__ == "__main__":
    main()
