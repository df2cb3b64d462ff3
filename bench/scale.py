"""Peak memory and seconds of RCE-KD's full-catalogue passes on synthetic catalogues up to 1M items.

    python bench/scale.py [--sizes 10000x10000,30000x100000,100000x1000000] [--device auto]

Each size (USERSxITEMS) runs in its own process: an MF teacher (dim 64) and MF student (dim 16,
BPR) with random weights — weights do not change the cost — on a synthetic log (Zipf items
inside interest clusters, ~30 interactions per user, protocol `ratio`), then, one after
another with the peak RSS reset before each (Linux /proc/self/clear_refs):
  teacher view   the teacher's states, item table and top-K lists (what RCE-KD reads);
  refresh        one RCE-KD refresh (student top-M at every user, sampling, teacher scores);
  KD epoch       one RCE-KD training epoch (its refresh included);
  evaluation     one full-ranking validation pass (all users against all items).
Printed: seconds and peak RSS per stage (the whole process; on CUDA also torch's peak GPU allocation; `base MB` is its RSS before the
stages: interpreter, torch, data and both models), growth against the previous size (time ÷ the growth
of users × items: 1.0 is linear in the scores computed), and the memory a dense users × items
float32 score matrix — the authors' formulation — would need at that size.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time

import numpy as np
import torch
from rss import peak_mb, reset_peak, status_mb  # bench/rss.py

STAGES = ("teacher view", "refresh", "KD epoch", "evaluation")


def synthetic_log(n_users: int, n_items: int, seed: int = 0, mean_len: int = 30):
    """A SequenceData (protocol `ratio`): each user keeps to one cluster of items, Zipf inside it."""
    from rcekd_core.data.sequences import SequenceData

    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.poisson(mean_len, n_users), 5, None)
    n_clusters = max(1, n_items // 1000)
    size = n_items // n_clusters
    cdf = np.cumsum(1.0 / np.arange(1, size + 1) ** 0.8)
    cdf /= cdf[-1]
    user = np.repeat(np.arange(n_users), lengths)
    cluster = rng.integers(0, n_clusters, n_users)[user]
    slot = np.minimum(np.searchsorted(cdf, rng.random(user.size)), size - 1)
    items = cluster * size + slot + 1
    noise = rng.random(user.size) < 0.1
    items[noise] = rng.integers(1, n_items + 1, int(noise.sum()))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return SequenceData(n_users, n_items, torch.as_tensor(items, dtype=torch.long),
                        torch.as_tensor(offsets, dtype=torch.long), protocol="ratio")


def one_size(n_users: int, n_items: int, device_name: str) -> dict:
    """Run the four stages at one size; their seconds and peak RSS (MB) as a dict."""
    from rcekd_core.config import load_config
    from rcekd_core.device import resolve_device
    from rcekd_core.eval.ranking import evaluate
    from rcekd_core.experiment import kd_setup
    from rcekd_core.kd.contexts import KDContexts
    from rcekd_core.kd.registry import build_distiller
    from rcekd_core.kd.teacher_view import TeacherView
    from rcekd_core.models.registry import build_model
    from rcekd_core.train.loop import FitJob, FitLabel, train_epoch

    cfg = load_config("demo-mf", {"device": device_name, "teacher": {"dim": 64}, "student": {"dim": 16},
                                  "student_train": {"epochs": 1, "batch_size": 1024}})
    device = resolve_device(cfg.device)
    data = synthetic_log(n_users, n_items)
    torch.manual_seed(0)
    teacher = build_model(cfg.teacher, data.n_items, data).to(device)
    student = build_model(cfg.student, data.n_items, data).to(device)
    contexts = KDContexts(data, "user", 1)
    out = {"users": n_users, "items": n_items, "interactions": int(data.items.numel()), "device": str(device),
           "threads": torch.get_num_threads(), "base_mb": status_mb("VmRSS")}

    def stage(name, fn):
        if not reset_peak():
            out["peak_note"] = "no /proc/self/clear_refs here: peak MB is the process's since it started"
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out[name] = {"seconds": time.perf_counter() - t0, "peak_mb": peak_mb()}
        if device.type == "cuda":
            out[name]["gpu_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        return result

    def view_and_lists():
        view = TeacherView(teacher, contexts, cfg.eval.chunk, device, budget=cfg.eval.memory_bytes)
        return build_distiller("rcekd", cfg.method_settings["rcekd"], kd_setup(cfg, view, contexts, device, 0))

    distiller = stage("teacher view", view_and_lists)
    stage("refresh", lambda: distiller.timed_refresh(student))
    job = FitJob(student, data, cfg.student_train, cfg.eval, FitLabel("student", "rcekd", 0), device,
                 distiller=distiller, contexts=contexts)
    opt = torch.optim.Adam(student.parameters(), lr=cfg.student_train.lr)
    stage("KD epoch", lambda: train_epoch(job, opt, torch.Generator().manual_seed(0), True, lambda: False))
    stage("evaluation", lambda: evaluate(student, data, "valid", cfg.eval.ks, cfg.eval.chunk, True,
                                         device=device, budget=cfg.eval.memory_bytes))
    out["budget_mb"] = cfg.eval.memory_mb
    return out


def table(rows: list[dict]) -> str:
    lines = [f"{'users':>8} {'items':>9} {'inter.':>10} | " + " | ".join(f"{s:>18}" for s in STAGES)
             + f" | {'base MB':>7} | {'dense U×I f32':>13}",
             f"{'':>8} {'':>9} {'':>10} | " + " | ".join(f"{'s':>8} {'peak MB':>9}" for _ in STAGES) + f" | {'':>7} | {'':>13}"]
    for r in rows:
        dense = r["users"] * (r["items"] + 1) * 4 / 2**30
        lines.append(f"{r['users']:>8} {r['items']:>9} {r['interactions']:>10} | "
                     + " | ".join(f"{r[s]['seconds']:>8.2f} {r[s]['peak_mb']:>9.0f}" for s in STAGES)
                     + f" | {r['base_mb']:>7.0f} | {dense:>10.1f} GB")
    if any("gpu_peak_mb" in r[s] for r in rows for s in STAGES):
        lines.append("GPU memory, peak MB allocated by torch per stage: " + "; ".join(
            f"{r['users']}x{r['items']}: " + ", ".join(f"{s} {r[s].get('gpu_peak_mb', float('nan')):.0f}" for s in STAGES)
            for r in rows))
    notes = {r["peak_note"] for r in rows if "peak_note" in r}
    lines += sorted(notes)
    if len(rows) > 1:
        lines.append("growth (seconds ratio ÷ users×items ratio; 1.0 = linear in the scores computed):")
        for a, b in itertools.pairwise(rows):
            cells = (b["users"] * b["items"]) / (a["users"] * a["items"])
            lines.append(f"  {a['users']}x{a['items']} -> {b['users']}x{b['items']} (×{cells:.0f} cells): "
                         + ", ".join(f"{s} {b[s]['seconds'] / a[s]['seconds'] / cells:.2f}" for s in STAGES))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000x10000,30000x100000,100000x1000000", help="USERSxITEMS, comma list")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one size in this process
    args = ap.parse_args()
    if args.one:
        users, items = (int(x) for x in args.one.split("x"))
        print(json.dumps(one_size(users, items, args.device)))
        return
    rows = []
    for size in args.sizes.split(","):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--one", size, "--device", args.device],
                              check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{size}: failed (rc {proc.returncode})\n{proc.stderr[-2000:]}", file=sys.stderr)
            break
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{size}: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    if rows:
        r = rows[0]
        print(f"on {r['device']} ({r['threads']} threads), chunks within eval.memory_mb = {r['budget_mb']} MB")
        print(table(rows))


if __name__ == "__main__":
    main()
