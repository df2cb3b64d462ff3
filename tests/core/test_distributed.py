"""Data parallelism under torchrun (rcekd_core/distributed.py).

Without processes: the loss weighting makes the ranks' summed gradient the whole batch's
(two shards in threads, one of them uneven, and a rank left with a stand-in row).
With processes: `torchrun --standalone --nproc_per_node 2` (gloo, CPU, one thread each) runs
`rcekd distill` on a tiny config (dropout 0) and must give what one process gives with the
same global batch: metrics within TOL, losses within LOSS_RTOL, both ranks' weights identical,
sharded refresh lists and evaluations equal to the unsharded ones, a NaN or an error on one
rank raised on both, rank 1 silent, one writer.

This file is also the worker those runs execute: `python test_distributed.py --worker OUT PRESET`.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from rcekd_core import distributed
from rcekd_core.distributed import Group, share_weights

# Metrics are functions of the rankings; float reduction order (the gradient all-reduce, the
# shards' smaller matmuls) moves the weights by ~1e-7 relative per step, which leaves every
# ranking of this config as it is: measured max |Δ| 0 on every metric (results.csv's six
# digits). 1e-4 is below one user's share of a metric here (1/120), so any flip fails.
TOL = 1e-4
LOSS_RTOL = 1e-4  # epoch losses: measured ≤ 2e-6 relative
# final weights against one process: measured ≤ 3e-8, except the attention's key bias, which
# has no effect on any output (it shifts every logit of a query's softmax alike): its
# gradient is float noise, which Adam turns into lr-sized steps (measured 8e-5 apart)
WEIGHT_ATOL = 1e-6

TINY = {
    "name": "tiny",
    "data": {"source": "demo", "n_users": 120, "n_items": 60, "n_clusters": 6, "mean_len": 12},
    "teacher": {"dim": 16, "blocks": 1, "heads": 1, "max_len": 20, "dropout": 0.0},
    "student": {"dim": 4, "blocks": 1, "heads": 1, "max_len": 20, "dropout": 0.0},
    # 25 per batch: shares of 13 and 12 users, then 10 and 10
    "teacher_train": {"epochs": 2, "patience": 5, "batch_size": 25},
    "student_train": {"epochs": 3, "patience": 5, "batch_size": 25},
    "methods": ["scratch", "rcekd"],
    "rcekd": {"K": 5, "L": 5, "M": 10},
}
METRICS = ("Recall@10", "NDCG@10", "MRR@10", "Recall@20", "NDCG@20", "MRR@20", "overlap@10")


# ---- without processes --------------------------------------------------------------------


class ThreadGroup(Group):
    """A rank of a group whose ranks are threads of this process (only all_gather_object is used)."""

    def __init__(self, rank: int, world: int, box: list, barrier: threading.Barrier):
        super().__init__(rank, world)
        self.box, self.wait = box, barrier.wait

    def all_gather_object(self, obj):
        self.box[self.rank] = obj
        self.wait()
        out = list(self.box)
        self.wait()
        return out


@pytest.fixture(scope="module")
def tiny_batch():
    from rcekd_core.config import load_config
    from rcekd_core.experiment import prepare
    from rcekd_core.kd.contexts import KDContexts
    from rcekd_core.models.registry import build_model

    cfg = load_config("demo", {**TINY, "data": {**TINY["data"], "n_users": 40}})
    data = prepare(cfg).data
    torch.manual_seed(0)
    model = build_model(cfg.student, data.n_items, data).double()
    contexts = KDContexts(data, "all", cfg.student.max_len)
    gen = torch.Generator().manual_seed(1)
    p = torch.softmax(torch.randn(contexts.n, data.n_items, generator=gen, dtype=torch.float64), 1)
    return model, data, contexts, p


def batch_loss(model, data, contexts, p, users, group=None, lam=0.3):
    """The loop's loss of one batch (base mean over positions + λ · KD mean over contexts × users),
    weighted by `group` as train_epoch does under torchrun; (loss, parts)."""
    from rcekd_core.kd.base import soft_ce

    if group is not None:
        users = group.shard(users)
    inputs, targets = model.batch(data, users)
    states = model.encode(inputs)
    base = model.base_loss(states, targets)
    ids, mask = contexts.select(users, targets)
    per_ctx = soft_ce(p[ids], model.score_all(states[mask])[:, 1:])
    kd = per_ctx.mean() * len(users)
    loss = base + lam * kd
    parts = {"base_loss": base.item(), "kd_loss": kd.item(), "mean_ce": per_ctx.mean().item(), "loss": loss.item()}
    if group is not None:
        loss = group.weigh(parts, base, int((targets > 0).sum()), lam * kd, ids.numel(), len(users), lam)
    return loss, parts


def grads(model) -> list[torch.Tensor]:
    return [q.grad.clone() for q in model.parameters()]


@pytest.mark.parametrize("batch", [torch.arange(27), torch.tensor([5])], ids=["uneven", "one-row"])
def test_weighted_shards_sum_to_the_whole_batch_gradient(tiny_batch, batch):
    model, data, contexts, p = tiny_batch
    model.zero_grad()
    loss, parts = batch_loss(model, data, contexts, p, batch)
    loss.backward()
    full = grads(model)

    world = 2
    box, barrier, out = [None] * world, threading.Barrier(world), [None] * world

    def rank(r: int) -> None:
        out[r] = batch_loss(model, data, contexts, p, batch, ThreadGroup(r, world, box, barrier))

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    model.zero_grad()
    for shard_loss, _ in out:
        shard_loss.backward()  # the SUM all-reduce, done by autograd's accumulation
    for g_full, g_sum in zip(full, grads(model)):
        torch.testing.assert_close(g_sum, g_full, atol=1e-6, rtol=0)  # float64: ~1e-16 in fact
    for _, shard_parts in out:  # what each rank logs: one process's values for the batch
        assert shard_parts.keys() == parts.keys()
        for k in parts:
            assert shard_parts[k] == pytest.approx(parts[k], rel=1e-12), k


def test_share_weights_follow_the_loop_normalisers():
    # (positions, contexts, KD users): base mean over positions, KD mean over contexts x users
    counts = [(30, 20, 4), (10, 10, 2), (0, 0, 0)]
    assert share_weights(counts, 0) == pytest.approx((30 / 40, 20 * 6 / (30 * 4)))
    assert share_weights(counts, 1) == pytest.approx((10 / 40, 10 * 6 / (30 * 2)))
    assert share_weights(counts, 2) == (0.0, 0.0)


def test_one_process_is_untouched():
    group = distributed.current()
    assert group.world == 1 and group.is_main
    rows = torch.arange(7)
    assert group.shard(rows) is rows
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))])
    assert group.wrap_optimizer(opt, []) is opt
    shard = distributed.shard_chunks()
    chunks = [torch.arange(3), torch.arange(2)]
    assert shard.take(chunks) is chunks and shard.gather(chunks) is chunks


# ---- with processes -----------------------------------------------------------------------


def worker(out: Path, preset: Path) -> None:
    """One rank (or the one process): `rcekd distill` on the preset, then sharded passes checked."""
    rank = int(os.environ.get("RANK", "0"))
    log = os.open(out / f"rank{rank}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)  # whatever this rank prints, Python or C, lands in its own file

    from rcekd_core import experiment
    from rcekd_core.config import load_config
    from rcekd_core.eval.ranking import evaluate
    from rcekd_core.kd.base import student_top
    from rcekd_core.kd.common import student_top_masked
    from rcekd_core.kd.contexts import KDContexts
    from rcekd_tui.cli import app

    real_fit = experiment.fit

    def fit_and_keep(job, sink, should_stop):
        res = real_fit(job, sink, should_stop)
        torch.save(job.model.state_dict(), out / f"weights-{rank}-{job.label.method}.pt")
        return res

    experiment.fit = fit_and_keep
    app(["distill", "--preset", str(preset), "--run-dir", str(out / "run")], standalone_mode=False)

    group = distributed.current()
    cfg = load_config(str(preset))
    data = experiment.prepare(cfg).data
    student = experiment.build_model(cfg.student, data.n_items, data)
    student.load_state_dict(torch.load(out / f"weights-{rank}-rcekd.pt"))
    contexts = KDContexts(data, "all", cfg.student.max_len)
    cpu = torch.device("cpu")
    chunk = 16  # one user per chunk at max_len 20: many chunks for both ranks
    passes = {
        "top": lambda: student_top(student, contexts, 10, chunk, cpu),
        "top_masked": lambda: student_top_masked(student, contexts, 10, chunk, cpu),
        "evaluate": lambda: evaluate(student, data, "test", [10], chunk=7, topk=10, device=cpu),
        # one chunk in all: rank 1 has none and still gets every rank's
        "top_one_chunk": lambda: student_top(student, contexts, 10, 100_000, cpu),
        "evaluate_one_chunk": lambda: evaluate(student, data, "test", [10], chunk=100_000, topk=10, device=cpu),
    }
    checks = {}
    for name, run in passes.items():
        sharded = run()
        with distributed.alone():
            whole = run()
        if name.startswith("evaluate"):
            checks[name] = sharded.metrics == whole.metrics and torch.equal(sharded.topk, whole.topk)
        elif name == "top_masked":
            checks[name] = all(torch.equal(a, b) for a, b in zip(sharded, whole))
        else:
            checks[name] = torch.equal(sharded, whole)
    for poison in ("nan", "error"):
        checks[poison] = failed_evaluation(student, data, poison if rank == 1 else None)
    checks["top_error"] = failed_top(student, contexts, poison=rank == 1)
    shard = distributed.shard_contexts(contexts)
    mine = sum(ids.numel() for _, ids, _ in shard.contexts.chunks(chunk))
    # as context_states asks: whole encoder chunks of users (64k positions hold every user here)
    encoded = sum(ids.numel() for _, ids, _ in distributed.shard_contexts(contexts).contexts.chunks(chunk, 1 << 16))
    (out / f"checks-{rank}.json").write_text(json.dumps(
        {"world": group.world, "contexts": contexts.n, "mine": mine, "encoded": encoded, **checks}))


def failed_evaluation(student, data, poison: str | None) -> str | None:
    """Evaluate a copy of the student that, where `poison` is set (on one rank only), has NaN
    weights ("nan") or fails to score ("error"): the message each rank gets (None: it
    evaluated), instead of a rank left waiting at the gather."""
    import copy

    from rcekd_core.errors import Diverged
    from rcekd_core.eval.ranking import evaluate

    model = copy.deepcopy(student)
    if poison == "nan":
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float("nan"))
    if poison == "error":
        def no_memory(states):
            raise RuntimeError("out of memory (simulated)")

        model.score_all = no_memory
    try:
        evaluate(model, data, "test", [10], chunk=7, topk=10, device=torch.device("cpu"))
    except (Diverged, RuntimeError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def failed_top(student, contexts, poison: bool) -> str | None:
    """A refresh's top-M pass with a student that fails to score on one rank: each rank's message."""
    import copy

    from rcekd_core.kd.base import student_top

    model = copy.deepcopy(student)
    if poison:
        def no_memory(states):
            raise RuntimeError("out of memory (simulated)")

        model.score_all = no_memory
    try:
        student_top(model, contexts, 10, 16, torch.device("cpu"))
    except RuntimeError as e:
        return f"{type(e).__name__}: {e}"
    return None


def launch(out: Path, preset: Path, processes: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    head = [sys.executable]
    if processes > 1:
        head += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    out.mkdir(parents=True)
    return subprocess.run([*head, __file__, "--worker", str(out), str(preset)], env=env, check=False,
                          capture_output=True, text=True, timeout=300)


def rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import yaml

    root = tmp_path_factory.mktemp("dist")
    preset = root / "tiny.yaml"
    preset.write_text(yaml.safe_dump(TINY))
    done = {}
    for n in (1, 2):
        os.environ["RCEKD_HOME"] = str(root / f"home{n}")  # each trains its own teacher
        try:
            proc = launch(root / f"n{n}", preset, n)
        finally:
            os.environ.pop("RCEKD_HOME", None)
        assert proc.returncode == 0, proc.stdout + proc.stderr + "".join(
            p.read_text() for p in (root / f"n{n}").glob("rank*.log"))
        done[n] = root / f"n{n}"
    return done


def test_two_processes_give_one_process_metrics(runs):
    one, two = rows(runs[1] / "run" / "results.csv"), rows(runs[2] / "run" / "results.csv")
    assert [(r["model"], r["method"], r["split"]) for r in one] == [(r["model"], r["method"], r["split"]) for r in two]
    worst = 0.0
    for a, b in zip(one, two):
        for m in METRICS:
            worst = max(worst, abs(float(a[m]) - float(b[m])))
        assert a["best_epoch"] == b["best_epoch"] and a["epochs"] == b["epochs"]
    assert worst <= TOL, f"max |Δ metric| {worst}"
    one_m, two_m = rows(runs[1] / "run" / "metrics.csv"), rows(runs[2] / "run" / "metrics.csv")
    assert len(one_m) == len(two_m)  # one writer: no epoch twice
    for a, b in zip(one_m, two_m):
        for k in ("base_loss", "kd_loss", "loss", "gamma"):
            if a.get(k):
                assert float(b[k]) == pytest.approx(float(a[k]), rel=LOSS_RTOL), k


def test_ranks_keep_identical_weights_close_to_one_process(runs):
    for method in ("teacher", "scratch", "rcekd"):
        w0 = torch.load(runs[2] / f"weights-0-{method}.pt")
        w1 = torch.load(runs[2] / f"weights-1-{method}.pt")
        ref = torch.load(runs[1] / f"weights-0-{method}.pt")
        for k in w0:
            assert torch.equal(w0[k], w1[k]), (method, k)
            mine, theirs = w0[k], ref[k]
            if k.endswith("qkv.bias"):  # query and value biases; the key bias (middle third) is noise
                n = mine.numel() // 3
                mine, theirs = torch.cat([mine[:n], mine[2 * n:]]), torch.cat([theirs[:n], theirs[2 * n:]])
            torch.testing.assert_close(mine, theirs, atol=WEIGHT_ATOL, rtol=0, msg=f"{method} {k}")


def test_sharded_refresh_and_evaluation_equal_the_whole(runs):
    checks = [json.loads((runs[2] / f"checks-{r}.json").read_text()) for r in (0, 1)]
    for c in checks:
        assert c["world"] == 2
        assert c["top"] and c["top_masked"] and c["evaluate"] and c["top_one_chunk"] and c["evaluate_one_chunk"]
        assert 0 < c["mine"] < c["contexts"]  # each rank scored a share
    assert sum(c["mine"] for c in checks) == checks[0]["contexts"]
    # encoder chunks are capped per rank: each rank gets about half, not one rank everything
    assert sum(c["encoded"] for c in checks) == checks[0]["contexts"]
    assert all(0.35 < c["encoded"] / c["contexts"] < 0.65 for c in checks), [c["encoded"] for c in checks]


def test_non_finite_scores_on_one_rank_stop_every_rank(runs):
    """Rank 1's student is NaN: both ranks raise Diverged (rank 0 names rank 1), none waits
    at the gather (the run would hit launch's timeout)."""
    got = [json.loads((runs[2] / f"checks-{r}.json").read_text())["nan"] for r in (0, 1)]
    assert got[1] == "Diverged: non-finite scores on the test split"
    assert got[0] == "Diverged: rank 1: non-finite scores on the test split"
    assert json.loads((runs[1] / "checks-0.json").read_text())["nan"] is None  # one process: nothing poisoned


@pytest.mark.parametrize("check", ["error", "top_error"])
def test_an_error_on_one_rank_stops_every_rank(runs, check):
    """In an evaluation or a refresh's top-M pass: rank 1 raises its error, rank 0 names it."""
    got = [json.loads((runs[2] / f"checks-{r}.json").read_text())[check] for r in (0, 1)]
    assert got[1] == "RuntimeError: out of memory (simulated)"
    assert got[0] == "RuntimeError: rank 1 failed: RuntimeError: out of memory (simulated)"


def test_rank_zero_alone_speaks_and_writes(runs):
    assert "results:" in (runs[2] / "rank0.log").read_text()
    assert (runs[2] / "rank1.log").read_text() == ""
    config = (runs[2] / "run" / "config.yaml").read_text()
    assert "world_size: 2" in config and "backend: gloo" in config


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    worker(Path(sys.argv[2]), Path(sys.argv[3]))
