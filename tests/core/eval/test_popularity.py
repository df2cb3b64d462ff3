"""The popularity reference: scores count training items; its metrics are sane."""

from __future__ import annotations

import torch

from rcekd_core.eval.popularity import evaluate_popularity, popularity_scores


def test_popularity_scores_count_training_items(demo_sequences):
    demo = demo_sequences
    scores = popularity_scores(demo)
    want = torch.zeros(demo.n_items + 1)
    for u in range(demo.n_users):
        s = int(demo.offsets[u])
        for i in demo.items[s: s + int(demo.train_lengths[u])]:
            want[i] += 1
    assert torch.isneginf(scores[0])
    torch.testing.assert_close(scores[1:].float(), want[1:])
    m = evaluate_popularity(demo, "valid", [10, 20])
    assert 0 < m["NDCG@10"] < m["NDCG@20"] and 0 < m["Recall@10"] <= m["Recall@20"] <= 1
