"""The Distiller protocol: per-epoch refresh, then a KD loss from tensors per batch.

A method is one file: its settings (a MethodSettings subclass, with λ) and its Distiller,
which names that class as `Settings`. It receives only its own section and a KDSetup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..distributed import shard_contexts
from ..memory import BOOL, DEFAULT_BUDGET, FLOAT, rows_within
from ..settings import MethodSettings
from ..topk import SELECT_BYTES, top_k
from .contexts import KDContexts, context_states
from .teacher_view import TeacherView


@dataclass
class Trajectory:
    """Teacher checkpoints saved while it trained, for methods that distil its trajectory."""

    epochs: list[int]  # epochs with a saved checkpoint
    best_epoch: int | None  # the final (best) teacher's epoch
    where: str  # the folder, for messages
    view: Callable[[int], TeacherView]  # epoch -> the frozen view of that checkpoint


@dataclass
class KDSetup:
    """What a distiller may use besides its own settings."""

    teacher: TeacherView | None
    contexts: KDContexts
    device: torch.device
    seed: int
    chunk: int  # contexts scored at once (eval.chunk)
    epochs: int  # the student's planned epochs (student_train.epochs)
    student_dim: int
    trajectory: Trajectory | None = None  # set when the method's `needs_trajectory` is true
    warnings: list[str] = field(default_factory=list)  # the method's notes, emitted as warning events
    budget: int = DEFAULT_BUDGET  # bytes a full-catalogue pass may hold at once (eval.memory_mb)


class Distiller:
    """KD term for one method. `loss` returns per-context losses; the loop weights them by λ."""

    name: ClassVar[str]
    Settings: ClassVar[type[MethodSettings]] = MethodSettings
    uses_teacher: ClassVar[bool] = True
    refresh_every: int = 0  # batches between refreshes; 0: once per epoch

    def __init__(self, settings: MethodSettings, setup: KDSetup):
        self.c = settings
        self.lam = settings.lam
        self.setup = setup
        self.teacher = setup.teacher
        self.contexts = setup.contexts
        self.device = setup.device
        self.chunk = setup.chunk
        self.budget = setup.budget
        self.gen = torch.Generator(device=setup.device).manual_seed(setup.seed)

    @classmethod
    def trajectory_every(cls, settings: MethodSettings) -> int:
        """Teacher epochs between saved checkpoints this method needs; 0: none.

        Asked of every registered method whenever a teacher trains (it is cached and shared),
        so a later run of the method finds the checkpoints.
        """
        return 0

    @classmethod
    def needs_trajectory(cls) -> bool:
        return False

    def refresh(self, student) -> None:
        """Recompute what depends on the student (its top lists, samples); no gradients."""

    def timed_refresh(self, student) -> float:
        """Seconds of one refresh (on CUDA, until its kernels are done: not charged to the next batch)."""
        t0 = time.perf_counter()
        with torch.no_grad():
            self.refresh(student)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0

    def loss(self, ids: torch.Tensor, states: torch.Tensor, student) -> tuple[torch.Tensor, dict[str, float]]:
        """Per-context KD loss [N] and scalar extras (e.g. mean gamma) for the batch's contexts."""
        raise NotImplementedError

    def parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters of the method itself (e.g. DE's experts); the loop optimises them too."""
        return []

    def state_dict(self) -> dict[str, Any]:
        """What a resumed fit needs to continue exactly: the sampling generator, plus what a
        method keeps across epochs (its own override adds that). Lists recomputed by every
        epoch's refresh are not state."""
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"].cpu())  # set_state takes a CPU ByteTensor, CUDA generators too


class SharedScores:
    """The student as a Distiller sees it when the batch already holds its full scores.

    With a full-softmax base loss at the same contexts, scores of any item set are a gather
    from those scores, so the KD term adds no second matmul (and no second backward through it).
    Anything else is passed through to the model.
    """

    def __init__(self, model, states: torch.Tensor, scores: torch.Tensor):
        self._model, self._states, self._scores = model, states, scores

    def score_items(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        if states is self._states:
            return self._scores.gather(1, items)
        return self._model.score_items(states, items)

    def score_all(self, states: torch.Tensor) -> torch.Tensor:
        return self._scores if states is self._states else self._model.score_all(states)

    def __getattr__(self, name: str):
        return getattr(self._model, name)


def score_chunk(chunk: int, n_items: int, budget: int = DEFAULT_BUDGET) -> int:
    """Contexts per chunk of a pass that holds one float32 score row per context and selects
    its top-m (top_k's temporary): as many as `budget` holds, at most `chunk`."""
    return rows_within(budget, (FLOAT + SELECT_BYTES) * (n_items + 1), cap=chunk)


@torch.no_grad()
def student_top(student, contexts: KDContexts, m: int, chunk: int, device: torch.device,
                budget: int = DEFAULT_BUDGET) -> torch.Tensor:
    """The student's top-m items at every context, in rank order, chunked over contexts."""
    out = []
    contexts = (shard := shard_contexts(contexts)).contexts  # torchrun: this rank's share (distributed.py)
    with shard.group.failing_together():
        for _, states in context_states(student, contexts, score_chunk(chunk, student.n_items, budget), device):
            out.append(top_k(student.score_all(states), m, inplace=True).indices)
    out = shard.gather(out)  # every rank's share, at its contexts
    return torch.cat(out)


def rowwise_isin(values: torch.Tensor, sets: torch.Tensor, budget: int = DEFAULT_BUDGET) -> torch.Tensor:
    """[N, a] item ids, [N, b] item ids -> [N, a] bool: values[n, i] in sets[n].

    A per-row bitmap over the item ids (scatter the set, gather the values), in row chunks
    so the bitmaps stay within `budget`: O(N (a + b)) work, no N x a x b comparison tensor.
    """
    out = torch.zeros_like(values, dtype=torch.bool)
    if values.numel() == 0 or sets.numel() == 0:
        return out
    universe = int(max(values.max(), sets.max())) + 1
    step = rows_within(budget, BOOL * (universe + values.size(1)))  # the bitmap and its gather
    for s in range(0, values.size(0), step):
        out[s : s + step] = _members(values[s : s + step], sets[s : s + step], universe)
    return out


def _members(values: torch.Tensor, sets: torch.Tensor, universe: int) -> torch.Tensor:
    """One chunk of rowwise_isin (its bitmap is freed on return, before the next chunk's)."""
    marks = torch.zeros(values.size(0), universe, dtype=torch.bool, device=values.device)
    marks.scatter_(1, sets, True)
    return marks.gather(1, values)


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
