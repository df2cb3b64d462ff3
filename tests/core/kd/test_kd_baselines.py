"""The KD baselines (rrd, dcd, cd, unkd, hetcomp, de) against slow per-context references.

The references loop over contexts and items with Python floats, written from
shared/docs/baselines.md; they never look at how the distillers vectorise. Random draws are
read back from the distiller after a refresh (checked for what the doc requires of them), then
the loss is recomputed from them. Contexts, teacher and student are real (tiny SASRecs), and the
reference builds each context's history, next item and student state by its own loop (the
conftest's KDProblem).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rcekd_core.kd.base import Trajectory
from rcekd_core.kd.cd import CD, CDSettings
from rcekd_core.kd.common import gumbel_topk
from rcekd_core.kd.dcd import DCD, DCDSettings
from rcekd_core.kd.de import DE, DESettings
from rcekd_core.kd.hetcomp import HetComp, HetCompSettings, pick_checkpoints
from rcekd_core.kd.registry import METHODS, build_distiller
from rcekd_core.kd.rrd import RRD, RRDSettings
from rcekd_core.kd.teacher_view import TeacherView
from rcekd_core.kd.unkd import UnKD, UnKDSettings
from rcekd_core.models.sasrec import SASRec
from rcekd_core.settings import ModelConfig, TrainConfig

N_USERS, N_ITEMS, S_LEN, T_LEN = 8, 40, 6, 8
CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- problem


def ref_relaxed(s_row, listed, denominator_only) -> float:
    """-Σ_k [s_k - log(Σ_{j ≥ k in list} e^{s_j} + Σ_{denominator} e^{s_l})]."""
    total = 0.0
    for k in range(len(listed)):
        below = sum(math.exp(s_row[j]) for j in listed[k:]) + sum(math.exp(s_row[j]) for j in denominator_only)
        total -= s_row[listed[k]] - math.log(below)
    return total


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


@pytest.fixture(scope="module")
def make_prob(kd_problem):
    """The conftest's KDProblem at this file's sizes: teacher dim 12, student dim 4, the
    student's planned epochs by default, score rows with -inf at padding (`prob`: per mode)."""
    return lambda mode="all", seed=0: kd_problem(mode, seed, n_users=N_USERS, n_items=N_ITEMS, s_len=S_LEN,
                                                 epochs=TrainConfig().epochs, mask_padding=True)


def batch_loss(prob, d):
    ids = torch.randperm(prob.n, generator=torch.Generator().manual_seed(1))
    per, extras = d.loss(ids, prob.s_states[ids], prob.student)
    assert per.shape == ids.shape
    return ids.tolist(), per.detach().double().numpy(), extras


def close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- shared pieces


def test_registry_and_contexts_match_reference(prob):
    for name, (cls, settings) in {"rrd": (RRD, RRDSettings), "dcd": (DCD, DCDSettings), "cd": (CD, CDSettings),
                                  "unkd": (UnKD, UnKDSettings), "hetcomp": (HetComp, HetCompSettings),
                                  "de": (DE, DESettings)}.items():
        assert METHODS[name].distiller is cls and METHODS[name].settings is settings
    users, ends = prob.contexts.prefix()
    assert prob.contexts.n == prob.n
    assert users.tolist() == [c["user"] for c in prob.ctx]
    assert prob.contexts.next_items().tolist() == [c["next"] for c in prob.ctx]
    hist = prob.contexts.history(torch.arange(prob.n))
    for n, c in enumerate(prob.ctx):
        assert [i for i in hist[n].tolist() if i] == c["history"]
    # the engine's states line up with the reference's per-context states
    torch.testing.assert_close(prob.view.states, prob.states_of(prob.teacher), atol=1e-5, rtol=1e-5)


def test_teacher_topk_masked_excludes_each_contexts_own_history(prob):
    items, valid = prob.view.topk_masked(10)
    for n, c in enumerate(prob.ctx):
        assert valid[n].all()
        assert items[n].tolist() == prob.top_unseen(prob.t_rows[n], c["history"], 10)
    many = N_ITEMS - 3  # more than some contexts have unseen items: the tail is flagged invalid
    items, valid = prob.view.topk_masked(many)
    for n, c in enumerate(prob.ctx):
        want = prob.top_unseen(prob.t_rows[n], c["history"], many)
        assert valid[n].sum().item() == len(want)
        assert items[n][valid[n]].tolist() == want


