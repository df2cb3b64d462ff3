"""HetComp against a slow loop reference written from the authors' HetComp (woriazzc/RCEKD,
modeling/KD/baseline.py), for the default and each switch (pick, positives, form, rank_phase).

The authors, per user: lists = the first hetcomp_num_ckpt of their sorted checkpoint files
(EPOCH_* in epoch order, BEST_EPOCH last), each the top-K with training items masked;
positives = the user's first pos_K training items, pos_K = the fewest training items of any
user; _DKC every p epochs while the rounded mean stage is below the last (NDCG rounded to 4
decimals, numpy division: x / 0 = inf moves, 0 / 0 = nan does not); loss on scores clamped to
[-40, 40]: overall_loss × 2 = -2 Σ_{i ∈ pos ∪ list} [s_i - log(e^{s_i} + Σ_{o ∉ train ∪ list} e^{s_o})]
until every user reached the last list, then rank_loss (Plackett–Luce on the positives and on the
list's first halves / tenths against the rest of the non-training items, logs floored at 1e-5).
Loss and gradient (w.r.t. the student's states and item table) are compared per context.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rcekd_core.kd.hetcomp as hetcomp_mod
from rcekd_core.errors import ConfigError
from rcekd_core.kd.base import KDSetup, Trajectory
from rcekd_core.kd.hetcomp import HetComp, HetCompSettings, earliest_checkpoints
from rcekd_core.kd.teacher_view import TeacherView

N_USERS, N_ITEMS, S_LEN = 8, 40, 6
CPU = torch.device("cpu")
F64 = torch.float64


# ----------------------------------------------------------------------------- problem


@pytest.fixture(scope="module")
def make_prob(kd_problem):
    """The conftest's KDProblem at this file's sizes (teacher seeded with `seed`, student with
    seed + 50), with `early`: the teacher views of the checkpoints at epochs 2, 4, 6, 8."""

    def make(mode: str, seed: int = 0):
        prob = kd_problem(mode, seed, n_users=N_USERS, n_items=N_ITEMS, s_len=S_LEN, student_seed=seed + 50)
        prob.early = {e: TeacherView(prob.sasrec(12, 100 + e), prob.contexts, 3, CPU) for e in (2, 4, 6, 8)}
        return prob

    return make


def trajectory_setup(prob, epochs=(2, 4), best=6, seed=0) -> tuple[KDSetup, list[int]]:
    """A setup whose trajectory has checkpoints at `epochs` (views: prob.early), and the epochs asked for."""
    asked: list[int] = []

    def view(epoch):
        asked.append(epoch)
        return prob.early[epoch]

    traj = Trajectory(epochs=list(epochs), best_epoch=best, where="here", view=view)
    return prob.setup(seed, trajectory=traj), asked


# ----------------------------------------------------------------------------- reference


def ref_positives(prob, positives: str) -> list[list[int]]:
    if positives == "next":
        return [[c["next"]] for c in prob.ctx]
    n_pos = min(len(c["history"]) for c in prob.ctx)  # the authors' pos_K
    return [c["seq"][:n_pos] for c in prob.ctx]


def ref_ndcg(s_top: list[int], t_list: list[int]) -> np.float64:
    """The authors' _get_NDCG_u: graded gains, numpy float64, rounded to 4 decimals."""
    k = len(s_top)
    top_scores = 2 ** np.asarray([np.exp(-t / 10) for t in range(k)]) - 1
    denom = np.log2(np.arange(2, k + 2))
    dcg = np.sum(np.isin(s_top[:k], t_list) * top_scores / denom)
    return round(dcg / np.sum(top_scores / denom), 4)


