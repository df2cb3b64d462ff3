"""`cd`: collaborative distillation, student-guided sampling (Lee et al., ICDM 2019).

Follows the authors' `CD` class (woriazzc/RCEKD, modeling/KD/baseline.py: `get_rank_sample`,
`get_loss`); docs/methods.md (cd) has the formulas, the sources of the defaults and the deviations.

Per refresh (once per epoch), for every context at once: the student's top-N items with the
context's history masked; position j (0-based) weighs w_j = exp(-(j+1)/N/T).
draws="authors": the authors draw two positions with replacement ∝ w, keep the better-ranked
one, and repeat until n distinct items are kept. Each kept position is then an i.i.d. draw from
q_j = P(min(a, b) = j) = w_j (S_j + S_{j+1}) / W² (S_j = Σ_{k≥j} w_k, W = S_0), and the first n
distinct values of an i.i.d. sequence are n successive draws without replacement from q: one
Gumbel top-n over log q, the same law in one vectorised step.
draws="distinct" (the project's former sampler): 2n distinct positions ∝ w, paired (draw i with
draw n+i), the better of each pair kept.
Soft labels y = sigmoid((s_T + t2) / t1) from the frozen teacher, computed at refresh.
Per batch: -Σ_items [y log(σ(s) + 1e-10) + (1 - y) log(1 - σ(s) + 1e-10)] over the n items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import ConfigError
from ..settings import MethodSettings, setting
from .base import Distiller
from .common import gumbel_topk, student_top_masked

EPS = 1e-10  # the authors' 1e-10 inside both logs of the BCE


@dataclass
class CDSettings(MethodSettings):
    """CD (Lee et al. 2019): soft-label BCE on student-guided samples.

    Defaults: the authors' configs/citeulike/hstu/cd.yaml (a sequential student, like the project's
    default); every cd.yaml of theirs (bpr, lightgcn, hstu; citeulike, gowalla, yelp) has the same values.
    """

    lam: float = setting(0.5, "weight λ of the KD term (authors: lmbda 0.5, configs/citeulike/hstu/cd.yaml)", ge=0)
    N: int = setting(3000, "student top-N pool, history masked (authors: cd_sample_num 3000)", gt=0, items=True)
    T: float = setting(20.0, "position weight exp(-(rank + 1) / N / T) (authors: cd_T 20)", gt=0)
    n: int = setting(2, "distinct items distilled per context (authors: cd_n_distill 2)", gt=0)
    t1: float = setting(2.0, "soft label sigmoid((s_T + t2) / t1): the divisor (authors: cd_t1 2; 1: plain sigmoid)",
                        gt=0)
    t2: float = setting(0.0, "soft label sigmoid((s_T + t2) / t1): the shift, any finite number (authors: cd_t2 0)")
    draws: Literal["authors", "distinct"] = setting(
        "authors", "authors: better of two draws with replacement, until n distinct items; "
                   "distinct: 2n distinct positions, better of each pair (former sampler)")

    def check(self, prefix: str) -> None:
        if 2 * self.n > self.N:
            raise ConfigError(f"{prefix}n ({self.n}) must be ≤ {prefix}N / 2 ({self.N // 2}): "
                              "n pairs are drawn from the top-N")


def pair_min_logq(logw: torch.Tensor) -> torch.Tensor:
    """log P(min(a, b) = j) up to a per-row constant, a and b i.i.d. ∝ exp(logw) over the columns.

    P(min = j) = S_j² - S_{j+1}² = w_j (S_j + S_{j+1}) with S_j = Σ_{k≥j} w_k (unnormalised);
    in log space (logcumsumexp), so N = 3000 small weights do not underflow. -inf stays -inf.
    """
    log_s = torch.logcumsumexp(logw.flip(1), dim=1).flip(1)  # log S_j
    log_next = torch.cat([log_s[:, 1:], torch.full_like(log_s[:, :1], float("-inf"))], 1)  # log S_{j+1}
    return logw + torch.logaddexp(log_s, log_next)


class CD(Distiller):
    name = "cd"
    Settings = CDSettings

    def refresh(self, student) -> None:
        c = self.c
        pool, valid = student_top_masked(student, self.contexts, c.N, self.chunk, self.device, self.budget)
        j = torch.arange(c.N, device=pool.device, dtype=torch.float32)
        logw = torch.where(valid, -(j + 1) / c.N / c.T, float("-inf"))
        if c.draws == "authors":
            keep = gumbel_topk(pair_min_logq(logw), c.n, self.gen)
        else:
            pos = gumbel_topk(logw, 2 * c.n, self.gen)
            keep = torch.minimum(pos[:, : c.n], pos[:, c.n:])
        self.items = pool.gather(1, keep)
        self.valid = valid.gather(1, keep)
        t = self.teacher.scores_of_lists([self.items])[0]
        self.labels = torch.sigmoid((t + c.t2) / c.t1)

    def loss(self, ids, states, student):
        p = torch.sigmoid(student.score_items(states, self.items[ids]))
        y = self.labels[ids]
        bce = -(y * torch.log(p + EPS) + (1 - y) * torch.log(1 - p + EPS))
        return torch.where(self.valid[ids], bce, torch.zeros_like(bce)).sum(1), {}
