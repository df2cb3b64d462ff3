"""`cd`: collaborative distillation, student-guided sampling (Lee et al., ICDM 2019).

Per refresh (once per epoch), for every context at once: the student's top-N items with the
context's history masked ("non-train"); 2n distinct positions drawn ∝ exp(-(j+1)/N/T) without
replacement (Gumbel top-k), paired (draw i with draw n+i), the better-ranked of each pair kept:
n distinct items. Soft labels y = sigmoid(teacher score) are computed then (teacher frozen).
Per batch: pointwise soft-label BCE, -Σ [y log σ(s) + (1 - y) log(1 - σ(s))] over the n items.
Deviation: the authors redraw pairs with replacement until n distinct items; drawing 2n
distinct positions gives n distinct items in one vectorised step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..errors import ConfigError
from ..settings import MethodSettings, setting
from .base import Distiller
from .common import gumbel_topk, student_top_masked


@dataclass
class CDSettings(MethodSettings):
    """CD (Lee et al. 2019): soft-label BCE on student-guided samples."""

    lam: float = setting(0.01, "weight λ of the KD term (not given in baselines.md)", ge=0)
    N: int = setting(3000, "student top-N pool (history masked)", gt=0, items=True)
    T: float = setting(20.0, "position weight exp(-rank / N / T)", gt=0)
    n: int = setting(2, "items kept per context (better of each of n pairs)", gt=0)

    def check(self, prefix: str) -> None:
        if 2 * self.n > self.N:
            raise ConfigError(f"{prefix}n ({self.n}) must be ≤ {prefix}N / 2 ({self.N // 2}): "
                              "n pairs are drawn from the top-N")


class CD(Distiller):
    name = "cd"
    Settings = CDSettings

    def refresh(self, student) -> None:
        c = self.c
        pool, valid = student_top_masked(student, self.contexts, c.N, self.chunk, self.device)
        j = torch.arange(c.N, device=pool.device, dtype=torch.float32)
        logw = torch.where(valid, -(j + 1) / c.N / c.T, float("-inf"))
        pos = gumbel_topk(logw, 2 * c.n, self.gen)
        keep = torch.minimum(pos[:, : c.n], pos[:, c.n:])
        self.items = pool.gather(1, keep)
        self.valid = valid.gather(1, keep)
        self.labels = torch.sigmoid(self.teacher.scores_of_lists([self.items])[0])

    def loss(self, ids, states, student):
        s = student.score_items(states, self.items[ids])
        bce = F.binary_cross_entropy_with_logits(s, self.labels[ids], reduction="none")
        return torch.where(self.valid[ids], bce, torch.zeros_like(bce)).sum(1), {}
