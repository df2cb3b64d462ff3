"""Fixtures of the KD reference tests: the small problem they all check a distiller on.

A problem is tiny random sequence data, its KD contexts, the contexts as the reference builds
them (its own loop, not the engine's), and optionally a teacher and a student SASRec with the
teacher's view. What each method's reference computes from it stays in that method's test file.

- `tiny_data(n_users, n_items, seed=0, lengths=(4, 13), skew=None)`: the random SequenceData.
- `kd_problem(mode, seed=0, *, n_users, n_items, s_len, ...)`: a KDProblem (see below).
- `prob`: a module's problem for each context mode ("all", "last"), module scoped; the module
  says how to build it with a `make_prob(mode, seed=0)` fixture of its own (its sizes, seeds).

Test modules take these as fixtures; none imports another test file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rcekd_core.data.interactions import Interactions
from rcekd_core.data.sequences import SequenceData
from rcekd_core.kd.base import KDSetup
from rcekd_core.kd.contexts import KDContexts
from rcekd_core.kd.teacher_view import TeacherView
from rcekd_core.models.sasrec import SASRec
from rcekd_core.settings import ModelConfig

CPU = torch.device("cpu")


def make_tiny_data(n_users: int, n_items: int, seed: int = 0, lengths: tuple[int, int] = (4, 13),
              skew: float | None = None) -> SequenceData:
    """Each user: a length drawn from `lengths` (numpy integers: high excluded), then that many
    distinct items, uniform, or with `skew` ∝ 1 / rank ** skew over a random popularity order
    (some items then never appear); timestamps in order (leave-one-out splits)."""
    rng = np.random.default_rng(seed)
    pool, p = np.arange(1, n_items + 1), None
    if skew is not None:
        pool = rng.permutation(pool)
        w = 1 / np.arange(1, n_items + 1) ** skew
        p = w / w.sum()
    users, items = [], []
    for u in range(n_users):
        n = int(rng.integers(*lengths))
        users += [u] * n
        items += list(rng.choice(pool, size=n, replace=False, p=p))
    inter = Interactions(np.array(users, dtype=np.int64), np.array(items, dtype=np.int64),
                         np.arange(len(users), dtype=np.float64), n_users, n_items)
    return SequenceData.from_interactions(inter)


def ref_contexts(data: SequenceData, mode: str, max_len: int) -> list[dict]:
    """The contexts by their definition: `last` = after the whole training sequence; `all` =
    every training prefix inside the window whose next item is a training item. Per context:
    user, seq (the user's whole sequence), history (the prefix), next (the item after it),
    window (the training window, left-padded with 0) and col (the prefix's column in it)."""
    out = []
    for u in range(data.n_users):
        seq = data.items[data.offsets[u]: data.offsets[u + 1]].tolist()
        lt = len(seq) - 2
        ends = [lt] if mode == "last" else [e for e in range(1, lt) if e >= lt - max_len + 1]
        for e in ends:
            window = seq[:lt][-max_len:]
            out.append({"user": u, "seq": seq, "history": seq[:e], "next": seq[e],
                        "window": [0] * (max_len - len(window)) + window, "col": max_len - 1 - (lt - e)})
    return out


class KDProblem:
    """Tiny data of `n_users` x `n_items`, its contexts in `mode` over windows of `s_len`, and
    (unless their dims are None) a teacher SASRec (seeded with `seed`), its TeacherView (chunk 3)
    and a student SASRec (seeded with `student_seed`; None: right after the teacher, or with
    `seed` when there is no teacher).

    Attributes: data, contexts, ctx (ref_contexts), n, teacher, view, student, t_rows (teacher
    score rows), s_states (the student's state per context, by the reference loop), s_rows.
    With `mask_padding` every score row has -inf in column 0 (padding).
    """

    def __init__(self, mode: str, seed: int = 0, *, n_users: int, n_items: int, s_len: int,
                 lengths: tuple[int, int] = (4, 13), skew: float | None = None, teacher_dim: int | None = 12,
                 student_dim: int | None = 4, student_seed: int | None = None, epochs: int = 10,
                 mask_padding: bool = False):
        self.n_items, self.s_len, self.student_dim, self.epochs = n_items, s_len, student_dim, epochs
        self.mask_padding = mask_padding
        self.data = make_tiny_data(n_users, n_items, seed, lengths, skew)
        self.contexts = KDContexts(self.data, mode, s_len)
        self.ctx = ref_contexts(self.data, mode, s_len)
        self.n = len(self.ctx)
        assert self.contexts.n == self.n
        self.teacher = self.view = self.t_rows = None
        self.student = self.s_states = self.s_rows = None
        if teacher_dim is not None:
            self.teacher = self.sasrec(teacher_dim, seed)
        if student_dim is not None:
            self.student = self.sasrec(student_dim, seed if student_seed is None and self.teacher is None
                                       else student_seed)
        if self.teacher is not None:
            self.view = TeacherView(self.teacher, self.contexts, 3, CPU)
            self.t_rows = self.rows_of(self.view.states, self.view.table)
        if self.student is not None:
            self.s_states = self.states_of(self.student)
            self.s_rows = self.rows_of(self.s_states, self.student.item_table())

    def sasrec(self, dim: int, seed: int | None = None) -> SASRec:
        """A SASRec over this problem's items and window, no dropout; seeded first unless seed is None."""
        if seed is not None:
            torch.manual_seed(seed)
        return SASRec(self.n_items, ModelConfig(dim=dim, blocks=1, max_len=self.s_len, dropout=0.0))

    def states_of(self, model) -> torch.Tensor:
        """Each context's state: the model over the context's training window, at its column."""
        model.eval()
        with torch.no_grad():
            return torch.stack([model.encode(torch.tensor([c["window"]]))[0][c["col"]] for c in self.ctx])

    def rows_of(self, states, table) -> list[list[float]]:
        """Score rows [context][item] in float64 Python floats."""
        rows = (states.detach().double() @ table.detach().double().T).tolist()
        if self.mask_padding:
            for r in rows:
                r[0] = float("-inf")
        return rows

    def model_rows(self, model) -> list[list[float]]:
        """A model's score rows over the contexts."""
        return self.rows_of(self.states_of(model), model.item_table())

    @staticmethod
    def top_unseen(row, history, k) -> list[int]:
        """The k best-scored items of a row that are not in `history` (ties: the smaller id first)."""
        cand = sorted(((row[i], i) for i in range(1, len(row)) if i not in history), key=lambda x: -x[0])
        return [i for _, i in cand[:k]]

    def ref_list(self, view, k) -> list[list[int]]:
        """Each context's top-k unseen items under a teacher view."""
        rows = self.rows_of(view.states, view.table)
        return [self.top_unseen(rows[n], c["history"], k) for n, c in enumerate(self.ctx)]

    def setup(self, seed: int = 0, *, teacher=None, epochs: int | None = None, chunk: int = 3,
              student_dim: int | None = None, trajectory=None) -> KDSetup:
        """What a distiller gets besides its settings: the view (or `teacher`), chunk 3 by default."""
        return KDSetup(teacher=self.view if teacher is None else teacher, contexts=self.contexts, device=CPU,
                       seed=seed, chunk=chunk, epochs=self.epochs if epochs is None else epochs,
                       student_dim=self.student_dim if student_dim is None else student_dim, trajectory=trajectory)


@pytest.fixture(scope="session")
def tiny_data():
    """tiny_data(n_users, n_items, seed=0, lengths=(4, 13), skew=None) -> SequenceData."""
    return make_tiny_data


@pytest.fixture(scope="session")
def kd_problem() -> type[KDProblem]:
    """KDProblem(mode, seed=0, *, n_users, n_items, s_len, ...): a problem to check a distiller on."""
    return KDProblem


@pytest.fixture(scope="module", params=["all", "last"])
def prob(request, make_prob):
    """The module's problem in each context mode, built once per module by its `make_prob`."""
    return make_prob(request.param)