def test_gumbel_topk_first_draw_follows_weights():
    logw = torch.tensor([0.0, -0.5, -1.0, -2.0, float("-inf"), -3.0]).expand(20000, -1)
    first = gumbel_topk(logw, 3, torch.Generator().manual_seed(0))[:, 0]
    p = torch.softmax(logw[0], 0).numpy()
    freq = np.bincount(first.numpy(), minlength=6) / len(first)
    np.testing.assert_allclose(freq, p, atol=0.015)
    drawn = gumbel_topk(logw[:50], 5, torch.Generator().manual_seed(1))
    assert (drawn != 4).all()  # -inf is never drawn while a finite weight is left


def test_gumbel_topk_unordered_draws_the_same_set():
    logw = torch.randn(300, 40, generator=torch.Generator().manual_seed(2))
    logw[:, 7] = float("-inf")
    ordered = gumbel_topk(logw, 12, torch.Generator().manual_seed(3))
    unordered = gumbel_topk(logw, 12, torch.Generator().manual_seed(3), ordered=False)
    assert torch.equal(ordered.sort(1).values, unordered.sort(1).values)
    assert not torch.equal(ordered, unordered)  # not merely the sorted call under another name


# ----------------------------------------------------------------------------- rrd


def test_rrd_matches_reference(prob):
    K, L, M, T = 4, 6, 10, 2.0
    d = RRD(RRDSettings(K=K, L=L, M=M, T=T, lam=0.3), prob.setup(seed=3))
    assert d.lam == 0.3
    d.refresh(prob.student)
    want = {}
    for n, c in enumerate(prob.ctx):
        top = prob.top_unseen(prob.t_rows[n], c["history"], M)
        inter, unint = d.interesting[n].tolist(), d.uninteresting[n].tolist()
        assert d.int_valid[n].all() and d.unint_valid[n].all()
        assert len(set(inter)) == K and set(inter) <= set(top)
        assert [top.index(i) for i in inter] == sorted(top.index(i) for i in inter)  # rank order
        assert len(set(unint)) == L and not set(unint) & (set(top) | set(c["history"]) | {0})
        want[n] = ref_relaxed(prob.s_rows[n], inter, unint)
    ids, per, _ = batch_loss(prob, d)
    close(per, [want[n] for n in ids])
    old = d.interesting.clone()
    d.refresh(prob.student)  # resampled each epoch
    assert not torch.equal(old, d.interesting)


def test_rrd_positions_follow_exp_rank_law(make_prob):
    """With K = 1 the interesting position is one draw ∝ exp(-rank / T)."""
    prob = make_prob("all", seed=2)
    M, T = 6, 2.0
    counts = np.zeros(M)
    for seed in range(40):
        d = RRD(RRDSettings(K=1, L=2, M=M, T=T), prob.setup(seed=seed))
        d.refresh(prob.student)
        pos = (d.top == d.interesting).float().argmax(1)
        counts += np.bincount(pos.numpy(), minlength=M)
    p = np.exp(-np.arange(1, M + 1) / T)
    np.testing.assert_allclose(counts / counts.sum(), p / p.sum(), atol=0.04)


# ----------------------------------------------------------------------------- dcd


def test_dcd_matches_reference(prob):
    K, M, T = 3, 12, 2.0
    # the project's former choices (unseen-only ranks, teacher-rank order); the authors' defaults:
    # tests/core/kd/test_dcd_reference.py
    d = DCD(DCDSettings(K=K, M=M, T=T, rank_over="unseen", order="teacher"), prob.setup(seed=5))
    d.refresh(prob.student)
    want = {}
    for n, c in enumerate(prob.ctx):
        top = prob.top_unseen(prob.t_rows[n], c["history"], M)
        s = prob.s_rows[n]
        unseen = [j for j in range(1, N_ITEMS + 1) if j not in c["history"]]
        rank_s = [sum(1 for j in unseen if s[j] > s[i]) for i in top]
        assert d.rank_s[n].tolist() == rank_s
        up, down = d.up[n].tolist(), d.down[n].tolist()
        for side in (up, down):
            assert len(set(side)) == K and set(side) <= set(top)
            assert [top.index(i) for i in side] == sorted(top.index(i) for i in side)
        w_up = [max(math.tanh(max((rank_s[r] - r) / T, 0)), 1e-5) for r in range(M)]
        if sum(w > 1e-5 for w in w_up) >= K:  # enough under-ranked items: only those are drawn
            assert all(w_up[top.index(i)] > 1e-5 for i in up)
        want[n] = ref_relaxed(s, up, down)
    ids, per, _ = batch_loss(prob, d)
    close(per, [want[n] for n in ids])


