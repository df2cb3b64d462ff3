"""The demo generator: deterministic, and sequential in the way its docstring promises."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rcekd_core.config import DataConfig
from rcekd_core.data.synthetic import generate

CFG = DataConfig(n_users=300, n_items=120, n_clusters=6, mean_len=20)


def test_same_settings_give_the_same_log():
    pd.testing.assert_frame_equal(generate(CFG), generate(CFG))


def test_columns_and_sizes():
    df = generate(CFG)
    assert list(df.columns) == ["user", "item", "timestamp"]
    assert df["user"].nunique() == CFG.n_users
    assert df["item"].astype(int).between(0, CFG.n_items - 1).all()
    assert df.groupby("user").size().min() >= 5


def test_next_item_follows_the_cluster_far_more_often_than_chance():
    df = generate(CFG)
    size = CFG.n_items // CFG.n_clusters
    items = df["item"].astype(int).to_numpy()
    users = df["user"].to_numpy()
    same_user = users[1:] == users[:-1]
    same_cluster = (items[1:] // size) == (items[:-1] // size)
    rate = same_cluster[same_user].mean()
    assert rate > 2 / CFG.n_clusters  # chance would be about 1 / n_clusters (here 0.49 vs 0.17)


def test_popularity_is_skewed():
    counts = np.sort(generate(CFG)["item"].value_counts().to_numpy())[::-1]
    top = counts[: len(counts) // 10].sum() / counts.sum()
    assert top > 0.2  # the top 10 % of items take well over 10 % of the events
