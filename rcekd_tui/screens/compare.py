"""Compare several runs: overlaid validation NDCG, results side by side, differing config."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from rcekd_core.runs.store import RunDir

from ..messages import CompareLoaded
from ..runinfo import config_diff, mean_by_method, validation_curves
from ..widgets.charts import LineChart
from ..widgets.results import ResultsTable
from .export_job import start_export


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
        yield Static(f"[b]Compare[/b] {escape(', '.join(p.name for p in self.paths))}", id="compare-title")
        with TabbedContent(initial="curves"):
            with TabPane("Validation NDCG@10", id="curves"):
                yield LineChart("valid NDCG@10 per run/method", id="compare-chart")
            with TabPane("Results (test, mean over seeds)", id="side"):
                yield ResultsTable(id="compare-results", zebra_stripes=True)
            with TabPane("Config diff", id="diff"):
                yield DataTable(id="compare-diff", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="compare")
    def load(self) -> None:
        """Read every run's metrics, results and config off the UI thread."""
        lines = [(f"{p.name}:{label}", xs, ys) for p in self.paths for label, xs, ys in validation_curves(p)]
        per_run = {p.name: mean_by_method(RunDir(p).read_result_rows()) for p in self.paths}
        self.post_message(CompareLoaded(lines, per_run, config_diff(self.paths)))

    def on_compare_loaded(self, msg: CompareLoaded) -> None:
        self.query_one(LineChart).show(msg.lines)
        self.query_one(ResultsTable).show_side_by_side(msg.per_run)
        diff = self.query_one("#compare-diff", DataTable)
        diff.add_column("key")
        for p in self.paths:
            diff.add_column(escape(p.name))
        for key, values in msg.diff.items():
            diff.add_row(escape(key), *[escape(_short(v)) for v in values])
        if not msg.diff:
            diff.add_row("(identical configs)", *["" for _ in self.paths])

    def action_export(self) -> None:
        start_export(self, self.paths, self.runs_root, "wrote {rows} rows to {out}")