# ----------------------------------------------------------------------------- cd


def test_cd_matches_reference(prob):
    N, n_keep, T = 10, 2, 20.0  # the former label and sampler (switches); the authors' in test_cd_reference.py
    d = CD(CDSettings(N=N, n=n_keep, T=T, t1=1.0, draws="distinct"), prob.setup(seed=1))
    d.refresh(prob.student)
    want = {}
    for n, c in enumerate(prob.ctx):
        pool = prob.top_unseen(prob.s_rows[n], c["history"], N)
        items = d.items[n].tolist()
        assert d.valid[n].all() and len(set(items)) == n_keep and set(items) <= set(pool)
        y = [sigmoid(prob.t_rows[n][i]) for i in items]
        np.testing.assert_allclose(d.labels[n].numpy(), y, rtol=1e-5)
        s = [prob.s_rows[n][i] for i in items]
        want[n] = -sum(yi * math.log(sigmoid(si)) + (1 - yi) * math.log(1 - sigmoid(si)) for yi, si in zip(y, s))
    ids, per, _ = batch_loss(prob, d)
    close(per, [want[n] for n in ids])


def test_cd_keeps_the_better_of_each_pair(make_prob):
    """Kept positions are the minimum of two draws: biased to the top even with flat weights."""
    prob = make_prob("all", seed=3)
    N = 10
    d = CD(CDSettings(N=N, n=1, T=1e6, draws="distinct"), prob.setup(seed=0))
    ranks = []
    for _ in range(30):
        d.refresh(prob.student)
        for n, c in enumerate(prob.ctx):
            ranks.append(prob.top_unseen(prob.s_rows[n], c["history"], N).index(d.items[n, 0].item()))
    # min of two distinct uniform positions of 0..9: P(rank = r) = 2 (9 - r) / 90
    p = np.array([2 * (N - 1 - r) / (N * (N - 1)) for r in range(N)])
    np.testing.assert_allclose(np.bincount(ranks, minlength=N) / len(ranks), p, atol=0.05)


# ----------------------------------------------------------------------------- unkd


