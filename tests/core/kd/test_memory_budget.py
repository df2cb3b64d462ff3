"""Chunking never holds more than the budget: every full-catalogue pass (evaluation, popularity,
the teacher view's lists, the refresh helpers and the refreshes of dcd, unkd, rcekd) run under
a spy that sees every tensor an op allocates. Those as wide as the catalogue are tracked while
alive; their peak must stay within a budget of a few KB, with a chunk cap far above it, and the
results must equal those of a budget that holds everything at once.

Scores are small integers (exact in float32 whatever the chunking), so "equal" is exact.
"""

from __future__ import annotations

import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from rcekd_core.eval.popularity import evaluate_popularity
from rcekd_core.eval.ranking import evaluate
from rcekd_core.kd.base import KDSetup, rowwise_isin, student_top
from rcekd_core.kd.common import student_ranks, student_top_masked, uniform_outside
from rcekd_core.kd.contexts import KDContexts
from rcekd_core.kd.dcd import DCD, DCDSettings, student_ranks_all
from rcekd_core.kd.rcekd import RCEKD, RCEKDSettings, unseen_counts
from rcekd_core.kd.teacher_view import TeacherView
from rcekd_core.kd.unkd import UnKD, UnKDSettings

from .integer_model import IntegerLastItem

CPU = torch.device("cpu")
N_USERS, N_ITEMS, S_LEN = 20, 240, 6
BUDGET = 16 << 10  # 16 KB: a chunk of a few contexts (one unkd row is ~10 KB)
HUGE = 1 << 34
NO_CAP = 10**6  # eval.chunk far above the budget: the budget alone bounds the chunks
WIDE = 100  # tracked: tensors at least this wide (lists, histories and states are narrower)


class WideTensors(TorchDispatchMode):
    """Every tensor an op allocates (not a view, not an in-place result) with ≥ 2 dims and a
    last dimension ≥ `width`: its shape, and the peak bytes of those alive at once."""

    def __init__(self, width: int = WIDE):
        super().__init__()
        self.width, self.live, self.peak, self.shapes = width, 0, 0, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and self.tracked(t) and t.untyped_storage().data_ptr() not in inputs:
                n = t.untyped_storage().nbytes()
                self.live += n
                self.peak = max(self.peak, self.live)
                self.shapes.append(tuple(t.shape))
                weakref.finalize(t, self._free, n)
        return out

    def tracked(self, t: torch.Tensor) -> bool:
        return t.dim() >= 2 and t.size(-1) >= self.width

    def _free(self, n: int) -> None:
        self.live -= n


def spied(fn, *args, limit: int = BUDGET, **kwargs):
    """Run fn(*args, **kwargs) under the spy; assert its wide tensors never held more than
    `limit` bytes at once. Returns (fn's result, the spy)."""
    spy = WideTensors()
    with spy:
        out = fn(*args, **kwargs)
    assert spy.shapes, "the pass made no catalogue-wide tensor: the spy saw nothing"
    assert spy.peak <= limit, (spy.peak, sorted(set(spy.shapes)))
    return out, spy


@pytest.fixture(scope="module", params=["all", "last"])
def world(request, tiny_data):
    data = tiny_data(N_USERS, N_ITEMS, seed=3, skew=1.0)
    contexts = KDContexts(data, request.param, S_LEN)
    teacher = IntegerLastItem(N_ITEMS, S_LEN, dim=3, seed=1)
    student = IntegerLastItem(N_ITEMS, S_LEN, dim=2, seed=2)
    return data, contexts, teacher, student


def view_of(world, budget: int) -> TeacherView:
    _, contexts, teacher, _ = world
    return TeacherView(teacher, contexts, NO_CAP, CPU, budget=budget)


def setup_of(world, budget: int, view: TeacherView | None = None) -> KDSetup:
    _, contexts, _, _ = world
    return KDSetup(teacher=view or view_of(world, budget), contexts=contexts, device=CPU, seed=5, chunk=NO_CAP,
                   epochs=3, student_dim=2, budget=budget)


def test_evaluation_and_popularity(world):
    data, _, _, student = world
    for split in ("valid", "test"):
        got, spy = spied(evaluate, student, data, split, [1, 5], NO_CAP, topk=5, device=CPU, budget=BUDGET)
        assert max(s[0] for s in spy.shapes) < data.n_users  # chunked
        want = evaluate(student, data, split, [1, 5], NO_CAP, topk=5, device=CPU, budget=HUGE)
        assert got.metrics == want.metrics and torch.equal(got.topk, want.topk)
        pop, _ = spied(evaluate_popularity, data, split, [1, 5], budget=BUDGET)  # float64 scores
        assert pop == evaluate_popularity(data, split, [1, 5], budget=HUGE)


def test_teacher_view_lists_and_scores(world):
    small, big = view_of(world, BUDGET), view_of(world, HUGE)
    n = small.states.size(0)
    for k in (3, 12):
        assert torch.equal(spied(small.topk, k)[0], big.topk(k))
        got, want = spied(small.topk_masked, k)[0], big.topk_masked(k)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    g = torch.Generator().manual_seed(0)
    narrow = torch.randint(1, N_ITEMS + 1, (n, 3), generator=g)  # 4 x 32 < items: gathers item vectors
    wide = torch.randint(1, N_ITEMS + 1, (n, 9), generator=g)  # 9 x 32 > items: one matmul per chunk
    got, _ = spied(small.scores_of_lists, [wide, narrow])
    for g_, w_ in zip(got, big.scores_of_lists([wide, narrow])):
        assert torch.equal(g_, w_)
    assert torch.equal(small.scores_of_lists([narrow])[0], big.scores_of_lists([narrow])[0])


