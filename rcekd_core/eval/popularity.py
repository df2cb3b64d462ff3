"""Popularity baseline: rank items by their count in the training part of every sequence.

Evaluated through `ranking.evaluate`, so the masking rule (whole history -inf) and the
pessimistic tie rule are exactly those of the models; counts come from training items only
(validation and test targets are never counted), for both splits.
"""

from __future__ import annotations

import torch

from ..data.sequences import SequenceData
from ..memory import DEFAULT_BUDGET
from ..models.base import SequentialRecommender
from .ranking import evaluate


def popularity_scores(data: SequenceData) -> torch.Tensor:
    """[n_items + 1] training counts as float scores; column 0 (padding) is -inf."""
    scores = data.train_item_counts().double()
    scores[0] = float("-inf")
    return scores


class Popularity(SequentialRecommender):
    """The same score row for every context, shaped as a model so `evaluate` can rank it."""

    def __init__(self, data: SequenceData, max_len: int = 1):
        super().__init__()
        self.n_items = data.n_items
        self.max_len = max_len
        self.loss_type = "none"
        self.register_buffer("scores", popularity_scores(data))

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        return seqs.new_zeros(*seqs.shape, 1, dtype=self.scores.dtype)

    def split_states(self, data, split: str, users: torch.Tensor, device: torch.device) -> torch.Tensor:
        return torch.zeros(len(users), 1, dtype=self.scores.dtype, device=device)

    def score_all(self, states: torch.Tensor) -> torch.Tensor:
        return self.scores.expand(states.size(0), -1).clone()


def evaluate_popularity(
    data: SequenceData, split: str, ks: list[int], mask_history: bool = True, chunk: int = 1024,
    budget: int = DEFAULT_BUDGET,
) -> dict[str, float]:
    """Popularity's metrics; its float64 score rows count 8 bytes per item in the budget."""
    model = Popularity(data)
    return evaluate(model, data, split, ks, chunk, mask_history, device=torch.device("cpu"), budget=budget).metrics
