"""preprocess: duplicates, stable chronological order, iterative k-core, re-indexing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rcekd_core.data.preprocess import kcore_mask, preprocess
from rcekd_core.errors import DataError


def raw(rows):
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"]).astype(
        {"user": str, "item": str, "timestamp": "float64"}
    )


def triples(data, users=None, items=None):
    """(raw user, raw item, timestamp) in the output order, mapping codes back via id lists."""
    return [
        (users[u] if users else int(u), items[i - 1] if items else int(i), float(t))
        for u, i, t in zip(data.user, data.item, data.timestamp)
    ]


def test_every_row_is_an_interaction_and_dtypes():
    data = preprocess(raw([("1", "1", 1), ("1", "2", 2), ("2", "1", 3)]), 0)
    assert len(data) == 3 and data.n_users == 2 and data.n_items == 2
    assert data.user.dtype == np.int64 and data.item.dtype == np.int64
    assert data.timestamp.dtype == np.float64
    assert data.item.min() == 1  # 0 is padding


def test_duplicates_keep_earliest():
    data = preprocess(raw([("u", "a", 5), ("u", "b", 4), ("u", "a", 3), ("u", "a", 9)]), 0)
    assert triples(data, ["u"], ["a", "b"]) == [("u", "a", 3.0), ("u", "b", 4.0)]


def test_duplicates_with_equal_times_keep_first_in_file():
    df = raw([("u", "a", 1), ("u", "b", 1), ("u", "a", 1)])
    data = preprocess(df, 0)
    assert triples(data, ["u"], ["a", "b"]) == [("u", "a", 1.0), ("u", "b", 1.0)]


def test_chronological_with_stable_tie_break():
    df = raw([("u", "c", 2), ("v", "a", 1), ("u", "z", 1), ("u", "a", 1), ("u", "m", 1), ("v", "b", 0)])
    data = preprocess(df, 0)
    items = ["a", "b", "c", "m", "z"]
    assert triples(data, ["u", "v"], items) == [
        ("u", "z", 1.0), ("u", "a", 1.0), ("u", "m", 1.0), ("u", "c", 2.0),  # ties: file order
        ("v", "b", 0.0), ("v", "a", 1.0),
    ]
    assert np.all(np.diff(data.user) >= 0)


def test_reindex_numeric_ids_sort_numerically():
    data = preprocess(raw([("10", "20", 1), ("2", "3", 1), ("2", "100", 2)]), 0)
    # users: 2 -> 0, 10 -> 1; items: 3 -> 1, 20 -> 2, 100 -> 3
    assert list(zip(data.user.tolist(), data.item.tolist())) == [(0, 1), (0, 3), (1, 2)]


def test_reindex_string_ids_sort_as_strings():
    data = preprocess(raw([("b", "y", 1), ("a", "x", 1), ("b", "07", 2), ("a", "7", 3)]), 0)
    # "07" and "7" are different ids, so string order: "07" < "7" < "x" < "y"
    assert list(zip(data.user.tolist(), data.item.tolist())) == [(0, 3), (0, 2), (1, 4), (1, 1)]
    assert data.n_items == 4


def test_kcore_needs_several_rounds():
    rows = [
        ("A", "x", 1), ("A", "y", 2),
        ("B", "x", 1), ("B", "y", 2),
        ("C", "x", 1), ("C", "z", 2),
        ("D", "z", 1),
    ]
    # Round 1 drops D (1 interaction); then z has 1 user, so (C, z) goes; then C has 1 and goes.
    one_round = raw(rows)
    u, i = pd.factorize(one_round.user)[0], pd.factorize(one_round.item)[0]
    ok = (np.bincount(u)[u] >= 2) & (np.bincount(i)[i] >= 2)
    assert ok.sum() == 6  # a single round would keep C's two rows
    data = preprocess(one_round, 2)
    assert sorted(triples(data, ["A", "B"], ["x", "y"])) == [
        ("A", "x", 1.0), ("A", "y", 2.0), ("B", "x", 1.0), ("B", "y", 2.0)
    ]
    assert (data.n_users, data.n_items) == (2, 2)


def test_kcore_counts_after_dedup():
    df = raw([("A", "x", 1), ("A", "x", 2), ("B", "x", 1), ("B", "y", 2), ("A", "y", 3)])
    assert len(preprocess(df, 2)) == 4
    with pytest.raises(DataError):
        preprocess(raw([("A", "x", 1), ("A", "x", 2), ("A", "x", 3)]), 2)


@pytest.mark.parametrize("k", [0, 1])
def test_kcore_zero_or_one_keeps_all(k):
    df = raw([("A", "x", 1), ("B", "y", 1), ("C", "z", 1)])
    assert len(preprocess(df, k)) == 3


def naive_kcore(pairs, k):
    pairs = set(pairs)
    while True:
        uc, ic = {}, {}
        for u, i in pairs:
            uc[u] = uc.get(u, 0) + 1
            ic[i] = ic.get(i, 0) + 1
        kept = {(u, i) for u, i in pairs if uc[u] >= k and ic[i] >= k}
        if kept == pairs:
            return kept
        pairs = kept


@pytest.mark.parametrize("seed", range(5))
def test_kcore_matches_naive_fixed_point(seed):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 40, 400)
    i = rng.integers(0, 60, 400)
    pairs = sorted(set(zip(u.tolist(), i.tolist())))
    uu = np.array([p[0] for p in pairs])
    ii = np.array([p[1] for p in pairs])
    mask = kcore_mask(uu, ii, 4)
    assert set(zip(uu[mask].tolist(), ii[mask].tolist())) == naive_kcore(pairs, 4)


def test_nothing_left_suggests_lower_kcore():
    df = raw([("A", "x", 1), ("B", "y", 1)])
    with pytest.raises(DataError) as e:
        preprocess(df, 5)
    msg = str(e.value)
    assert "no interactions left after 5-core" in msg and "data.kcore" in msg and "\n" not in msg


def test_empty_frame():
    with pytest.raises(DataError):
        preprocess(raw([]), 0)


def test_deterministic():
    rng = np.random.default_rng(0)
    df = raw([(str(a), str(b), float(t)) for a, b, t in zip(rng.integers(0, 30, 300), rng.integers(0, 50, 300), rng.integers(0, 5, 300))])
    a, b = preprocess(df, 2), preprocess(df.copy(), 2)
    for f in ("user", "item", "timestamp"):
        assert np.array_equal(getattr(a, f), getattr(b, f))


def test_duplicates_keep_latest_when_asked():
    rows = [("u", "a", 5), ("u", "b", 4), ("u", "a", 3), ("u", "a", 9), ("u", "b", 4)]
    data = preprocess(raw(rows), 0, repeats="latest")
    assert triples(data, ["u"], ["a", "b"]) == [("u", "b", 4.0), ("u", "a", 9.0)]
    with pytest.raises(ValueError):
        preprocess(raw(rows), 0, repeats="middle")


def test_kcore_on_users_only():
    # u1 has 3 items, u2 has 2; item c has one user: it stays when items are not filtered
    rows = [("u1", "a", 1), ("u1", "b", 2), ("u1", "c", 3), ("u2", "a", 1), ("u2", "b", 2)]
    users_only = preprocess(raw(rows), 3, item_kcore=0)
    assert (users_only.n_users, users_only.n_items, len(users_only)) == (1, 3, 3)
    assert kcore_mask(np.array([0, 0, 1]), np.array([0, 1, 1]), 2, 0).tolist() == [True, True, False]
    assert kcore_mask(np.array([0, 0, 1]), np.array([0, 1, 1]), 0, 2).tolist() == [False, True, True]
    with pytest.raises(DataError):  # both sides: the 3-core is empty
        preprocess(raw(rows), 3)
