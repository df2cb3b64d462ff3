"""`kd`: vanilla listwise CE between teacher and student softmaxes over a fixed item list.

The list is the teacher's top-K (fixed for the run) or, with kd.list=student, the student's
top-K refreshed each epoch.
"""

from __future__ import annotations

import torch

from .base import Distiller, masked_softmax, soft_ce, student_top


class CEKD(Distiller):
    name = "kd"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        c = self.cfg.kd
        self.lam, self.K, self.tau, self.list = c.lam, c.K, c.tau, c.list
        if self.list == "teacher":
            self._set_list(self.teacher.topk(self.K))

    def _set_list(self, items: torch.Tensor) -> None:
        self.items = items
        ids = torch.arange(items.size(0), device=items.device)
        self.p_teacher = torch.cat([
            masked_softmax(self.teacher.scores(c, items[c]) / self.tau)
            for c in ids.split(self.cfg.eval.chunk)
        ])

    def refresh(self, student) -> None:
        if self.list == "student":
            self._set_list(student_top(student, self.contexts, self.K, self.cfg.eval.chunk, self.device))

    def loss(self, ids, states, student):
        logits = student.score_items(states, self.items[ids]) / self.tau
        return soft_ce(self.p_teacher[ids], logits), {}
