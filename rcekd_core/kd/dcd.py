"""`dcd`: dual correction distillation, user side (Lee & Kim, CIKM 2021).

Follows the authors' `DCD` (woriazzc/RCEKD, modeling/KD/baseline.py); docs/methods.md (dcd).
Once: the teacher's top-M with each context's history masked; rank_T = position 0..M-1.
Per refresh (once per epoch): rank_S = the student's 0-based rank of each of those items, by
default among all items, the context's history included (the authors' argsort of every score;
`rank_over: unseen` counts only the unseen items), counted per row without sorting it
(common.count_above), in context chunks within the memory budget.
With d = (rank_S - rank_T) / T:
  under-ranked: K positions drawn ∝ max(tanh(max(d, 0)), 1e-5) without replacement, in draw
  order (the authors' multinomial order; `order: teacher` sorts them by teacher rank), the
  ranked list; over-ranked: K positions drawn ∝ max(tanh(max(-d, 0)), 1e-5), the
  denominator-only set. The two draws are independent, as in the authors' code.
Per batch: the relaxed ranking loss of RRD with those two sets, on scores capped at 80 (the
authors' torch.minimum(S, 80)), summed per context:
  -Σ_k [s_k - log(Σ_{j ≥ k, under} e^{s_j} + Σ_{over} e^{s_o})].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import ConfigError
from ..memory import DEFAULT_BUDGET, FLOAT, rows_within
from ..settings import MethodSettings, setting
from .base import Distiller
from .common import SCORE_CAP, count_above, gumbel_topk, masked_lse, rank_row_bytes, relaxed_ranking_loss, student_ranks
from .contexts import context_states

FLOOR = 1e-5  # weight floor, the authors' torch.maximum(..., 1e-5)


@torch.no_grad()
def student_ranks_all(student, contexts, items: torch.Tensor, chunk: int, device: torch.device,
                      budget: int = DEFAULT_BUDGET) -> torch.Tensor:
    """0-based rank of items[n, :] in the student's ranking of all items (history included).

    rank = number of items the student scores strictly higher (padding, at -inf, never is);
    counted per row by count_above, chunked over contexts (a score row and its positions each).
    """
    n = student.n_items
    rows = rows_within(budget, FLOAT * (n + 1) + rank_row_bytes(n, items.size(1)), cap=chunk)
    return torch.cat([
        _ranks(student.score_all(states), ids, items)
        for ids, states in context_states(student, contexts, rows, device)
    ])


def _ranks(scores: torch.Tensor, ids: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """One chunk of student_ranks_all (its scores are freed on return, before the next chunk's)."""
    return count_above(scores, scores.gather(1, items[ids.to(items.device)].to(scores.device)))


@dataclass
class DCDSettings(MethodSettings):
    """DCD (Lee & Kim 2021), user side: under-/over-ranked teacher items by rank discrepancy."""

    lam: float = setting(0.01, "weight λ of the KD term (authors: lmbda 0.01, configs/citeulike/hstu/dcd.yaml)",
                         ge=0)
    K: int = setting(100, "items sampled on each side (authors: dcd_K, configs/citeulike/hstu/dcd.yaml)", gt=0)
    T: float = setting(10.0, "rank-difference scale in tanh (authors: dcd_T, configs/citeulike/hstu/dcd.yaml)",
                       gt=0)
    M: int = setting(500, "teacher list length, history masked (authors: dcd_mxK, configs/citeulike/hstu/dcd.yaml)",
                     gt=0, items=True)
    rank_over: Literal["all", "unseen"] = setting(
        "all", "the student's rank counts all items, history included (the authors'), or only unseen ones")
    order: Literal["draw", "teacher"] = setting(
        "draw", "under-ranked items in the loss: in draw order (the authors'), or sorted by teacher rank")

    def check(self, prefix: str) -> None:
        if self.K > self.M:
            raise ConfigError(f"{prefix}K ({self.K}) must be ≤ {prefix}M ({self.M}): samples come from the top-M")


class DCD(Distiller):
    name = "dcd"
    Settings = DCDSettings

    def __init__(self, settings: DCDSettings, setup):
        super().__init__(settings, setup)
        c = settings
        self.top, self.top_valid = self.teacher.topk_masked(c.M)

    def refresh(self, student) -> None:
        c = self.c
        ranks = student_ranks if c.rank_over == "unseen" else student_ranks_all
        rank_s = ranks(student, self.contexts, self.top, self.chunk, self.device, self.budget)
        rank_s = rank_s.to(self.top.device).float()
        rank_t = torch.arange(c.M, device=rank_s.device, dtype=torch.float32)
        d = (rank_s - rank_t) / c.T
        self.rank_s = rank_s
        for side, diff in (("up", d), ("down", -d)):
            w = torch.tanh(diff.clamp(min=0)).clamp(min=FLOOR)
            logw = torch.where(self.top_valid, torch.log(w), float("-inf"))
            pos = gumbel_topk(logw, c.K, self.gen)  # draw order
            if c.order == "teacher":
                pos = pos.sort(dim=1).values
            setattr(self, side, self.top.gather(1, pos))
            setattr(self, f"{side}_valid", self.top_valid.gather(1, pos))

    def loss(self, ids, states, student):
        s_up = student.score_items(states, self.up[ids]).clamp(max=SCORE_CAP)
        s_down = student.score_items(states, self.down[ids]).clamp(max=SCORE_CAP)
        den = masked_lse(s_down, self.down_valid[ids])
        return relaxed_ranking_loss(s_up, self.up_valid[ids], den), {}
