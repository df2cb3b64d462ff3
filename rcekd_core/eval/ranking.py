"""Full-ranking evaluation over all items, chunked over users (memory O(chunk x items)).

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
from ..errors import Diverged
from ..models.base import Recommender
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
    top = scores.topk(min(cap + 1, scores.size(1)), dim=1).values
    t_score = scores.gather(1, targets)
    return (top.unsqueeze(1) >= t_score.unsqueeze(2)).sum(2) - 1


@torch.no_grad()
def evaluate(
    model: Recommender, data: SequenceData, split: str, ks: list[int],
    chunk: int = 1024, mask_history: bool = True, topk: int = 10,
    device: torch.device | None = None,
) -> RankingOutput:
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    ranks, tops = [], []
    width = 1
    for users in user_chunks(data.n_users, chunk):
        scores = masked_scores(model, data, split, users, mask_history, device)
        if not scores.amax() < float("inf"):  # one reduction: NaN (it propagates) or +inf
            # a diverged model: ranks of NaN scores would read as perfect metrics
            raise Diverged(f"non-finite scores on the {split} split")
        target = data.targets(split, users).to(device)
        if data.multi_target:
            r = target_ranks(scores, target, max(ks)).masked_fill(target == 0, -1).cpu()  # -1: padding
            width = max(width, r.size(1))
            ranks.append(r)
        else:
            t_score = scores.gather(1, target.unsqueeze(1))
            ranks.append(((scores >= t_score).sum(1) - 1).cpu())
        tops.append(scores.topk(topk, dim=1).indices.cpu())
    model.train(was_training)
    if data.multi_target:
        padded = torch.cat([torch.nn.functional.pad(r, (0, width - r.size(1)), value=-1) for r in ranks])
        metrics = metrics_from_target_ranks(padded, ks)
    else:
        metrics = metrics_from_ranks(torch.cat(ranks), ks)
    return RankingOutput(metrics, torch.cat(tops))