def test_unkd_groups_and_loss_match_reference(prob):
    G, P = 3, 4  # the former rules (switches), P pairs per group; the authors' in test_unkd_reference.py
    d = UnKD(UnKDSettings(groups=G, pairs=G * P, grouping="equal_mass", unseen_items="last_group",
                          draws="distinct", reduce="sum"), prob.setup(seed=2))
    pop = [0] * (N_ITEMS + 1)
    data = prob.data
    for u in range(data.n_users):
        seq = data.items[data.offsets[u]: data.offsets[u + 1]].tolist()
        for i in seq[:-2]:
            pop[i] += 1
    order = sorted(range(1, N_ITEMS + 1), key=lambda i: (-pop[i], i))
    total, before, group = sum(pop), 0, {}
    for i in order:
        group[i] = min(G - 1, math.floor(G * before / total))
        before += pop[i]
    assert d.group[1:].tolist() == [group[i] for i in range(1, N_ITEMS + 1)]
    d.refresh(prob.student)
    want = {}
    for n, c in enumerate(prob.ctx):
        t, loss = prob.t_rows[n], 0.0
        seen_in_group: dict[int, set] = {}
        for hi, lo, ok in zip(d.hi[n].tolist(), d.lo[n].tolist(), d.pair_valid[n].tolist()):
            if not ok:
                continue
            assert group[hi] == group[lo] and hi not in c["history"] and lo not in c["history"]
            assert t[hi] > t[lo]  # ordered by the teacher
            used = seen_in_group.setdefault(group[hi], set())
            assert hi not in used and lo not in used and hi != lo  # distinct draws in a group
            used |= {hi, lo}
            loss -= math.log(sigmoid(prob.s_rows[n][hi] - prob.s_rows[n][lo]))
        for g in range(G):  # every group with enough unseen items yields its pairs
            avail = sum(1 for i in range(1, N_ITEMS + 1) if group[i] == g and i not in c["history"])
            assert len(seen_in_group.get(g, ())) == 2 * min(P, avail // 2)
        want[n] = loss
    ids, per, _ = batch_loss(prob, d)
    close(per, [want[n] for n in ids])


# ----------------------------------------------------------------------------- hetcomp


def ref_ndcg(s_top, target) -> float:
    gains = [(2 ** math.exp(-r / 10) - 1) / math.log2(r + 2) for r in range(len(s_top))]
    return sum(g for g, i in zip(gains, s_top) if i in target) / sum(gains)


def test_hetcomp_lists_switching_and_loss_match_reference(prob):
    K, p, alpha = 6, 1, 1.05
    early = {}
    for epoch, seed in ((2, 11), (4, 12)):
        early[epoch] = TeacherView(prob.sasrec(12, seed), prob.contexts, 3, CPU)
    asked = []

    def view(epoch):
        asked.append(epoch)
        return early[epoch]

    # checkpoints at epochs 2, 4 (and 6, the best epoch itself: not a trajectory stage)
    setup = prob.setup(trajectory=Trajectory(epochs=[2, 4, 6], best_epoch=6, where="here", view=view))
    # the project's former choices; the authors' defaults: tests/core/kd/test_hetcomp_reference.py
    d = HetComp(HetCompSettings(K=K, p=p, alpha=alpha, pick="spread", positives="next", form="plackett_luce",
                                rank_phase=False), setup)
    assert asked == [2, 4] and d.checkpoint_epochs == [2, 4] and setup.warnings == []
    views = [early[2], early[4], prob.view]  # easy -> hard, the final teacher last
    lists = [prob.ref_list(v, K) for v in views]
    for s in range(3):
        assert d.lists[s].tolist() == lists[s]

    students = [prob.sasrec(4, seed) for seed in (21, 22, 23)]
    stage = [0] * prob.n
    last_dist = None
    for epoch, student in enumerate([prob.student] + students, start=1):
        d.refresh(student)
        done = epoch - 1
        if done >= p and done % p == 0:
            s_rows = prob.model_rows(student)
            s_top = [prob.top_unseen(s_rows[n], c["history"], K) for n, c in enumerate(prob.ctx)]
            dist = [1 - ref_ndcg(s_top[n], lists[min(stage[n] + 1, 2)][n]) for n in range(prob.n)]
            if last_dist is None:
                last_dist = dist
            else:
                th = alpha * 0.995 ** (done // p)
                for n in range(prob.n):
                    ratio = last_dist[n] / dist[n] if dist[n] else float("inf")
                    if stage[n] < 2 and (ratio > th or ratio < 1):
                        stage[n] += 1
                        last_dist[n] = 1 - ref_ndcg(s_top[n], lists[min(stage[n] + 1, 2)][n])
        assert d.stage.tolist() == stage, epoch
    assert len(set(stage)) > 1 or stage[0] > 0  # the switching did something in this draw

    want = {}
    for n, c in enumerate(prob.ctx):
        listed = [c["next"]] + [i for i in lists[stage[n]][n] if i != c["next"]]
        others = [i for i in range(1, N_ITEMS + 1) if i not in listed]
        want[n] = ref_relaxed(prob.s_rows[n], listed, others)
    ids, per, extras = batch_loss(prob, d)
    close(per, [want[n] for n in ids])
    assert extras["stage"] == pytest.approx(np.mean([stage[n] for n in ids]))


def test_hetcomp_without_trajectory_warns_and_uses_the_final_teacher(prob):
    for trajectory in (None, Trajectory(epochs=[], best_epoch=3, where="/cache/t", view=lambda e: 1 / 0)):
        setup = prob.setup(trajectory=trajectory)
        d = HetComp(HetCompSettings(K=5), setup)
        assert d.lists.size(0) == 1 and d.checkpoint_epochs == []
        assert len(setup.warnings) == 1 and "no teacher trajectory" in setup.warnings[0]
    assert "/cache/t" in setup.warnings[0]  # names the folder it looked in
    # checkpoints exist, but none precedes the best epoch
    setup = prob.setup(trajectory=Trajectory(epochs=[2, 4], best_epoch=2, where="/cache/t", view=lambda e: 1 / 0))
    d = HetComp(HetCompSettings(K=5), setup)
    assert d.lists.size(0) == 1
    assert len(setup.warnings) == 1 and "best epoch is 2" in setup.warnings[0]


def test_pick_checkpoints():
    assert pick_checkpoints([2, 4, 6, 8, 10, 12], best_epoch=11, n=3) == [2, 6, 10]
    assert pick_checkpoints([2, 4], best_epoch=None, n=3) == [2, 4]
    assert pick_checkpoints([2, 4, 6], best_epoch=2, n=3) == []


# ----------------------------------------------------------------------------- de


def test_de_matches_reference(prob, monkeypatch):
    E, epochs = 3, 4
    # the former terms (switches): next item only, weight 1, per context, τ over setup.epochs;
    # the authors' defaults are in test_de_reference.py
    d = DE(DESettings(experts=E, tau_start=1.0, tau_end=1e-3, anneal_epochs=0, negatives=False, item_weight=1.0,
                      unique_items=False), prob.setup(seed=0, epochs=epochs))
    assert {id(q) for q in d.parameters()} >= {id(q) for q in d.nets.parameters()} and d.parameters()
    for e in range(3):
        d.refresh(prob.student)
        assert d.tau == pytest.approx(1.0 * (1e-3 / 1.0) ** (e / epochs))
    noise = []

    def fixed(shape):
        g = torch.randn(shape, generator=torch.Generator().manual_seed(len(noise)))
        noise.append(g)
        return g

    monkeypatch.setattr(d, "_gumbel", fixed)
    ids, per, _ = batch_loss(prob, d)
    g_state, g_item = noise  # the state term draws first, then the item term
    nets = {k: v for k, v in d.nets.items()}

    def expert(kind, e, x):
        ex = nets[f"{kind}_experts"]
        h = torch.relu(x @ ex.w1[e] + ex.b1[e])
        return h @ ex.w2[e] + ex.b2[e]

    def term(kind, s, t, g):
        sel_net = nets[f"{kind}_selector"]
        logits = (sel_net.weight @ t + sel_net.bias).tolist()
        p = [math.exp(x - max(logits)) for x in logits]
        p = [x / sum(p) for x in p]
        z = [(math.log(pi + 1e-10) + gi) / d.tau for pi, gi in zip(p, g.tolist())]
        sel = [math.exp(x - max(z)) for x in z]
        sel = [x / sum(sel) for x in sel]
        out = sum(sel[e] * expert(kind, e, s) for e in range(E))
        return float(((t - out) ** 2).sum())

    with torch.no_grad():
        for row, n in enumerate(ids):
            item = prob.ctx[n]["next"]
            want = (term("state", prob.s_states[n], prob.view.states[n], g_state[row])
                    + term("item", prob.student.item_table()[item], prob.view.table[item], g_item[row]))
            assert per[row] == pytest.approx(want, rel=1e-4, abs=1e-4)


# ----------------------------------------------------------------------------- gradients


@pytest.fixture(scope="module")
def grad_problem(make_prob):
    return make_prob("all", seed=4)


@pytest.mark.parametrize("method", ["rrd", "dcd", "cd", "unkd", "hetcomp", "de"])
def test_gradients_reach_the_student_and_experts_only(method, grad_problem):
    prob = grad_problem  # hetcomp: no trajectory, final teacher only
    torch.manual_seed(4)
    student = SASRec(N_ITEMS, ModelConfig(dim=4, blocks=1, max_len=S_LEN, dropout=0.1))
    values = {"rrd": dict(K=3, L=4, M=8), "dcd": dict(K=3, M=8), "cd": dict(N=8), "unkd": dict(pairs=2),
              "hetcomp": dict(K=5), "de": dict(experts=3)}[method]
    d = build_distiller(method, METHODS[method].settings(**values), prob.setup(seed=0))
    student.train()
    d.timed_refresh(student)
    assert student.training
    users = torch.tensor([4, 0, 7, 2])
    inputs, targets = prob.data.train_batch(users, S_LEN)
    states = student.encode(inputs)
    ids, mask = prob.contexts.select(users, targets)
    per, _ = d.loss(ids, states[mask], student)
    assert per.shape == ids.shape and torch.isfinite(per).all()
    per.sum().backward()
    assert all(q.grad is None or torch.isfinite(q.grad).all() for q in student.parameters())
    assert student.items.weight.grad.abs().sum() > 0
    assert any(q.grad is not None and q.grad.abs().sum() > 0
               for n, q in student.named_parameters() if n.startswith("blocks"))
    assert all(q.grad is None for q in prob.teacher.parameters())
    assert not prob.view.states.requires_grad and not prob.view.table.requires_grad
    if method == "de":
        assert all(q.grad is not None and torch.isfinite(q.grad).all() for q in d.parameters())
        assert sum(q.grad.abs().sum() for q in d.parameters()) > 0
    else:
        assert d.parameters() == []
