"""Raw frame -> Interactions: deduplicate, k-core, re-index, sort chronologically.

Rules (all deterministic, so a given raw file always yields the same arrays):

* Implicit feedback: every row is an interaction, whatever its rating.
* Order: rows are sorted by (user, timestamp); equal timestamps keep their order in the
  raw file (stable tie-break on the original row number).
* Duplicates: a repeated (user, item) pair keeps only its earliest interaction (smallest
  timestamp, then earliest in the file). Removed before k-core, so repeats do not count.
  A source may keep the latest one instead (repeats="latest": Gowalla, as the authors' data).
* k-core: users and items with fewer than k interactions are dropped, repeatedly, until
  every remaining user and item has at least k (the unique maximal k-core). k <= 1 keeps all.
  A source may filter users only (item_kcore=0: CiteULike's "5-core users"); since the
  duplicates are gone, one pass over the users then reaches the fixed point.
* Re-indexing: users become 0..n_users-1 and items 1..n_items (0 is padding), both in
  sorted order of their raw ids — numerically when every id is an integer (ML: user "1" -> 0,
  "2" -> 1, ...; never "10" before "2"), as strings otherwise (Amazon ids).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from ..errors import DataError
from .interactions import Interactions


def _rank_ids(uniques: pd.Index, codes: np.ndarray) -> np.ndarray:
    """Re-number the surviving ids 0..n-1 in sorted raw-id order (numeric if all integers)."""
    present = np.unique(codes)
    keys = pd.Index(uniques[present], dtype=object)
    if keys.str.fullmatch(r"[+-]?\d{1,18}").all():
        numbers = keys.astype("int64")
        # "7" and "007" are different ids: only use numeric order when it keeps them apart.
        if numbers.nunique() == len(keys):
            keys = numbers
    rank = np.full(len(uniques), -1, dtype=np.int64)
    rank[present[np.argsort(keys.to_numpy(), kind="stable")]] = np.arange(len(present))
    return rank[codes]


def kcore_mask(user: np.ndarray, item: np.ndarray, k: int, item_k: int | None = None) -> np.ndarray:
    """Boolean mask of the rows in the iterative k-core of the (user, item) graph: every user
    keeps >= k rows and every item >= item_k (default: k; 0 or 1: items are not filtered)."""
    item_k = k if item_k is None else item_k
    keep = np.ones(len(user), dtype=bool)
    if k <= 1 and item_k <= 1:
        return keep
    n_u = int(user.max()) + 1 if len(user) else 0
    n_i = int(item.max()) + 1 if len(item) else 0
    while True:  # one pass per peeling round; each round is vectorised
        u, i = user[keep], item[keep]
        ok = (np.bincount(u, minlength=n_u)[u] >= k) & (np.bincount(i, minlength=n_i)[i] >= item_k)
        if ok.all():
            return keep
        keep[np.flatnonzero(keep)[~ok]] = False


def preprocess(
    df: pd.DataFrame,
    kcore: int = 0,
    item_kcore: int | None = None,
    repeats: Literal["earliest", "latest"] = "earliest",
) -> Interactions:
    """Turn a raw (user, item, timestamp) frame into sorted, re-indexed Interactions.

    Duplicates rule: a repeated (user, item) pair keeps only its earliest interaction (its
    latest with repeats="latest"; ties: the later row in the file).
    item_kcore: the items' threshold when it differs from the users' kcore (0: users only).
    See the module docstring for the ordering, k-core and re-indexing rules.
    """
    if len(df) == 0:
        raise DataError("the data set has no interactions; pass a file with at least one row")
    u0, users = pd.factorize(df["user"].astype(str))
    i0, items = pd.factorize(df["item"].astype(str))
    ts = df["timestamp"].to_numpy(dtype="float64")
    row = np.arange(len(df))

    # Chronological per user, ties by file order; then the first (or last) of each (user, item) wins.
    if repeats not in ("earliest", "latest"):
        raise ValueError(f"repeats must be 'earliest' or 'latest', not {repeats!r}")
    order = np.lexsort((row, ts, u0))
    keep = "first" if repeats == "earliest" else "last"
    first = ~pd.DataFrame({"u": u0[order], "i": i0[order]}).duplicated(keep=keep).to_numpy()
    order = order[first]

    order = order[kcore_mask(u0[order], i0[order], kcore, item_kcore)]
    if len(order) == 0:
        raise DataError(
            f"no interactions left after {kcore}-core filtering ({len(df)} rows before); "
            f"lower data.kcore (e.g. --set data.kcore={max(kcore // 2, 0)})"
        )

    user = _rank_ids(users, u0[order])
    item = _rank_ids(items, i0[order]) + 1
    t = ts[order]
    final = np.lexsort((order, t, user))  # order holds original row numbers: file-order ties
    return Interactions(
        user=user[final],
        item=item[final],
        timestamp=t[final],
        n_users=int(user.max()) + 1,
        n_items=int(item.max()),
    )
