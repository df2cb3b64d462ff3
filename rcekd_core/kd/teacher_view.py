"""The frozen teacher, computed once per run: context states, item table, top-K lists.

Teacher scores for any item set then cost a gather and a dot product.
"""

from __future__ import annotations

import torch

from .contexts import KDContexts, context_states, mask_history_


class TeacherView:
    def __init__(self, teacher, contexts: KDContexts, chunk: int, device: torch.device):
        with torch.no_grad():
            self.table = teacher.item_table().detach().to(device)
            parts = [s for _, s in context_states(teacher, contexts, chunk, device)]
        self.states = torch.cat(parts)
        self.chunk = chunk
        self.contexts = contexts
        self._topk: dict[int, torch.Tensor] = {}
        self._topk_masked: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def scores(self, ids: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nd,nkd->nk", self.states[ids], self.table[items])

    def scores_of_lists(self, lists: list[torch.Tensor]) -> list[torch.Tensor]:
        """Teacher scores of several [n_ctx, k] item lists for every context, chunked.

        With a small catalogue one matmul per chunk plus gathers beats gathering k item
        vectors per context; with a large one, gathering is cheaper.
        """
        n = self.states.size(0)
        width = sum(x.size(1) for x in lists)
        full = self.table.size(0) <= 32 * width  # measured: BLAS + gather wins by ~4x at 600 items, width 40
        step = max(256, (1 << 22) // (self.table.size(0) if full else width * self.table.size(1)))
        out: list[list[torch.Tensor]] = [[] for _ in lists]
        for s in range(0, n, step):
            ids = torch.arange(s, min(s + step, n), device=self.states.device)
            if full:
                scores = self.states[ids] @ self.table.T
                for o, x in zip(out, lists):
                    o.append(scores.gather(1, x[ids]))
            else:
                for o, x in zip(out, lists):
                    o.append(self.scores(ids, x[ids]))
        return [torch.cat(o) for o in out]

    def score_all(self, ids: torch.Tensor) -> torch.Tensor:
        s = self.states[ids] @ self.table.T
        s[:, 0] = float("-inf")
        return s

    @torch.no_grad()
    def topk(self, k: int) -> torch.Tensor:
        """Teacher top-k per context; like the authors, training items are not excluded."""
        if k not in self._topk:
            ids = torch.arange(self.states.size(0), device=self.states.device)
            self._topk[k] = torch.cat(
                [self.score_all(c).topk(k, dim=1).indices for c in ids.split(self.chunk)]
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
            ids = torch.arange(self.states.size(0), device=self.states.device)
            for c in ids.split(self.chunk):
                top = mask_history_(self.score_all(c), self.contexts, c).topk(k, dim=1)
                items.append(top.indices)
                valid.append(torch.isfinite(top.values))
            self._topk_masked[k] = (torch.cat(items), torch.cat(valid))
        return self._topk_masked[k]
