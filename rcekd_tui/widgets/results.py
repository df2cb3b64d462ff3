"""Results table: mean over seeds per method, for one run or side by side for several."""

from __future__ import annotations

import pandas as pd
from textual.widgets import DataTable

METRICS = ["NDCG@10", "Recall@10", "NDCG@20", "Recall@20", "overlap@10"]


def _cell(v) -> str:
    return "-" if v is None or pd.isna(v) else f"{v:.4f}"


class ResultsTable(DataTable):
    """Rows: method (teacher first); columns: test metrics, then validation NDCG/Recall."""

    def show_results(self, rows: list[dict]) -> None:
        self.clear(columns=True)
        df = pd.DataFrame(rows)
        if df.empty or "split" not in df:
            self.add_column("results")
            self.add_row("no results yet")
            return
        metrics = [m for m in METRICS if m in df]
        means = df.groupby(["method", "split"], sort=False)[metrics].mean()
        seeds = df.groupby("method", sort=False)["seed"].nunique()
        # test metrics plainly named (the table says so); validation ones prefixed
        self.add_columns("method", "seeds", *metrics, *[f"val {m}" for m in metrics[:2]])
        for method in dict.fromkeys(df["method"]):
            cells = [method, str(seeds.get(method, 1))]
            for split, ms in (("test", metrics), ("valid", metrics[:2])):
                row = means.loc[(method, split)] if (method, split) in means.index else None
                cells += [_cell(None if row is None else row[m]) for m in ms]
            self.add_row(*cells)

    def show_side_by_side(self, per_run: dict[str, pd.DataFrame], metric: str = "NDCG@10") -> None:
        """Rows: method; columns: each run's mean test value of `metric` (plus Recall@10)."""
        self.clear(columns=True)
        methods = list(dict.fromkeys(m for df in per_run.values() for m in df.index))
        self.add_column("method")
        for run in per_run:
            self.add_column(f"{run[-22:]} {metric}")
            self.add_column("Recall@10")
        for method in methods:
            cells = [method]
            for df in per_run.values():
                for m in (metric, "Recall@10"):
                    has = method in df.index and m in df
                    cells.append(_cell(df.loc[method, m] if has else None))
            self.add_row(*cells)
