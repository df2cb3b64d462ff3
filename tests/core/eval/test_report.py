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
    assert s.loc["kd", "seeds"] == 3 and math.isnan(s.loc["teacher", "NDCG@10 std"])  # one seed: no spread


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
    sig = significance(results())
    assert set(sig["metric"]) == {"NDCG@10"}  # the only headline metric these results have
    sig = sig.set_index("versus")
    assert set(sig.index) == {"scratch", "kd"}
    assert sig.loc["kd", "gain"] == pytest.approx(0.03)
    assert sig.loc["kd", "relative_gain"] == pytest.approx(0.03 / 0.13)
    assert sig.loc["scratch", "paired_seeds"] == 3
    best, gain = best_other_gain(results())
    assert best == "kd" and gain == pytest.approx(0.16 / 0.13 - 1)


def test_significance_has_one_row_per_method_and_headline_metric():
    df = results()
    df["Recall@10"] = df["NDCG@10"] * 2  # rcekd's Recall@10 gain over kd: twice its NDCG@10 gain
    sig = significance(df)
    assert list(sig.columns) == ["method", "versus", "metric", "split", "paired_seeds", "gain",
                                 "relative_gain", "p_value"]
    assert sorted(zip(sig["versus"], sig["metric"])) == [("kd", "NDCG@10"), ("kd", "Recall@10"),
                                                         ("scratch", "NDCG@10"), ("scratch", "Recall@10")]
    by = sig.set_index(["versus", "metric"])
    assert by.loc[("kd", "NDCG@10"), "gain"] == pytest.approx(0.03)
    assert by.loc[("kd", "Recall@10"), "gain"] == pytest.approx(0.06)
    p = paired_t_pvalue([0.15, 0.17, 0.16], [0.12, 0.13, 0.14])
    assert by.loc[("kd", "NDCG@10"), "p_value"] == pytest.approx(p)
    assert by.loc[("kd", "Recall@10"), "p_value"] == pytest.approx(p)  # a scaled difference: the same t
    only = significance(df, metrics=["Recall@10"])
    assert set(only["metric"]) == {"Recall@10"} and len(only) == 2
