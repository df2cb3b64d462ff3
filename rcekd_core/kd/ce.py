"""`kd`: vanilla listwise CE between teacher and student softmaxes over a fixed item list.

The list is the teacher's top-K (fixed for the run) or, with kd.list=student, the student's
top-K refreshed each epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..memory import rows_within
from ..settings import MethodSettings, setting
from .base import Distiller, masked_softmax, soft_ce, student_top
from .teacher_view import gather_row_bytes


@dataclass
class KDSettings(MethodSettings):
    """Vanilla listwise CE on a fixed item list."""

    lam: float = setting(1.0, "weight λ of the KD term (configs/citeulike/bpr/kd.yaml: lmbda 1)", ge=0)
    K: int = setting(50, "list length (kd_K 50)", gt=0, items=True)
    tau: float = setting(1.0, "softmax temperature of both sides (kd_tau 1)", gt=0)
    list: Literal["teacher", "student"] = setting(
        "student", "student: the student's top-K refreshed per epoch (the authors' kd_guide: student); "
        "teacher: the teacher's top-K, fixed")


class CEKD(Distiller):
    name = "kd"
    Settings = KDSettings

    def __init__(self, settings: KDSettings, setup):
        super().__init__(settings, setup)
        c = settings
        self.K, self.tau, self.list = c.K, c.tau, c.list
        if self.list == "teacher":
            self._set_list(self.teacher.topk(self.K))

    def _set_list(self, items: torch.Tensor) -> None:
        self.items = items
        ids = torch.arange(items.size(0), device=items.device)
        table = getattr(self.teacher, "table", None)  # a TeacherView gathers K item vectors per context
        row = gather_row_bytes(self.K, 1 if table is None else table.size(1))
        self.p_teacher = torch.cat([
            masked_softmax(self.teacher.scores(c, items[c]) / self.tau)
            for c in ids.split(rows_within(self.budget, row, cap=self.chunk))
        ])

    def refresh(self, student) -> None:
        if self.list == "student":
            self._set_list(student_top(student, self.contexts, self.K, self.chunk, self.device, self.budget))

    def loss(self, ids, states, student):
        logits = student.score_items(states, self.items[ids]) / self.tau
        return soft_ce(self.p_teacher[ids], logits), {}
