"""Paper-ready summaries of results.csv: mean ± std per method, gains, paired t-tests over seeds."""

from __future__ import annotations

import math

import pandas as pd

HEADLINE = ["NDCG@10", "Recall@10", "NDCG@20", "Recall@20"]


def paired_t_pvalue(a: list[float], b: list[float]) -> float:
    """Two-sided paired t-test p-value (seeds are the pairs); NaN with fewer than 2 pairs."""
    if len(a) != len(b) or len(a) < 2:
        return float("nan")
    from scipy import stats

    diff = [x - y for x, y in zip(a, b)]
    if max(diff) - min(diff) <= 1e-12:  # no spread: the t statistic is infinite (or 0/0)
        return 0.0 if abs(diff[0]) > 1e-12 else 1.0
    return float(stats.ttest_rel(a, b).pvalue)


def summarize(results: pd.DataFrame, split: str = "test", metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per method (teacher first): n seeds, mean and std of each metric. With one seed the
    std is NaN (an empty cell in summary.csv): the spread of one number is unknown, not zero."""
    overlaps = [c for c in results.columns if str(c).startswith("overlap@")]
    metrics = [m for m in (metrics or HEADLINE + overlaps) if m in results.columns]
    df = results[results["split"] == split]
    rows = []
    for method, g in df.groupby("method", sort=False):
        row: dict[str, object] = {"method": method, "model": g["model"].iloc[0], "seeds": len(g)}
        for m in metrics:
            vals = g[m].astype(float)
            row[f"{m} mean"] = vals.mean()
            row[f"{m} std"] = vals.std(ddof=1)  # NaN for one value
        rows.append(row)
    out = pd.DataFrame(rows)
    if not out.empty:  # references first: teacher, popularity, then the students
        order = {"teacher": 0, "popularity": 1}
        out = out.sort_values("model", key=lambda m: m.map(lambda x: order.get(x, 2)), kind="stable")
    return out.reset_index(drop=True)


def headline_present(results: pd.DataFrame) -> list[str]:
    """The headline metrics `results` has a value for (a run may measure other cut-offs)."""
    return [m for m in HEADLINE if m in results.columns and results[m].notna().any()]


def significance(results: pd.DataFrame, target: str = "rcekd", split: str = "test",
                 metrics: list[str] | None = None) -> pd.DataFrame:
    """`target` vs every other student method, one row per method × metric (long format; default:
    every headline metric present): mean gain, relative gain, paired t-test p-value."""
    df = results[(results["split"] == split) & (results["model"] == "student")]
    if target not in set(df["method"]):
        return pd.DataFrame()
    metrics = [m for m in metrics if m in df.columns] if metrics else headline_present(df)
    mine = df[df["method"] == target].set_index("seed")
    rows = []
    for method, g in df[df["method"] != target].groupby("method", sort=False):
        other = g.set_index("seed")
        seeds = sorted(set(mine.index) & set(other.index))
        for metric in metrics:
            rows.append(_versus(mine.loc[seeds, metric], other.loc[seeds, metric]) |
                        {"method": target, "versus": method, "metric": metric, "split": split})
    columns = ["method", "versus", "metric", "split", "paired_seeds", "gain", "relative_gain", "p_value"]
    return pd.DataFrame(rows, columns=columns)


def _versus(mine: pd.Series, other: pd.Series) -> dict[str, float]:
    """Gain of one method over another on the seeds both have (the same seeds, in order)."""
    a, b = mine.astype(float).tolist(), other.astype(float).tolist()
    base = sum(b) / len(b) if b else float("nan")
    gain = (sum(a) / len(a) - base) if a else float("nan")
    return {"paired_seeds": len(a), "gain": gain,
            "relative_gain": gain / base if base and not math.isnan(base) else float("nan"),
            "p_value": paired_t_pvalue(a, b)}


def best_other_gain(results: pd.DataFrame, target: str = "rcekd", metric: str = "NDCG@10") -> tuple[str, float] | None:
    """Relative test improvement of `target` over the best other student method (by mean)."""
    s = summarize(results, "test", [metric])
    students = s[s["model"] == "student"].set_index("method")[f"{metric} mean"]
    if target not in students.index or len(students) < 2:
        return None
    others = students.drop(target)
    best = others.idxmax()
    return str(best), float(students[target] / others[best] - 1.0)


def comparable(results: pd.DataFrame, include_diverged: bool = False) -> pd.DataFrame:
    """The rows a comparison may use: fits that finished (and, when asked, diverged ones at their
    best epoch before diverging). Stopped fits trained less and are left out until resumed;
    results written before rows had a status count as finished."""
    if "status" not in results.columns:
        return results
    keep = {"finished", "diverged"} if include_diverged else {"finished"}
    status = results["status"].fillna("finished")
    rows = results[status.isin(keep)]
    metrics = [c for c in rows.columns if "@" in str(c)]
    return rows.dropna(subset=metrics, how="all") if metrics else rows


def tables(results: pd.DataFrame, include_diverged: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What a finished run (or a combination of runs) writes beside results.csv: summary, significance."""
    rows = comparable(results, include_diverged)
    return summarize(rows, "test"), significance(rows)
