"""Results table: mean over seeds per method, for one run or side by side for several.

Plain Python over result rows (events' numbers, or the results file's text): the live screen is the
first frame of `rcekd watch`, which must not wait for pandas.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.widgets import DataTable

from ..runinfo import Means, mean_by_method, number

METRICS = ["NDCG@10", "Recall@10", "NDCG@20", "Recall@20", "overlap@10"]


def _cell(v) -> str:
    v = number(v)
    return "-" if v is None else f"{v:.4f}"


def _seeds(rows: list[dict[str, Any]], method: str) -> int:
    """Distinct seeds of a method; a reference without a seed (popularity, seed "") was run once."""
    return len({"" if number(r.get("seed")) is None else number(r.get("seed"))
                for r in rows if r.get("method") == method})


class ResultsTable(DataTable):
    """Rows: method (teacher first); columns: test metrics, then validation NDCG/Recall."""

    def show_results(self, rows: list[dict[str, Any]]) -> None:
        self.clear(columns=True)
        if not any("split" in r for r in rows):
            self.add_column("results")
            self.add_row("no results yet")
            return
        metrics = [m for m in METRICS if any(m in r for r in rows)]
        means = {split: mean_by_method(rows, split, metrics) for split in ("test", "valid")}
        # test metrics plainly named (the table says so); validation ones prefixed
        self.add_columns("method", "seeds", *metrics, *[f"val {m}" for m in metrics[:2]])
        for method in dict.fromkeys(str(r["method"]) for r in rows if r.get("method") not in (None, "")):
            cells = [escape(method), str(_seeds(rows, method))]
            for split, ms in (("test", metrics), ("valid", metrics[:2])):
                row = means[split].get(method)
                cells += [_cell(None if row is None else row[m]) for m in ms]
            self.add_row(*cells)

    def show_side_by_side(self, per_run: dict[str, Means], metric: str = "NDCG@10") -> None:
        """Rows: method; columns: each run's mean test value of `metric` (plus Recall@10)."""
        self.clear(columns=True)
        methods = list(dict.fromkeys(m for means in per_run.values() for m in means))
        self.add_column("method")
        for run in per_run:
            self.add_column(escape(f"{run[-22:]} {metric}"))
            self.add_column("Recall@10")
        for method in methods:
            cells = [escape(str(method))]
            for means in per_run.values():
                for m in (metric, "Recall@10"):
                    cells.append(_cell(means.get(method, {}).get(m)))
            self.add_row(*cells)
