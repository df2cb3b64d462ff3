"""Interactions: the preprocessed, re-indexed, chronologically sorted event log of a dataset."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass
class Interactions:
    """Implicit feedback sorted by (user, time); users 0..n_users-1, items 1..n_items (0 pads)."""

    user: np.ndarray  # int64, non-decreasing
    item: np.ndarray  # int64 in 1..n_items
    timestamp: np.ndarray  # float64, non-decreasing within a user
    n_users: int
    n_items: int

    def __len__(self) -> int:
        return len(self.user)

    def lengths(self) -> np.ndarray:
        return np.bincount(self.user, minlength=self.n_users)

    def stats(self) -> dict[str, float]:
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(self),
            "mean_length": float(len(self) / max(self.n_users, 1)),
        }

    def fingerprint(self) -> str:
        """A hash of the content itself (not of where it came from): a rewritten data file with
        other interactions gets another fingerprint, a moved one keeps it."""
        h = hashlib.sha256(f"{self.n_users},{self.n_items},{len(self)}".encode())
        for a in (self.user, self.item, self.timestamp):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()
