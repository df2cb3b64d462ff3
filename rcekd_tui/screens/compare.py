"""Compare several runs: overlaid validation NDCG, results side by side, differing config."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from ..export import export_tidy
from ..runinfo import config_diff, mean_by_method, read_results
from ..widgets.charts import LineChart
from ..widgets.results import ResultsTable
from .runs import export_path


def _short(value) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 30 else text[:29] + "…"


class CompareScreen(Screen):
    BINDINGS = [
        Binding("escape,b", "app.pop_screen", "Back"),
        Binding("e", "export", "Export CSV"),
    ]

    def __init__(self, paths: list[Path], runs_root: Path):
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.runs_root = Path(runs_root)

    def compose(self) -> ComposeResult:
        yield Static(f"[b]Compare[/b] {', '.join(p.name for p in self.paths)}", id="compare-title")
        with TabbedContent(initial="curves"):
            with TabPane("Validation NDCG@10", id="curves"):
                yield LineChart("valid NDCG@10 per run/method", id="compare-chart")
            with TabPane("Results (test, mean over seeds)", id="side"):
                yield ResultsTable(id="compare-results", zebra_stripes=True)
            with TabPane("Config diff", id="diff"):
                yield DataTable(id="compare-diff", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        lines = []
        for p in self.paths:
            try:
                m = pd.read_csv(p / "metrics.csv")
            except (OSError, pd.errors.EmptyDataError):
                continue
            m = m[m["model"] == "student"]
            for (method, seed), g in m.groupby(["method", "seed"], sort=False):
                lines.append((f"{p.name}:{method}/s{seed}", list(g["epoch"]), list(g["valid_NDCG@10"])))
        self.query_one(LineChart).show(lines)
        per_run = {p.name: mean_by_method(read_results(p)) for p in self.paths}
        self.query_one(ResultsTable).show_side_by_side(per_run)
        diff = self.query_one("#compare-diff", DataTable)
        diff.add_column("key")
        for p in self.paths:
            diff.add_column(p.name)
        changed = config_diff(self.paths)
        for key, values in changed.items():
            diff.add_row(key, *[_short(v) for v in values])
        if not changed:
            diff.add_row("(identical configs)", *["" for _ in self.paths])

    def action_export(self) -> None:
        out = export_path(self.runs_root)
        df = export_tidy(self.paths, out)
        self.notify(f"wrote {len(df)} rows to {out}")
