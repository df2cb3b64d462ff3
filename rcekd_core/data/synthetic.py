"""The embedded `demo` dataset: a deterministic synthetic log with real sequential structure.

Items live in latent interest clusters with Zipf popularity inside each cluster. A user
keeps a personal taste over clusters and moves between clusters by a sparse Markov chain
whose next step depends on the last two clusters (so one attention hop is not enough);
inside a cluster, the next item tends to follow the previous one along the cluster's
"catalogue order" (series, sequels). Some events are uniform noise. Everything is drawn
from one seeded generator, vectorised over users; the only loop is over time steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..settings import DataConfig

GENERATOR_VERSION = 1


def _zipf(n: int, a: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** a
    return w / w.sum()


def _sample_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of `probs` (rows sum to 1), vectorised."""
    u = rng.random((probs.shape[0], 1))
    idx = (probs.cumsum(axis=1) < u).sum(axis=1)
    return np.minimum(idx, probs.shape[1] - 1)


def generate(cfg: DataConfig, seed: int = 20250925) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_users, n_items, n_clusters = cfg.n_users, cfg.n_items, cfg.n_clusters
    size = n_items // n_clusters
    if size < 2:
        from ..errors import ConfigError

        raise ConfigError(
            "demo needs at least 2 items per cluster; raise data.n_items or lower data.n_clusters"
        )

    # item i sits at slot i % size of cluster i // size (leftover items are pure noise items)
    within = _zipf(size, 0.8)
    cluster_pop = _zipf(n_clusters, 0.6)
    # second-order chain: (previous cluster, current cluster) -> 3 likely next clusters
    next_table = rng.integers(0, n_clusters, size=(n_clusters, n_clusters, 3))
    next_weights = np.array([0.6, 0.3, 0.1])

    taste = rng.dirichlet(np.full(n_clusters, 0.3), size=n_users)  # personal cluster taste
    lengths = np.clip(rng.poisson(cfg.mean_len, size=n_users), 5, None)
    steps = int(lengths.max())

    cur = _sample_rows(rng, np.tile(cluster_pop, (n_users, 1)) * 0.5 + taste * 0.5)
    prev = cur.copy()
    slot = _sample_rows(rng, np.tile(within, (n_users, 1)))
    events = np.empty((n_users, steps), dtype=np.int64)
    users = np.arange(n_users)
    for t in range(steps):
        # cluster move: stay, follow the chain, or jump by taste
        r = rng.random(n_users)
        chain_next = next_table[prev, cur, _sample_rows(rng, np.tile(next_weights, (n_users, 1)))]
        taste_next = _sample_rows(rng, taste)
        new = np.where(r < 0.45, cur, np.where(r < 0.85, chain_next, taste_next))
        moved = new != cur
        prev = np.where(moved, cur, prev)
        cur = new
        # item move: continue the series inside the cluster, or pick by popularity
        series = rng.random(n_users) < 0.6
        step = rng.integers(1, 3, size=n_users)
        pop_slot = _sample_rows(rng, np.tile(within, (n_users, 1)))
        slot = np.where(moved | ~series, pop_slot, (slot + step) % size)
        item = cur * size + slot
        noise = rng.random(n_users) < cfg.noise
        item = np.where(noise, rng.integers(0, n_items, size=n_users), item)
        events[:, t] = item

    keep = np.arange(steps)[None, :] < lengths[:, None]
    uu = np.broadcast_to(users[:, None], events.shape)[keep]
    tt = np.broadcast_to(np.arange(steps)[None, :], events.shape)[keep]
    return pd.DataFrame(
        {
            "user": uu.astype(str),
            "item": events[keep].astype(str),
            "timestamp": (tt + 1_600_000_000).astype(np.float64),
        }
    )
