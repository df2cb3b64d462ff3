"""The Distiller protocol: per-epoch refresh, then a KD loss from tensors per batch."""

from __future__ import annotations

import time
from typing import ClassVar

import torch

from ..config import ExperimentConfig
from .contexts import KDContexts, context_states
from .teacher_view import TeacherView


class Distiller:
    """KD term for one method. `loss` returns per-context losses; the loop weights them by λ."""

    name: ClassVar[str]
    uses_teacher: ClassVar[bool] = True
    refresh_every: int = 0  # batches between refreshes; 0: once per epoch

    def __init__(self, cfg: ExperimentConfig, teacher: TeacherView | None, contexts: KDContexts,
                 device: torch.device, seed: int):
        self.cfg = cfg
        self.teacher = teacher
        self.contexts = contexts
        self.device = device
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.lam = 0.0

    def refresh(self, student) -> None:
        """Recompute what depends on the student (its top lists, samples); no gradients."""

    def timed_refresh(self, student) -> float:
        t0 = time.perf_counter()
        with torch.no_grad():
            self.refresh(student)
        return time.perf_counter() - t0

    def loss(self, ids: torch.Tensor, states: torch.Tensor, student) -> tuple[torch.Tensor, dict[str, float]]:
        """Per-context KD loss [N] and scalar extras (e.g. mean gamma) for the batch's contexts."""
        raise NotImplementedError


@torch.no_grad()
def student_top(student, contexts: KDContexts, m: int, chunk: int, device: torch.device) -> torch.Tensor:
    """The student's top-m items at every context, in rank order, chunked over contexts."""
    out = []
    for _, states in context_states(student, contexts, chunk, device):
        out.append(student.score_all(states).topk(m, dim=1).indices)
    return torch.cat(out)


def rowwise_isin(values: torch.Tensor, sets: torch.Tensor) -> torch.Tensor:
    """[N, a] values, [N, b] sets -> [N, a] bool: values[n, i] in sets[n] (sort + searchsorted)."""
    sorted_sets = sets.sort(dim=1).values
    pos = torch.searchsorted(sorted_sets, values).clamp(max=sets.size(1) - 1)
    return sorted_sets.gather(1, pos) == values


def soft_ce(p_teacher: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """-Σ p_T log softmax(student) per row; masked members are excluded from both sides."""
    if mask is not None:
        student_logits = student_logits.masked_fill(~mask, float("-inf"))
    logp = torch.log_softmax(student_logits, dim=1)
    terms = p_teacher * logp
    if mask is not None:
        terms = torch.where(mask, terms, torch.zeros((), device=terms.device))
    return -terms.sum(1)


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return torch.softmax(logits, dim=1)
