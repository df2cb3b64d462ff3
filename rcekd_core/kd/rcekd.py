"""`rcekd`: RCE-KD (Zhu & Zhang 2025), as ../shared/docs/rcekd-method.md specifies.

Per refresh (once per epoch by default), for every context at once:
  P = student top-M; c(j) = teacher items at positions >= j of P (reverse cumsum);
  w(j) = exp((min(c, 50) + 1) / T); L positions sampled without replacement -> A;
  J = A ∪ (Q^T \\ A \\ Q^S); o = |Q^T ∩ A| / K; gamma = exp(-beta * o).
The teacher is frozen, so its softmaxes over Q^S and over J are computed here, not per batch.
Per batch: KD = (1 - gamma) CE(Q^S) + gamma CE(J), both softmaxes taken on their own set.
The user's history stays in Q^T and P, as in the authors' playground.py; `mask_history`
masks it (Q^T and P from history-masked scores, as the baselines do). docs/methods.md (rcekd).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import ConfigError
from ..memory import BOOL, DEFAULT_BUDGET, HISTORY, INDEX, rows_within
from ..settings import MethodSettings, setting
from .base import Distiller, masked_softmax, soft_ce, student_top
from .common import NEG, gumbel_topk, history_width, student_top_masked
from .contexts import KDContexts, mask_history_

CLAMP = 50  # from the authors' code


@torch.no_grad()
def unseen_counts(contexts: KDContexts, n_items: int, chunk: int = 1024,
                  budget: int = DEFAULT_BUDGET) -> torch.Tensor:
    """[n] the number of items (1..n_items) outside each context's history, chunked over
    contexts (a bool row over the catalogue and the history row per context, within budget)."""
    step = rows_within(budget, BOOL * (n_items + 1) + HISTORY * history_width(contexts), cap=chunk)
    out = [_unseen(contexts, torch.arange(s, min(s + step, contexts.n)), n_items)
           for s in range(0, contexts.n, step)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def _unseen(contexts: KDContexts, ids: torch.Tensor, n_items: int) -> torch.Tensor:
    """One chunk of unseen_counts (its bool rows are freed on return, before the next chunk's)."""
    seen = torch.zeros(len(ids), n_items + 1, dtype=torch.bool)
    hist = contexts.history(ids)
    if hist.numel():
        seen.scatter_(1, hist, True)
    return n_items - seen[:, 1:].sum(1)


def reverse_cumsum(x: torch.Tensor) -> torch.Tensor:
    return x.flip(1).cumsum(1).flip(1)


def position_dtype(m: int) -> torch.dtype:
    """The narrowest integer dtype that holds the positions 0..m-1 of a pool of m."""
    return torch.int16 if m < 2**15 else torch.int32


def pool_positions(pool: torch.Tensor, items: torch.Tensor, budget: int = DEFAULT_BUDGET,
                   universe: int | None = None) -> torch.Tensor:
    """[N, M] item lists, [N, k] item ids -> [N, k] the position of items[n, i] in pool[n], -1 if absent.

    A per-row map over the item ids (scatter positions, gather), in row chunks within `budget`:
    one lookup answers "in the pool", "in its top-K" and "sampled" for every teacher item.
    `universe`: more than the largest id in pool and items, if the caller knows it (saves a sync).
    """
    out = torch.full(items.shape, -1, dtype=torch.long, device=items.device)
    if items.numel() == 0 or pool.numel() == 0:
        return out
    if universe is None:
        universe = int(max(pool.max(), items.max())) + 1
    where = torch.arange(pool.size(1), device=pool.device, dtype=position_dtype(pool.size(1)))
    step = rows_within(budget, where.element_size() * universe + INDEX * items.size(1))
    for s in range(0, pool.size(0), step):
        out[s : s + step] = _positions(pool[s : s + step], items[s : s + step], universe, where)
    return out


def _positions(pool: torch.Tensor, items: torch.Tensor, universe: int, where: torch.Tensor) -> torch.Tensor:
    """One chunk of pool_positions (its map is freed on return, before the next chunk's)."""
    marks = torch.full((pool.size(0), universe), -1, dtype=where.dtype, device=pool.device)
    marks.scatter_(1, pool, where.expand(pool.size(0), -1))
    return marks.gather(1, items).long()


def holds_teacher(positions: torch.Tensor, m: int) -> torch.Tensor:
    """[N, k] pool positions of the teacher items (-1: absent) -> [N, m] 0/1: position j holds one."""
    marks = torch.zeros(positions.size(0), m + 1, device=positions.device)
    return marks.scatter_(1, torch.where(positions >= 0, positions, m), 1.0)[:, :m]


def log_sampling_weights(positions: torch.Tensor, m: int, T: float, mode: str) -> torch.Tensor:
    """log w(j) over the m pool positions, up to a per-row constant: (min(c(j), 50) + 1) / T with
    c(j) the teacher items at positions >= j, or -(j + 1) / T for `rank`."""
    if mode == "rank":
        j = torch.arange(m, device=positions.device, dtype=torch.float32)
        return (-(j + 1) / T).expand(positions.size(0), -1)
    counts = reverse_cumsum(holds_teacher(positions, m))
    return (counts.clamp(max=CLAMP) + 1) / T


def sampling_weights(pool: torch.Tensor, teacher_top: torch.Tensor, T: float, mode: str) -> torch.Tensor:
    """w(j) over pool positions, up to a per-row factor; shifted by the row maximum so no exp overflows."""
    logw = log_sampling_weights(pool_positions(pool, teacher_top), pool.size(1), T, mode)
    return torch.exp(logw - logw.max(dim=1, keepdim=True).values)


@dataclass
class RCEKDSettings(MethodSettings):
    """RCE-KD (Zhu & Zhang 2025); the switches are the paper's ablations."""

    lam: float = setting(1.0, "weight λ of the KD term", ge=0)
    K: int = setting(50, "teacher top-K and student top-K (Q^T, Q^S)", gt=0)
    L: int = setting(50, "positions sampled from the student's top-M (A)", gt=0)
    M: int = setting(100, "student pool the samples come from", gt=0, items=True)
    T: float = setting(10.0, "temperature of the sampling weights", gt=0)
    beta: float = setting(3.0, "γ = exp(-β · overlap)", ge=0)
    tau: float = setting(1.0, "softmax temperature of both sides", gt=0)
    refresh_every: int = setting(0, "batches between refreshes; 0: once per epoch (the authors')", ge=0)
    sampling: Literal["teacher", "rank"] = setting(
        "teacher", "teacher: weights from teacher items below; rank: rank only (ablation)")
    student_term: bool = setting(True, "False: drop the CE on the student's top-K (ablation)")
    union_ce: bool = setting(False, "True: one CE over Q^S ∪ J instead of two terms (ablation)")
    gamma: float | None = setting(None, "constant γ in [0, 1] instead of exp(-β · overlap); null: adaptive",
                                  ge=0, le=1)
    all_items: bool = setting(False, "True: plain CE over all items (ablation)")
    mask_history: bool = setting(False, "True: the context's history is masked from Q^T, the student top-M and "
                                        "all_items, as the baselines; False: kept (the authors')")

    def check(self, prefix: str) -> None:
        if self.M < self.K:
            raise ConfigError(f"{prefix}M ({self.M}) must be ≥ {prefix}K ({self.K}): the student pool holds its top-K")
        if self.L > self.M:
            raise ConfigError(f"{prefix}L ({self.L}) must be ≤ {prefix}M ({self.M}): samples come from the top-M")


class RCEKD(Distiller):
    name = "rcekd"
    Settings = RCEKDSettings

    def __init__(self, settings: RCEKDSettings, setup):
        super().__init__(settings, setup)
        c = settings
        self.refresh_every = c.refresh_every
        if c.mask_history:
            self._check_unseen()
            self.teacher_top = self.teacher.topk_masked(c.K)[0]
        else:
            self.teacher_top = self.teacher.topk(c.K)
        self.teacher_top_scores = self.teacher.scores_of_lists([self.teacher_top])[0]

    def _check_unseen(self) -> None:
        """mask_history: every context must keep M unseen items, so every list is full."""
        c, data = self.c, self.contexts.data
        fewest = int(unseen_counts(self.contexts, data.n_items, self.chunk, self.budget).min())
        if fewest < (c.K if c.all_items else c.M):
            size = "K" if c.all_items else "M"
            raise ConfigError(f"rcekd.mask_history: a context has only {fewest} unseen items, fewer than "
                              f"rcekd.{size} ({getattr(c, size)}); lower rcekd.{size}")

    def refresh(self, student) -> None:
        c = self.c
        if c.all_items:
            return
        chunk = self.chunk
        if c.mask_history:
            pool = student_top_masked(student, self.contexts, c.M, chunk, self.device, self.budget)[0]
        else:
            pool = student_top(student, self.contexts, c.M, chunk, self.device, self.budget)
        n, width, dev = pool.size(0), c.K + c.L + c.K if c.union_ce else c.L + c.K, pool.device
        # Q^S then J side by side: a batch gathers its student scores once (one backward scatter)
        self.items = torch.empty(n, c.K + width, dtype=torch.long, device=dev)
        self.qs, self.j_items = self.items[:, : c.K], self.items[:, c.K:]
        self.j_mask = torch.empty(n, width, dtype=torch.bool, device=dev)
        dtype = self.teacher_top_scores.dtype  # the teacher's softmaxes keep its scores' dtype
        self.j_bias = torch.empty(n, width, device=dev)
        self.p_qs = torch.empty(n, c.K, dtype=dtype, device=dev)
        self.p_j = torch.empty(n, width, dtype=dtype, device=dev)
        overlap = torch.empty(n, device=dev)
        # contexts a budget's worth at a time: only the results are [n, ...] (one temporary per
        # context and pool position is GBs at a million contexts); the draws come from one
        # stream in row order, so they equal those of one pass over every row
        universe = int(max(pool.max(), self.teacher_top.max())) + 1 if pool.numel() else 1
        step = rows_within(self.budget, self._refresh_row_bytes(universe, width), cap=chunk)
        for s in range(0, n, step):
            rows = slice(s, min(s + step, n))
            overlap[rows] = self._refresh_rows(rows, pool[rows], universe)
        self.gamma = (torch.full_like(overlap, c.gamma) if c.gamma is not None
                      else torch.exp(-c.beta * overlap))

    def _refresh_row_bytes(self, universe: int, width: int) -> int:
        """Per-context bytes `_refresh_rows` holds: the position map over the item ids,
        the teacher's pool scores and about a dozen [M]- or [width]-wide rows."""
        return position_dtype(self.c.M).itemsize * universe + self.teacher.list_row_bytes([self.c.M]) + 12 * INDEX * (self.c.M + width)

    def _refresh_rows(self, rows: slice, pool: torch.Tensor, universe: int) -> torch.Tensor:
        """Q^S, J, their masks and teacher softmaxes for contexts `rows` (pool: their student
        top-M), written into the refresh's tensors; returns the rows' overlap |Q^T ∩ A| / K."""
        c = self.c
        qs, qt = pool[:, : c.K], self.teacher_top[rows]
        # L distinct positions drawn one after another ∝ w (Gumbel top-k: one vectorised topk)
        at = pool_positions(pool, qt, self.budget, universe)  # where each teacher item sits in the pool, -1: outside
        picked = gumbel_topk(log_sampling_weights(at, c.M, c.T, c.sampling), c.L, self.gen, ordered=False)  # A is a set
        drawn = torch.zeros(pool.size(0), c.M + 1, dtype=torch.bool, device=pool.device).scatter_(1, picked, True)
        outside = torch.where(at >= 0, at, c.M)  # the extra column: never drawn, not in Q^S
        qt_in_a = drawn.gather(1, outside)
        qt_new = ~qt_in_a & (outside >= c.K)  # teacher items neither drawn nor in Q^S
        # the teacher is frozen: score the pool once (Q^S and A are gathers of it) and reuse
        # the cached scores of its own top-K
        t_pool = self.teacher.chunk_list_scores(torch.arange(rows.start, rows.stop, device=pool.device), [pool])[0]
        t_qs, t_a, t_qt = t_pool[:, : c.K], t_pool.gather(1, picked), self.teacher_top_scores[rows]
        if c.union_ce:
            # one CE over Q^S ∪ A ∪ Q^T, each item once (a drawn position below K is in Q^S)
            parts = [(qs, torch.ones_like(qs, dtype=torch.bool), t_qs)]
            parts.append((pool.gather(1, picked), picked >= c.K, t_a))
        else:
            parts = [(pool.gather(1, picked), torch.ones_like(picked, dtype=torch.bool), t_a)]
        parts.append((qt, qt_new, t_qt))
        j_items, j_mask, t_j = (torch.cat(x, 1) for x in zip(*parts))
        self.items[rows] = torch.cat([qs, j_items], 1)
        self.j_mask[rows] = j_mask
        # excluded members of J: a finite -1e9 logit (their exp is 0, their teacher weight is 0),
        # so the per-batch CE needs no mask
        self.j_bias[rows].zero_().masked_fill_(~j_mask, NEG)
        self.p_qs[rows] = masked_softmax(t_qs / c.tau)
        self.p_j[rows] = masked_softmax(t_j / c.tau, j_mask)
        return qt_in_a.float().sum(1) / c.K

    def loss(self, ids, states, student):
        c = self.c
        if c.all_items:
            if c.mask_history:
                t_all = mask_history_(self.teacher.score_all(ids), self.contexts, ids)[:, 1:]
                keep = torch.isfinite(t_all)
                p_all = masked_softmax(t_all / c.tau, keep)
                return soft_ce(p_all, student.score_all(states)[:, 1:] / c.tau, keep), {}
            p_all = torch.softmax(self.teacher.score_all(ids)[:, 1:] / c.tau, dim=1)
            logits = student.score_all(states)[:, 1:] / c.tau
            return soft_ce(p_all, logits), {}
        logits = student.score_items(states, self.items[ids])
        if c.tau != 1:
            logits = logits / c.tau
        l2 = soft_ce(self.p_j[ids], logits[:, c.K:] + self.j_bias[ids])
        gamma = self.gamma[ids]
        if c.union_ce or not c.student_term:
            return l2, {"gamma": gamma.mean().item()}
        l1 = soft_ce(self.p_qs[ids], logits[:, : c.K])
        return (1 - gamma) * l1 + gamma * l2, {"gamma": gamma.mean().item()}