def test_refresh_helpers(world):
    _, contexts, _, student = world
    n = contexts.n
    items = torch.randint(0, N_ITEMS + 1, (n, 8), generator=torch.Generator().manual_seed(1))
    for fn, budget in ((lambda b: student_top(student, contexts, 10, NO_CAP, CPU, b), BUDGET),
                       (lambda b: student_top_masked(student, contexts, 10, NO_CAP, CPU, b), BUDGET),
                       (lambda b: student_ranks(student, contexts, items, NO_CAP, CPU, b), BUDGET),
                       (lambda b: student_ranks_all(student, contexts, items, NO_CAP, CPU, b), BUDGET),
                       (lambda b: unseen_counts(contexts, N_ITEMS, NO_CAP, b), 2 << 10)):  # bool rows: smaller
        got, spy = spied(fn, budget, limit=budget)
        assert max(s[0] for s in spy.shapes) < n  # chunked
        want = fn(HUGE)
        for g_, w_ in zip(got if isinstance(got, tuple) else [got], want if isinstance(want, tuple) else [want]):
            assert torch.equal(g_, w_)
    # random draws per chunk: the same law, not the same numbers; check the budget and the rules
    excluded = items[:, :2]
    (drawn, ok), _ = spied(uniform_outside, contexts, excluded, N_ITEMS, 5, torch.Generator().manual_seed(0),
                           CPU, NO_CAP, BUDGET)
    assert ok.all() and not rowwise_isin(drawn, excluded).any() and (drawn > 0).all()
    lists = torch.randint(1, N_ITEMS + 1, (4000, 30), generator=torch.Generator().manual_seed(2))
    got, _ = spied(rowwise_isin, lists[:, :20], lists[:, 10:], BUDGET)
    assert torch.equal(got, rowwise_isin(lists[:, :20], lists[:, 10:], HUGE))


@pytest.mark.parametrize("rank_over", ["all", "unseen"])
def test_dcd_refresh(world, rank_over):
    _, _, _, student = world
    small = DCD(DCDSettings(K=4, M=12, rank_over=rank_over), setup_of(world, BUDGET))
    big = DCD(DCDSettings(K=4, M=12, rank_over=rank_over), setup_of(world, HUGE))
    spied(small.refresh, student)
    big.refresh(student)
    for name in ("rank_s", "up", "up_valid", "down", "down_valid"):
        assert torch.equal(getattr(small, name), getattr(big, name)), name


def test_unkd_refresh(world):
    _, contexts, _, student = world
    small = UnKD(UnKDSettings(groups=2, pairs=6), setup_of(world, BUDGET))
    big = UnKD(UnKDSettings(groups=2, pairs=6), setup_of(world, HUGE))
    spied(small.refresh, student)
    big.refresh(student)
    # its draws come per chunk (another budget: other numbers, the same law): the valid pairs
    # are those of one chunk, and every valid pair is two distinct unseen items of one group
    assert torch.equal(small.pair_valid, big.pair_valid)
    hist = rowwise_isin(small.hi, contexts.history(torch.arange(contexts.n))) & small.pair_valid
    assert not hist.any()
    ok = small.pair_valid
    assert (small.hi[ok] != small.lo[ok]).all()
    assert torch.equal(small.group[small.hi][ok], small.group[small.lo][ok])


@pytest.mark.parametrize("switches", [{}, {"mask_history": True}, {"union_ce": True}, {"sampling": "rank"},
                                      {"gamma": 0.5, "student_term": False}])
def test_rcekd_refresh(world, switches):
    _, _, _, student = world
    settings = {"K": 5, "L": 5, "M": 10, **switches}
    small = RCEKD(RCEKDSettings(**settings), setup_of(world, BUDGET))
    big = RCEKD(RCEKDSettings(**settings), setup_of(world, HUGE))
    spied(small.refresh, student)
    big.refresh(student)
    for name in ("items", "j_mask", "gamma", "p_qs", "p_j"):
        assert torch.equal(getattr(small, name), getattr(big, name)), name


class TallTensors(WideTensors):
    """Every tensor an op allocates with ≥ 2 dims and one row per KD context (`rows` of them)."""

    def __init__(self, rows: int):
        super().__init__()
        self.rows = rows

    def tracked(self, t: torch.Tensor) -> bool:
        return t.dim() >= 2 and t.size(0) == self.rows


@pytest.mark.parametrize("union_ce", [False, True])
def test_rcekd_refresh_holds_its_results_and_the_pool_only(world, union_ce):
    """Per-context temporaries (positions, keys, draws, teacher scores) are made a chunk of
    contexts at a time: at its peak the refresh holds its results and the student's pool,
    nothing else one row per context (at 1M contexts each such temporary is hundreds of MB)."""
    _, contexts, _, student = world
    d = RCEKD(RCEKDSettings(K=5, L=5, M=10, union_ce=union_ce), setup_of(world, BUDGET))
    spy = TallTensors(contexts.n)
    with spy:
        d.refresh(student)
    kept = sum(getattr(d, name).untyped_storage().nbytes() for name in ("items", "j_mask", "j_bias", "p_qs", "p_j"))
    pool = contexts.n * d.c.M * 8  # int64 item ids
    assert spy.shapes and spy.peak <= kept + pool, (spy.peak, kept, pool, spy.shapes)
