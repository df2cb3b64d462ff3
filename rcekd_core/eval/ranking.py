"""Full-ranking evaluation over all items, chunked over users within a memory budget.

Masking rule (the same for every model): items the user interacted with before the split
(the whole history, not only the model's window; under `ratio` the training items for
validation, training + validation items for test) are set to -inf. Ties are pessimistic: a
target's rank counts every other item scoring >= it. `loo` has one target per user; `ratio`
several (metrics_from_target_ranks).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..data.sequences import SequenceData
from ..distributed import shard_chunks
from ..errors import Diverged
from ..memory import BOOL, DEFAULT_BUDGET, FLOAT, HISTORY, INDEX, rows_within
from ..models.base import Recommender
from ..topk import SELECT_BYTES, top_k
from .metrics import metrics_from_ranks, metrics_from_target_ranks

MASKING_RULE = "history"  # written into every result row


@dataclass
class RankingOutput:
    metrics: dict[str, float]
    topk: torch.Tensor  # [n_users, k] the model's top items per context (for overlap)


def masked_scores(
    model: Recommender, data: SequenceData, split: str, users: torch.Tensor,
    mask_history: bool, device: torch.device,
) -> torch.Tensor:
    scores = model.score_all(model.split_states(data, split, users, device))
    if mask_history:
        hist = data.history(split, users).to(device)
        scores.scatter_(1, hist, float("-inf"))  # column 0 (padding) is -inf already
    return scores


def user_chunks(n_users: int, chunk: int) -> Iterator[torch.Tensor]:
    for start in range(0, n_users, chunk):
        yield torch.arange(start, min(start + chunk, n_users))


def target_ranks(scores: torch.Tensor, targets: torch.Tensor, cap: int) -> torch.Tensor:
    """0-based pessimistic rank of each target, exact below `cap`, else `cap`: [B, n], [B, T] -> [B, T].

    rank = #items scoring >= the target, minus itself. Metrics at K ≤ cap only ask whether a
    rank is below K, so the top cap + 1 scores decide it (a top-k, not a sort of the row): if
    c ≤ cap of them are >= the target, every other item scores below it and the rank is c - 1;
    if all cap + 1 are, the rank is at least cap.
    """
    t_score = scores.gather(1, targets)
    top = top_k(scores, min(cap + 1, scores.size(1))).values
    return (top.unsqueeze(1) >= t_score.unsqueeze(2)).sum(2) - 1


def score_bytes(model: Recommender) -> int:
    """Bytes of one score: the widest floating dtype among the model's tensors (float64 for
    popularity counts), float32 for a model without any."""
    sizes = [t.element_size() for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    return max(sizes, default=4)


def eval_row_bytes(model: Recommender, data: SequenceData, split: str, cap: int, topk: int,
                   mask_history: bool = True) -> int:
    """What evaluating one user holds at once: the score row, its history row (masking), and
    with one target the bool row of items scoring >= it; with several the top cap + 1 scores
    and the targets x (cap + 1) comparison; the top-k list's values and ids; top_k's
    temporaries (a key row, and under several targets the copy it keys)."""
    users = torch.arange(data.n_users)
    longest = int(data.context_end(split, users).max()) if data.n_users and mask_history else 0
    width = data.n_items + 1
    row = score_bytes(model) * width + HISTORY * longest + (score_bytes(model) + INDEX) * topk
    if not data.multi_target:
        return row + max(BOOL, SELECT_BYTES) * width  # the >= mask is freed before the top-k
    n_targets = int((data.n_test if split == "test" else data.n_valid).max()) if data.n_users else 0
    return (row + (score_bytes(model) + INDEX) * (cap + 1) + BOOL * n_targets * (cap + 1)
            + (FLOAT + SELECT_BYTES) * width)


def rank_chunk(model: Recommender, data: SequenceData, split: str, users: torch.Tensor, cap: int,
               mask_history: bool, topk: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ranks, top-k ids) of one chunk of users; its scores are freed on return, before the
    next chunk's (so a pass holds one chunk's rows)."""
    scores = masked_scores(model, data, split, users, mask_history, device)
    if not scores.amax() < float("inf"):  # one reduction: NaN (it propagates) or +inf
        # a diverged model: ranks of NaN scores would read as perfect metrics
        raise Diverged(f"non-finite scores on the {split} split")
    target = data.targets(split, users).to(device)
    if data.multi_target:
        ranks = target_ranks(scores, target, cap).masked_fill(target == 0, -1)  # -1: padding
    else:
        t_score = scores.gather(1, target.unsqueeze(1))
        ranks = (scores >= t_score).sum(1) - 1
    # its own top-k, not a prefix of target_ranks' top cap + 1: topk orders tied scores
    # differently for another k, so a prefix could list other tied items (another overlap)
    return ranks.cpu(), top_k(scores, topk, inplace=True).indices.cpu()


@torch.no_grad()
def evaluate(
    model: Recommender, data: SequenceData, split: str, ks: list[int],
    chunk: int = 1024, mask_history: bool = True, topk: int = 10,
    device: torch.device | None = None, budget: int = DEFAULT_BUDGET,
) -> RankingOutput:
    """Metrics of `split` at the cut-offs `ks` and every user's top-`topk` list; users are
    scored `chunk` at a time at most, fewer where `budget` (bytes) holds fewer rows."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    ranks, tops = [], []
    width = 1
    cap = max(ks)
    rows = rows_within(budget, eval_row_bytes(model, data, split, cap, topk, mask_history), cap=chunk)
    shard = shard_chunks()  # torchrun: this rank's chunks of users, all gathered below (distributed.py)
    with shard.group.failing_together():  # torchrun: a rank's failure (non-finite scores, out of memory) stops all
        for users in shard.take(user_chunks(data.n_users, rows)):
            r, top = rank_chunk(model, data, split, users, cap, mask_history, topk, device)
            if data.multi_target:
                width = max(width, r.size(1))
            ranks.append(r)
            tops.append(top)
    model.train(was_training)
    ranks, tops = shard.gather(ranks), shard.gather(tops)  # every rank's chunks, in order
    width = max([width] + [r.size(1) for r in ranks if r.dim() == 2])
    if data.multi_target:
        padded = torch.cat([torch.nn.functional.pad(r, (0, width - r.size(1)), value=-1) for r in ranks])
        metrics = metrics_from_target_ranks(padded, ks)
    else:
        metrics = metrics_from_ranks(torch.cat(ranks), ks)
    return RankingOutput(metrics, torch.cat(tops))
