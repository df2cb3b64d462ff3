"""The frozen teacher, computed once per run: context states, item table, top-K lists.

Teacher scores for any item set then cost a gather and a dot product. Its passes over every
context (top lists, list scores) hold at most `budget` bytes of per-context rows at once.
"""

from __future__ import annotations

import torch

from ..memory import DEFAULT_BUDGET, FLOAT, rows_within
from ..topk import SELECT_BYTES, top_k
from .common import masked_rows
from .contexts import KDContexts, context_states, mask_history_


def gather_row_bytes(width: int, dim: int) -> int:
    """Per-context bytes of scoring `width` items by gathering their vectors: the gathered
    [width, dim] item vectors, the context's state and the width scores."""
    return FLOAT * (width * dim + dim + width)


class TeacherView:
    def __init__(self, teacher, contexts: KDContexts, chunk: int, device: torch.device,
                 budget: int = DEFAULT_BUDGET):
        with torch.no_grad():
            self.table = teacher.item_table().detach().to(device)
            parts = [s for _, s in context_states(teacher, contexts, chunk, device)]
        self.states = torch.cat(parts)
        self.chunk = chunk
        self.budget = budget
        self.contexts = contexts
        self._topk: dict[int, torch.Tensor] = {}
        self._topk_masked: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def scores(self, ids: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nd,nkd->nk", self.states[ids], self.table[items])

    def _chunks(self, row_bytes: int) -> tuple[torch.Tensor, ...]:
        """Every context id, in chunks of as many contexts as the budget holds (at most `chunk`)."""
        ids = torch.arange(self.states.size(0), device=self.states.device)
        return ids.split(rows_within(self.budget, row_bytes, cap=self.chunk))

    def _score_row_bytes(self) -> int:
        """Per-context bytes of score_all: the score row and the gathered state (and top_k's
        temporary when the row is selected from: counted always, a list pass holds less)."""
        return (FLOAT + SELECT_BYTES) * self.table.size(0) + FLOAT * self.table.size(1)

    def scores_of_lists(self, lists: list[torch.Tensor]) -> list[torch.Tensor]:
        """Teacher scores of several [n_ctx, k] item lists for every context, chunked."""
        out: list[list[torch.Tensor]] = [[] for _ in lists]
        for ids in self._chunks(self.list_row_bytes([x.size(1) for x in lists])):
            for o, s in zip(out, self.chunk_list_scores(ids, [x[ids] for x in lists])):
                o.append(s)
        return [torch.cat(o) for o in out]

    def _scores_whole_rows(self, width: int) -> bool:
        """With a small catalogue one matmul per chunk plus gathers beats gathering `width`
        item vectors per context; with a large one, gathering is cheaper."""
        return self.table.size(0) <= 32 * width  # measured: BLAS + gather wins by ~4x at 600 items, width 40

    def list_row_bytes(self, widths: list[int]) -> int:
        """Per-context bytes `chunk_list_scores` holds for lists of these widths."""
        if self._scores_whole_rows(sum(widths)):
            return self._score_row_bytes()
        return gather_row_bytes(max(widths), self.table.size(1))

    def chunk_list_scores(self, ids: torch.Tensor, lists: list[torch.Tensor]) -> list[torch.Tensor]:
        """Teacher scores of [len(ids), k] item lists at contexts `ids` (one chunk; its score
        rows are freed on return, before the next chunk's)."""
        if self._scores_whole_rows(sum(x.size(1) for x in lists)):
            scores = self.states[ids] @ self.table.T
            return [scores.gather(1, x) for x in lists]
        return [self.scores(ids, x) for x in lists]

    def score_all(self, ids: torch.Tensor) -> torch.Tensor:
        s = self.states[ids] @ self.table.T
        s[:, 0] = float("-inf")
        return s

    @torch.no_grad()
    def topk(self, k: int) -> torch.Tensor:
        """Teacher top-k per context; like the authors, training items are not excluded."""
        if k not in self._topk:
            self._topk[k] = torch.cat(
                [top_k(self.score_all(c), k, inplace=True).indices for c in self._chunks(self._score_row_bytes())]
            )
        return self._topk[k]

    @torch.no_grad()
    def topk_masked(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher top-k per context with its history masked ("train items masked" of the baselines).

        The history is the context's exact prefix (mode `all`: the items up to that position;
        mode `last`: the whole training sequence). Returns (items [n, k], valid [n, k]); `valid`
        is False only where a context has fewer than k unseen items (those slots hold junk).
        """
        if k not in self._topk_masked:
            items, valid = [], []
            rows = masked_rows(self.contexts, self.table.size(0) - 1, self.budget, self.chunk,
                               extra=FLOAT * self.table.size(1) + SELECT_BYTES * self.table.size(0))
            ids = torch.arange(self.states.size(0), device=self.states.device)
            for c in ids.split(rows):
                top = top_k(mask_history_(self.score_all(c), self.contexts, c), k, inplace=True)
                items.append(top.indices)
                valid.append(torch.isfinite(top.values))
            self._topk_masked[k] = (torch.cat(items), torch.cat(valid))
        return self._topk_masked[k]
