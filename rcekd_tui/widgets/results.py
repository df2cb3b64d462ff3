"""Results table: mean over seeds per method, for one run or side by side for several.

Plain Python over result rows (events' numbers, or the results file's text): the live screen is the
first frame of `rcekd watch`, which must not wait for pandas.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.text import Text
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


def _spread(rows: list[dict[str, Any]], method: str, split: str, metric: str) -> float | None:
    """Sample std over seeds (None with fewer than two)."""
    xs = [x for x in (number(r.get(metric)) for r in rows if r.get("method") == method and r.get("split") == split)
          if x is not None]
    if len(xs) < 2:
        return None
    mean = sum(xs) / len(xs)
    return (sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5


def fits_not_finished(rows: list[dict[str, Any]], method: str) -> str:
    """'stopped 1' / 'diverged 2': fits whose rows are not finished results (they train less, or failed)."""
    counts: dict[str, int] = {}
    for r in rows:
        status = r.get("status")
        if r.get("method") == method and r.get("split") == "test" and status not in (None, "", "finished"):
            counts[str(status)] = counts.get(str(status), 0) + 1
    return ", ".join(f"{k} {n}" for k, n in counts.items())


TARGET = "rcekd"


def _marks(test: Means, students: set[str], metrics: list[str], significance: list[dict[str, Any]]) -> dict[str, str]:
    """metric → '*' / '**' where rcekd is ahead of the best other student and the run's paired
    t-test against it gives p < 0.05 / 0.01."""
    out = {}
    mine = test.get(TARGET, {})
    for m in metrics:
        others = [(v[m], k) for k, v in test.items() if k in students and k != TARGET and v.get(m) is not None]
        if not others or mine.get(m) is None:
            continue
        best, rival = max(others)
        p = next((number(r.get("p_value")) for r in significance
                  if r.get("versus") == rival and r.get("metric", "NDCG@10") == m and r.get("split", "test") == "test"),
                 None)
        if p is not None and mine[m] > best:
            out[m] = "**" if p < 0.01 else "*" if p < 0.05 else ""
    return out


class ResultsTable(DataTable):
    """Rows: method (teacher first); columns: test metrics as mean ± std over seeds (the best
    student's in bold), then validation NDCG/Recall, and the fits that did not finish."""

    def show_results(self, rows: list[dict[str, Any]], lams: dict[str, float] | None = None,
                     significance: list[dict[str, Any]] | None = None) -> None:
        """`lams`: each method's λ (a column when given); `significance`: significance.csv's rows,
        for rcekd's markers (* / **: p < 0.05 / 0.01 against the best other student, rcekd ahead)."""
        self.clear(columns=True)
        if not any("split" in r for r in rows):
            self.add_column("results")
            self.add_row("no results yet")
            return
        metrics = [m for m in METRICS if any(m in r for r in rows)]
        means = {split: mean_by_method(rows, split, metrics) for split in ("test", "valid")}
        students = {str(r["method"]) for r in rows if r.get("model") == "student"}
        best = {m: max((v[m] for k, v in means["test"].items() if k in students and v[m] is not None),
                       default=None) for m in metrics if m != "overlap@10"}
        flagged = {m: fits_not_finished(rows, m) for m in means["test"]}
        marks = _marks(means["test"], students, metrics, significance or [])
        # test metrics plainly named (the table says so); validation ones prefixed
        self.add_columns("method", *(["λ"] if lams else []), "seeds", *metrics, *[f"val {m}" for m in metrics[:2]],
                         *(["not finished"] if any(flagged.values()) else []))
        for method in dict.fromkeys(str(r["method"]) for r in rows if r.get("method") not in (None, "")):
            lam = (lams or {}).get(method)
            cells: list[Any] = [escape(method), *([("" if lam is None else f"{lam:g}")] if lams else []),
                                str(_seeds(rows, method))]
            row = means["test"].get(method)
            for m in metrics:
                mean = None if row is None else row[m]
                sd = _spread(rows, method, "test", m)
                text = _cell(mean) + ("" if sd is None else f"±{sd:.4f}") + (marks.get(m, "") if method == TARGET else "")
                top = method in students and mean is not None and best.get(m) is not None \
                    and round(mean, 4) == round(best[m], 4)
                cells.append(Text(text, style="bold") if top else text)
            row = means["valid"].get(method)
            cells += [_cell(None if row is None else row[m]) for m in metrics[:2]]
            if any(flagged.values()):
                cells.append(Text(flagged.get(method, ""), style="yellow"))
            self.add_row(*cells)

    def show_side_by_side(self, per_run: dict[str, Means], metric: str = "NDCG@10",
                          unfinished: dict[str, dict[str, str]] | None = None) -> None:
        """Rows: method; columns: each run's mean test value of `metric` (plus Recall@10); a
        method whose fits in a run did not all finish is marked † with what they are."""
        self.clear(columns=True)
        methods = list(dict.fromkeys(m for means in per_run.values() for m in means))
        self.add_column("method")
        for run in per_run:
            self.add_column(escape(f"{run[-22:]} {metric}"))
            self.add_column("Recall@10")
        for method in methods:
            cells = [escape(str(method))]
            for run, means in per_run.items():
                flag = (unfinished or {}).get(run, {}).get(method, "")
                for m in (metric, "Recall@10"):
                    cell = _cell(means.get(method, {}).get(m))
                    cells.append(Text(f"{cell}† {flag}", style="yellow") if flag and m == metric else cell)
            self.add_row(*cells)
