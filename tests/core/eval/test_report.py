"""Paper tables: mean ± std per method, gains and paired t-tests, checked by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rcekd_core.report import best_other_gain, paired_t_pvalue, significance, summarize


def results() -> pd.DataFrame:
    rows = [{"model": "teacher", "method": "teacher", "seed": 0, "split": "test", "NDCG@10": 0.30}]
    rows.append({"model": "popularity", "method": "popularity", "seed": None, "split": "test", "NDCG@10": 0.05})
    for seed, (s, k, r) in enumerate([(0.10, 0.12, 0.15), (0.12, 0.13, 0.17), (0.11, 0.14, 0.16)]):
        for method, v in (("scratch", s), ("kd", k), ("rcekd", r)):
            rows.append({"model": "student", "method": method, "seed": seed, "split": "test", "NDCG@10": v})
            rows.append({"model": "student", "method": method, "seed": seed, "split": "valid", "NDCG@10": 1.0})
    return pd.DataFrame(rows)


def test_summary_means_stds_and_order():
    s = summarize(results(), "test", ["NDCG@10"]).set_index("method")
    assert list(s.index) == ["teacher", "popularity", "scratch", "kd", "rcekd"]
    assert s.loc["rcekd", "NDCG@10 mean"] == pytest.approx(0.16)
    assert s.loc["rcekd", "NDCG@10 std"] == pytest.approx(0.01)  # sample std of .15 .17 .16
    assert s.loc["kd", "seeds"] == 3 and s.loc["teacher", "NDCG@10 std"] == 0.0


def test_paired_t_test_by_hand():
    a, b = [0.15, 0.17, 0.16], [0.12, 0.13, 0.14]
    d = [x - y for x, y in zip(a, b)]  # .03 .04 .02: mean .03, sd .01, t = .03 / (.01 / sqrt 3)
    t = 0.03 / (0.01 / math.sqrt(3))
    from scipy import stats

    assert paired_t_pvalue(a, b) == pytest.approx(2 * stats.t.sf(t, df=2), rel=1e-6)
    assert math.isnan(paired_t_pvalue([0.1], [0.2]))
    assert paired_t_pvalue([0.2, 0.3], [0.1, 0.2]) == 0.0  # a constant non-zero difference
    assert sum(d) / 3 == pytest.approx(0.03)


def test_significance_and_gain_against_the_best_other_method():
    sig = significance(results()).set_index("versus")
    assert set(sig.index) == {"scratch", "kd"}
    assert sig.loc["kd", "gain"] == pytest.approx(0.03)
    assert sig.loc["kd", "relative_gain"] == pytest.approx(0.03 / 0.13)
    assert sig.loc["scratch", "paired_seeds"] == 3
    best, gain = best_other_gain(results())
    assert best == "kd" and gain == pytest.approx(0.16 / 0.13 - 1)
