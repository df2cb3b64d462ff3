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

import torch
from torch.nn import functional as F

from .base import Distiller
from .common import gumbel_topk, student_top_masked


class CD(Distiller):
    name = "cd"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        c = self.c = self.cfg.cd
        self.lam = c.lam

    def refresh(self, student) -> None:
        c = self.c
        pool, valid = student_top_masked(student, self.contexts, c.N, self.cfg.eval.chunk, self.device)
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
