"""Where the seconds of one RCE-KD refresh go, stage by stage, next to a scratch epoch.

    python bench/rcekd_refresh.py [--preset demo] [--positions all] [--device auto] [--repeat 3] [--users N]

Stages (best of --repeat): the student's states at every KD context, its scores for all items,
the top-M selection (torch.topk, and top_k as the refresh runs it), where the teacher's items
sit in the pool, the sampling weights, the Gumbel sampling of L positions, the teacher's
scores of the pool; then the whole `refresh` as the training loop runs it (with the peak RSS
it adds to the process, Linux) and one scratch training epoch. `--users`: a synthetic preset
(demo) with that many users, for many contexts. Weights are random: they do not change the cost.
"""

from __future__ import annotations

import argparse
import time

import torch
from rss import peak_mb, reset_peak, status_mb  # bench/rss.py

from rcekd_core.config import load_config
from rcekd_core.experiment import kd_positions, kd_setup, prepare
from rcekd_core.kd import rcekd
from rcekd_core.kd.base import score_chunk
from rcekd_core.kd.common import gumbel_topk
from rcekd_core.kd.contexts import KDContexts, context_states
from rcekd_core.kd.teacher_view import TeacherView
from rcekd_core.models.registry import build_model
from rcekd_core.topk import top_k
from rcekd_core.train.loop import FitJob, FitLabel, fit


def best_of(repeat: int, fn):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--positions", default="all")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--users", type=int, default=None, help="synthetic presets: this many users")
    args = ap.parse_args()

    overrides = {"device": args.device, "kd_positions": args.positions,
                 "student_train": {"epochs": 2, "patience": 10**6}}
    if args.users:
        overrides["data"] = {"n_users": args.users}
    cfg = load_config(args.preset, overrides)
    prep = prepare(cfg)
    data, device, c = prep.data, prep.device, cfg.rcekd
    torch.manual_seed(0)
    teacher = build_model(cfg.teacher, data.n_items, data).to(device)
    student = build_model(cfg.student, data.n_items, data).to(device)
    contexts = KDContexts(data, kd_positions(cfg), cfg.student.max_len)
    view = TeacherView(teacher, contexts, cfg.eval.chunk, device)
    method = rcekd.RCEKD(c, kd_setup(cfg, view, contexts, device, 0))
    student.eval()

    stages: list[tuple[str, float]] = []
    with torch.no_grad():
        chunk = score_chunk(cfg.eval.chunk, data.n_items)  # as the refresh chunks its contexts
        sec, states = best_of(args.repeat, lambda: torch.cat(
            [s for _, s in context_states(student, contexts, chunk, device)]))
        stages.append(("student states", sec))
        sec, scores = best_of(args.repeat, lambda: student.score_all(states))
        stages.append(("scores, all items", sec))
        sec, _ = best_of(args.repeat, lambda: scores.topk(c.M, dim=1).indices)
        stages.append((f"top-{c.M} (torch.topk)", sec))
        sec, pool = best_of(args.repeat, lambda: top_k(scores.clone(), c.M, inplace=True).indices)
        stages.append((f"top-{c.M} (top_k, int32 keys)", sec))
        sec, at = best_of(args.repeat, lambda: rcekd.pool_positions(pool, method.teacher_top))
        stages.append(("teacher items' pool positions", sec))
        sec, logw = best_of(args.repeat, lambda: rcekd.log_sampling_weights(at, c.M, c.T, c.sampling))
        stages.append(("sampling weights", sec))
        sec, _ = best_of(args.repeat, lambda: gumbel_topk(logw, c.L, method.gen))
        stages.append((f"sample {c.L} (Gumbel top-k)", sec))
        sec, _ = best_of(args.repeat, lambda: view.scores_of_lists([pool]))
        stages.append(("teacher scores of the pool", sec))
    whole, _ = best_of(args.repeat, lambda: method.timed_refresh(student))
    method.refresh(student)  # its results stay alive, as in training: the peak counts what it adds
    rss = status_mb("VmRSS")
    reset_peak()
    method.refresh(student)
    added = peak_mb() - rss
    res = fit(FitJob(student, data, cfg.student_train, cfg.eval, FitLabel("student", "scratch", 0), device),
              sink=lambda e: None)
    scratch = min(e.seconds for e in res.history)

    print(f"{args.preset} on {device} ({torch.get_num_threads()} threads), kd_positions={contexts.mode}: "
          f"{contexts.n} KD contexts, {data.n_items} items, M={c.M} L={c.L} K={c.K}")
    for name, sec in stages:
        print(f"  {name:28s} {sec:7.3f} s  ({sec / scratch:5.1%} of a scratch epoch)")
    print(f"  {'whole refresh':28s} {whole:7.3f} s  ({whole / scratch:5.1%} of a scratch epoch), "
          f"peak RSS +{added:.0f} MB over the {rss:.0f} MB before it")
    print(f"  {'scratch epoch':28s} {scratch:7.3f} s")


if __name__ == "__main__":
    main()
