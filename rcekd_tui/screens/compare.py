"""Compare several runs: every curve (losses, validation metrics, overlap) per run and method,
the teacher's line, results side by side and the config that differs.

A method with several seeds in a run is drawn as its mean over the seeds with a dotted
mean ± std band; a single-seed fit as its own curve. The view keys are the run screen's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from rcekd_core.runs.store import RunDir

from ..messages import CompareLoaded
from ..runinfo import config_diff, fit_curves, mean_by_method, number, seed_bands
from ..widgets.charts import ChartKeys, ChartOptions, Legend, LineChart, view_notes
from ..widgets.palette import Style, styles_for
from ..widgets.results import ResultsTable, fits_not_finished
from .export_job import start_export

# (chart id, metrics.csv column, title)
CHARTS = {
    "loss": [("cmp-loss", "loss", "total loss"), ("cmp-base", "base_loss", "base loss"),
             ("cmp-kd", "kd_loss", "KD loss")],
    "valid": [("cmp-ndcg", "valid_NDCG@10", "valid NDCG@10"), ("cmp-recall", "valid_Recall@10", "valid Recall@10")],
    "overlap": [("cmp-overlap", "overlap@10", "teacher–student top-10 overlap")],
}
TEACHER_REF = {"cmp-ndcg": "NDCG@10", "cmp-recall": "Recall@10"}


@dataclass
class Curves:
    """What one chart plots: lines (label, epochs, values) and the dotted band lines' styles."""

    lines: list[tuple[str, list[int], list[float | None]]]
    bands: dict[str, str]  # band line label -> the label whose colour it takes


def _short(value) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 30 else text[:29] + "…"


def run_curves(paths: list[Path], column: str, metrics: dict[Path, list[dict[str, str]]]) -> Curves:
    lines, bands = [], {}
    for p in paths:
        for band in seed_bands(fit_curves(p, column, rows=metrics[p])):
            label = f"{p.name}:{band.method}"
            lines.append((label, band.epochs, band.mean))
            if band.seeds > 1:
                for side, ys in (("-σ", band.low), ("+σ", band.high)):
                    lines.append((f"{label} {side}", band.epochs, ys))
                    bands[f"{label} {side}"] = label
    return Curves(lines, bands)


def teacher_valid(paths: list[Path], metric: str) -> float | None:
    for p in paths:
        for r in RunDir(p).read_result_rows():
            if r.get("model") == "teacher" and r.get("split") == "valid":
                return number(r.get(metric))
    return None


class CompareScreen(ChartKeys, Screen):
    BINDINGS = [
        Binding("escape,b", "app.pop_screen", "Back"),
        Binding("e", "export", "Export CSV"),
        Binding("l", "log_y", "Log y"),
        Binding("m", "smooth", "Smooth"),
        Binding("1", "tab('loss')", "Loss", show=False),
        Binding("2", "tab('valid')", "Valid", show=False),
        Binding("3", "tab('overlap')", "Overlap", show=False),
        Binding("4", "tab('side')", "Results", show=False),
        Binding("5", "tab('diff')", "Config", show=False),
    ]

    def __init__(self, paths: list[Path], runs_root: Path):
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.runs_root = Path(runs_root)
        self.view = ChartOptions()
        self.curves: dict[str, Curves] = {}
        self.refs: dict[str, float | None] = {}
        self.line_styles: dict[str, Style] = {}

    def compose(self) -> ComposeResult:
        yield Static(f"[b]Compare[/b] {escape(', '.join(p.name for p in self.paths))}", id="compare-title")
        with TabbedContent(initial="valid", id="compare-tabs"):
            for tab, title in (("loss", "1 Loss"), ("valid", "2 Validation"), ("overlap", "3 Overlap")):
                with TabPane(title, id=tab), Horizontal(classes="charts"):
                    for chart_id, _, chart_title in CHARTS[tab]:
                        yield LineChart(chart_title, id=chart_id)
            with TabPane("4 Results", id="side"):
                yield ResultsTable(id="compare-results", zebra_stripes=True)
            with TabPane("5 Config", id="diff"):
                yield DataTable(id="compare-diff", zebra_stripes=True)
        yield Legend("", id="compare-legend")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="compare")
    def load(self) -> None:
        """Read every run's metrics, results and config off the UI thread."""
        metrics = {p: RunDir(p).read_metric_rows() for p in self.paths}  # once per run, for every chart
        curves = {cid: run_curves(self.paths, column, metrics) for charts in CHARTS.values() for cid, column, _ in charts}
        refs = {cid: teacher_valid(self.paths, metric) for cid, metric in TEACHER_REF.items()}
        rows = {p.name: RunDir(p).read_result_rows() for p in self.paths}
        per_run = {name: mean_by_method(r) for name, r in rows.items()}
        unfinished = {name: {m: flag for m in per_run[name] if (flag := fits_not_finished(r, m))}
                      for name, r in rows.items()}
        self.post_message(CompareLoaded(curves, per_run, config_diff(self.paths), refs, unfinished))

    def on_compare_loaded(self, msg: CompareLoaded) -> None:
        self.curves, self.refs = msg.lines, msg.refs
        main = [label for c in self.curves.values() for label, _, _ in c.lines if label not in c.bands]
        self.line_styles = styles_for(main)
        self.redraw()
        self.query_one(ResultsTable).show_side_by_side(msg.per_run, unfinished=msg.unfinished)
        diff = self.query_one("#compare-diff", DataTable)
        diff.add_column("key")
        for p in self.paths:
            diff.add_column(escape(p.name))
        for key, values in msg.diff.items():
            diff.add_row(escape(key), *[escape(_short(v)) for v in values])
        if not msg.diff:
            diff.add_row("(identical configs)", *["" for _ in self.paths])

    def redraw(self) -> None:
        for cid, curves in self.curves.items():
            styles = dict(self.line_styles)
            for band, owner in curves.bands.items():  # the owner's colour, dotted
                own = self.line_styles[owner]
                styles[band] = Style(own.color, "·", "·")
            ref = self.refs.get(cid)
            self.query_one(f"#{cid}", LineChart).show(curves.lines, ("teacher", ref) if ref is not None else None,
                                                      self.view, styles)
        notes = view_notes(self.view)
        has_band = any(c.bands for c in self.curves.values())
        if has_band:
            notes.append("· · mean ± std over seeds")
        self.query_one(Legend).show(list(self.line_styles), "teacher" if any(self.refs.values()) else None,
                                    " · ".join(notes), self.line_styles)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_export(self) -> None:
        start_export(self, self.paths, self.runs_root, "wrote {rows} rows to {out}")