def ref_dkc(prob, lists, students, p, alpha, k):
    """The authors' do_something_in_each_epoch + _DKC, epoch by epoch: (stage, last_dist, v) after each."""
    last = len(lists) - 1
    stage, last_dist, v, first = [0] * prob.n, None, 0.0, True
    out = []
    for epoch, student in enumerate(students):  # epoch: 0-based, as theirs
        if epoch % p == 0 and epoch >= p and v < last:
            rows = prob.model_rows(student)
            s_top = [prob.top_unseen(rows[n], c["history"], k) for n, c in enumerate(prob.ctx)]
            if first:
                last_dist = [1.0 - ref_ndcg(s_top[n], lists[min(last, stage[n] + 1)][n]) for n in range(prob.n)]
                first = False
            else:
                th = alpha * (0.995 ** (epoch // p))
                for n in range(prob.n):
                    if stage[n] == last:
                        continue
                    nd = 1.0 - ref_ndcg(s_top[n], lists[min(last, stage[n] + 1)][n])
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ratio = np.float64(last_dist[n]) / np.float64(nd)
                    if ratio > th or ratio < 1:
                        last_dist[n] = 1.0 - ref_ndcg(s_top[n], lists[min(last, stage[n] + 2)][n])
                        stage[n] += 1
            v = round(float(np.mean(stage)), 2)
        out.append((list(stage), None if last_dist is None else list(last_dist), v))
    return out


def clamped(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, -40.0, 40.0)


def ref_loss(state, table, history, positives, t_list, form, phase, k) -> torch.Tensor:
    """One context's loss, one item at a time (float64 autograd)."""
    listed = [i for i in t_list if i not in positives]
    items = range(1, N_ITEMS + 1)
    raw = {i: torch.dot(state, table[i]) for i in items}
    floor = torch.tensor(1e-5, dtype=F64)
    if phase == "rank":
        s = {i: clamped(raw[i]) for i in items}
        half, tenth = t_list[: k // 2], t_list[: k // 10]

        def den(block):
            return sum((torch.exp(s[o]) for o in items if o not in history and o not in positives
                        and o not in block), torch.zeros((), dtype=F64))

        def pl(xs, d):
            return -sum((s[xs[j]] - torch.log(torch.maximum(sum(torch.exp(s[i]) for i in xs[j:]) + d, floor))
                         for j in range(len(xs))), torch.zeros((), dtype=F64))

        d_half = den(half)
        top = (pl([i for i in half if i not in positives], d_half)
               + pl([i for i in tenth if i not in positives], den(tenth)))
        return pl(list(positives), d_half) + top / 2
    if form == "per_item":
        s = {i: clamped(raw[i]) for i in items}
        others = sum(torch.exp(s[o]) for o in items if o not in history and o not in t_list and o not in positives)
        return -2 * sum(s[i] - torch.log(torch.maximum(torch.exp(s[i]) + others, floor))
                        for i in list(positives) + listed)
    ranked = list(positives) + listed  # plackett_luce: every other item (history too) in the denominator
    others = sum(torch.exp(raw[o]) for o in items if o not in ranked)
    return -sum(raw[ranked[j]] - torch.log(sum(torch.exp(raw[i]) for i in ranked[j:]) + others)
                for j in range(len(ranked)))


# ----------------------------------------------------------------------------- tests


def test_hetcomp_defaults_are_the_authors():
    c = HetCompSettings()
    assert (c.lam, c.alpha, c.p, c.K, c.checkpoints) == (0.005, 1.05, 10, 50, 3)  # configs/citeulike/bpr/hetcomp.yaml
    assert (c.pick, c.positives, c.form, c.rank_phase) == ("earliest", "first", "per_item", True)
    with pytest.raises(ConfigError, match="checkpoints"):
        HetCompSettings(checkpoints=0).check("hetcomp.")
    HetCompSettings(checkpoints=0, pick="spread").check("hetcomp.")


def test_earliest_checkpoints_take_the_first_files_final_last():
    assert earliest_checkpoints([8, 2, 6, 4], best_epoch=10, n=3) == ([2, 4, 6], False)  # final unused
    assert earliest_checkpoints([2, 4, 6], best_epoch=6, n=3) == ([2, 4], True)
    assert earliest_checkpoints([2, 4, 6, 8], best_epoch=None, n=5) == ([2, 4, 6, 8], True)
    assert earliest_checkpoints([4], best_epoch=2, n=3) == ([], True)


@pytest.mark.parametrize("pick,epochs,best,want", [
    ("earliest", (2, 4, 6, 8), 10, [2, 4, 6]),  # three checkpoints, the final teacher unused
    ("earliest", (2, 4), 6, [2, 4, "final"]),
    ("spread", (2, 4, 6, 8), 10, [2, 6, 8, "final"]),  # the former: 3 spread + final
])
def test_hetcomp_lists_follow_pick(prob, pick, epochs, best, want):
    setup, asked = trajectory_setup(prob, epochs, best)
    d = HetComp(HetCompSettings(K=6, pick=pick), setup)
    chosen = [e for e in want if e != "final"]
    assert asked == chosen and d.checkpoint_epochs == chosen and setup.warnings == []
    views = [prob.view if e == "final" else prob.early[e] for e in want]
    assert d.lists.tolist() == [prob.ref_list(v, 6) for v in views]


def test_hetcomp_warns_when_fewer_lists_than_asked(prob):
    setup, _ = trajectory_setup(prob, (2,), 6)
    d = HetComp(HetCompSettings(K=6), setup)
    assert d.lists.size(0) == 2 and len(setup.warnings) == 1 and "2 lists" in setup.warnings[0]


@pytest.mark.parametrize("positives", ["first", "next"])
def test_hetcomp_positives(prob, positives):
    setup, _ = trajectory_setup(prob)
    d = HetComp(HetCompSettings(K=6, positives=positives), setup)
    want = ref_positives(prob, positives)
    assert d.positive.tolist() == want
    lists = prob.ref_list(prob.early[2], 6)
    for n in range(prob.n):  # a list member that is a positive is dropped
        assert d.current_valid[n].tolist() == [i not in want[n] for i in lists[n]]
    if positives == "first" and prob.contexts.mode == "last":
        assert len(want[0]) > 1  # several positives: the shortest training sequence here


def test_hetcomp_dkc_matches_reference(prob):
    K, p, alpha = 6, 1, 1.05
    setup, _ = trajectory_setup(prob, (2, 4, 6, 8), 10)  # earliest: lists of epochs 2, 4, 6
    d = HetComp(HetCompSettings(K=K, p=p, alpha=alpha), setup)
    lists = [prob.ref_list(prob.early[e], K) for e in (2, 4, 6)]
    students = [prob.student] + [prob.sasrec(4, 200 + s) for s in range(9)]
    want = ref_dkc(prob, lists, students, p, alpha, K)
    moved = False
    for epoch, (student, (stage, last_dist, v)) in enumerate(zip(students, want)):
        d.refresh(student)
        assert d.stage.tolist() == stage, epoch
        assert d.v_result == v, epoch
        if last_dist is None:
            assert d.last_dist is None
        else:
            np.testing.assert_array_equal(d.last_dist.numpy(), np.array(last_dist))
        moved |= any(stage)
        cur = [lists[s][n] for n, s in enumerate(stage)]
        assert d.current.tolist() == cur
    assert moved


def test_hetcomp_zero_over_zero_stays_and_x_over_zero_moves(prob, monkeypatch):
    """Student top-K equal to the next list: dist 0. last 0 / 0 is nan (stays); last > 0 / 0 moves."""
    setup, _ = trajectory_setup(prob, (2, 4, 6, 8), 10)
    d = HetComp(HetCompSettings(K=6, p=1), setup)
    full = torch.ones_like(d.lists[1], dtype=torch.bool)
    monkeypatch.setattr(hetcomp_mod, "student_top_masked", lambda *a, **k: (d.lists[1].clone(), full))
    d.refresh(None)  # epoch 0: no check
    d.refresh(None)  # first check: records dist 0 to list 1
    assert d.last_dist.abs().max() == 0 and d.stage.tolist() == [0] * prob.n
    d.refresh(None)  # 0 / 0: nobody moves
    assert d.stage.tolist() == [0] * prob.n
    d.last_dist = torch.full_like(d.last_dist, 0.5)
    d.refresh(None)  # 0.5 / 0 = inf: everybody moves
    assert d.stage.tolist() == [1] * prob.n


def test_hetcomp_checks_stop_once_the_rounded_mean_stage_is_last(prob, monkeypatch):
    setup, _ = trajectory_setup(prob, (2, 4, 6, 8), 10)
    d = HetComp(HetCompSettings(K=6, p=1), setup)
    state = d.state_dict()
    state["stage"] = torch.full_like(d.stage, 2)
    state["v_result"] = 2.0
    d.load_state_dict(state)
    calls = []
    monkeypatch.setattr(hetcomp_mod, "student_top_masked", lambda *a, **k: calls.append(1))
    for _ in range(4):
        d.refresh(None)
    assert calls == []


@pytest.mark.parametrize("phase", ["lists", "rank"])
@pytest.mark.parametrize("form", ["per_item", "plackett_luce"])
@pytest.mark.parametrize("positives", ["first", "next"])
def test_hetcomp_loss_and_gradient_match_reference(prob, positives, form, phase):
    K = 10  # K // 2 = 5 and K // 10 = 1 items in the rank phase
    setup, _ = trajectory_setup(prob)
    d = HetComp(HetCompSettings(K=K, positives=positives, form=form), setup)
    lists = [prob.ref_list(v, K) for v in (prob.early[2], prob.early[4], prob.view)]
    stage = [0] * prob.n
    if phase == "rank":  # every context on the final list: the authors' rank_loss
        state = d.state_dict()
        state["stage"], state["v_result"] = torch.full_like(d.stage, 2), 2.0
        d.load_state_dict(state)
        stage = [2] * prob.n
    else:  # some contexts further on: the current list follows the stage
        state = d.state_dict()
        state["stage"] = torch.tensor([n % 3 for n in range(prob.n)])
        d.load_state_dict(state)
        stage = [n % 3 for n in range(prob.n)]
    pos = ref_positives(prob, positives)

    ids = torch.randperm(prob.n, generator=torch.Generator().manual_seed(1))
    states = prob.s_states[ids].clone().requires_grad_(True)
    prob.student.zero_grad(set_to_none=True)
    per, extras = d.loss(ids, states, prob.student)
    assert per.shape == ids.shape
    assert extras["stage"] == pytest.approx(np.mean([stage[n] for n in ids.tolist()]))
    weights = torch.rand(len(ids), generator=torch.Generator().manual_seed(2))
    (per * weights).sum().backward()

    r_states = prob.s_states[ids].double().clone().requires_grad_(True)
    r_table = prob.student.items.weight.detach().double().clone().requires_grad_(True)
    ref = [ref_loss(r_states[row], r_table, prob.ctx[n]["history"], pos[n], lists[stage[n]][n], form, phase, K)
           for row, n in enumerate(ids.tolist())]
    np.testing.assert_allclose(per.detach().double().numpy(), [x.item() for x in ref], rtol=1e-5, atol=1e-4)
    sum(x * w for x, w in zip(ref, weights.double())).backward()
    np.testing.assert_allclose(states.grad.numpy(), r_states.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(prob.student.items.weight.grad.numpy(), r_table.grad.numpy(), rtol=1e-4, atol=1e-4)


class BigScorer:
    """A dot-product student with large scores, to reach the authors' clamp at ±40."""

    def __init__(self, table):
        self.table = table

    def score_all(self, states):
        s = states @ self.table.T
        return torch.cat([torch.full_like(s[:, :1], float("-inf")), s[:, 1:]], 1)


@pytest.mark.parametrize("phase", ["lists", "rank"])
def test_hetcomp_scores_are_clamped_at_40(prob, phase):
    K = 10
    setup, _ = trajectory_setup(prob)
    d = HetComp(HetCompSettings(K=K, rank_phase=phase == "rank"), setup)
    if phase == "rank":
        state = d.state_dict()
        state["stage"], state["v_result"] = torch.full_like(d.stage, 2), 2.0
        d.load_state_dict(state)
    g = torch.Generator().manual_seed(0)
    table = (torch.randn(N_ITEMS + 1, 4, generator=g) * 8).double().requires_grad_(True)
    states = (torch.randn(prob.n, 4, generator=g) * 3).double().requires_grad_(True)
    ids = torch.arange(prob.n)
    per, _ = d.loss(ids, states, BigScorer(table))
    raw = (states @ table.T).detach()
    assert (raw.abs() > 40).any() and (raw.abs() < 40).any()
    r_table = table.detach().clone().requires_grad_(True)
    r_states = states.detach().clone().requires_grad_(True)
    pos = ref_positives(prob, "first")
    cur = d.current.tolist()
    ref = [ref_loss(r_states[n], r_table, prob.ctx[n]["history"], pos[n], cur[n], "per_item", phase, K)
           for n in range(prob.n)]
    np.testing.assert_allclose(per.detach().numpy(), [x.item() for x in ref], rtol=1e-9, atol=1e-8)
    per.sum().backward()
    sum(ref).backward()
    np.testing.assert_allclose(table.grad.numpy(), r_table.grad.numpy(), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(states.grad.numpy(), r_states.grad.numpy(), rtol=1e-8, atol=1e-8)


def test_hetcomp_single_list_is_in_the_rank_phase_from_the_start(prob):
    """One list (no trajectory): the authors' v_result 0 is already the last stage."""
    setup = prob.setup(0, trajectory=None)
    d = HetComp(HetCompSettings(K=10), setup)
    assert d.lists.size(0) == 1 and len(setup.warnings) == 1
    ids = torch.arange(prob.n)
    with torch.no_grad():
        per, _ = d.loss(ids, prob.s_states, prob.student)
    r_table = prob.student.items.weight.detach().double()
    pos = ref_positives(prob, "first")
    final = prob.ref_list(prob.view, 10)
    want = [ref_loss(prob.s_states[n].double(), r_table, c["history"], pos[n], final[n], "per_item", "rank", 10).item()
            for n, c in enumerate(prob.ctx)]
    np.testing.assert_allclose(per.double().numpy(), want, rtol=1e-5, atol=1e-4)
    d = HetComp(HetCompSettings(K=10, rank_phase=False), setup)
    with torch.no_grad():
        per, _ = d.loss(ids, prob.s_states, prob.student)
    want = [ref_loss(prob.s_states[n].double(), r_table, c["history"], pos[n], final[n], "per_item", "lists",
                     10).item() for n, c in enumerate(prob.ctx)]
    np.testing.assert_allclose(per.double().numpy(), want, rtol=1e-5, atol=1e-4)
    assert not math.isnan(float(per.sum()))
