"""A sweep: trials done per method, the best so far, and the sensitivity panels (validation
metric against each swept setting, one line per method), refreshed while the sweep runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from ..sensitivity import Panel, draw, panels, rows_from_trials
from ..sweepinfo import SweepProgress, newest_trial, sweep_progress

REFRESH_S = 5.0


@dataclass
class SweepLoaded(Message):
    progress: SweepProgress | None
    metric: str
    panels: list[Panel]


class SensitivityChart(PlotextPlot):
    """One setting's panel."""

    def __init__(self, panel: Panel, metric: str, *, id: str | None = None):
        super().__init__(id=id)
        self.panel, self.metric = panel, metric

    def on_mount(self) -> None:
        super().on_mount()
        self.redraw()

    def show(self, panel: Panel) -> None:
        self.panel = panel
        self.redraw()

    def redraw(self) -> None:
        draw(self.plt, self.panel, self.metric)
        self.refresh()


class SweepScreen(Screen):
    BINDINGS = [
        Binding("escape,b", "app.pop_screen", "Back"),
        Binding("t", "trial", "Open trial in flight"),
        Binding("f5", "reload", "Refresh"),
    ]

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self.shown: list[str] = []  # the settings with a tab, in order

    def compose(self) -> ComposeResult:
        yield Static(f"[b]Sweep[/b] {escape(self.path.name)}", id="sweep-title")
        yield DataTable(id="sweep-progress", cursor_type="none", zebra_stripes=True)
        with TabbedContent(id="sweep-panels"), TabPane("Sensitivity", id="sweep-waiting"):
            yield Static("no finished trial yet: the panels appear as trials finish", id="sweep-empty")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#sweep-progress", DataTable)
        table.add_columns("method", "done / budget", "running", "best valid")
        self.action_reload()
        self.set_interval(REFRESH_S, self.action_reload)

    @work(thread=True, exclusive=True, group="sweep")
    def action_reload(self) -> None:
        metric, logs, rows = rows_from_trials(self.path)
        self.post_message(SweepLoaded(sweep_progress(self.path), metric, panels(rows, f"valid_{metric}", logs)))

    async def on_sweep_loaded(self, msg: SweepLoaded) -> None:
        p = msg.progress
        if p is not None:
            self.query_one("#sweep-title", Static).update(
                f"[b]Sweep[/b] {escape(self.path.name)} ({escape(p.preset)}): {p.done}/{p.budget} trials done, "
                f"{p.running} running · validation {escape(p.metric)}, best trial per value")
            table = self.query_one("#sweep-progress", DataTable)
            table.clear()
            leader = p.best_method()
            for m in p.methods:
                best = p.best.get(m)
                cell = "-" if best is None else f"{best:.4f}" + (" ★" if leader and leader[0] == m else "")
                table.add_row(escape(m), f"{p.done_by.get(m, 0)} / {p.budgets.get(m, 0)}",
                              str(p.running_by.get(m, 0)), cell)
        await self.show_panels(msg.panels, msg.metric)

    async def show_panels(self, found: list[Panel], metric: str) -> None:
        tabs = self.query_one("#sweep-panels", TabbedContent)
        for panel in found:
            pane_id = f"sens-{len(self.shown)}"
            if panel.setting in self.shown:
                self.query_one(f"#chart-{self.shown.index(panel.setting)}", SensitivityChart).show(panel)
                continue
            self.shown.append(panel.setting)
            chart = SensitivityChart(panel, metric, id=f"chart-{len(self.shown) - 1}")
            await tabs.add_pane(TabPane(panel.setting, chart, id=pane_id))
            if len(self.shown) == 1:
                await tabs.remove_pane("sweep-waiting")
                tabs.active = pane_id

    def action_trial(self) -> None:
        from .run import RunScreen

        trial = newest_trial(self.path)
        if trial is None:
            self.notify(f"{self.path.name}: no trial yet", severity="warning", markup=False)
        else:
            self.app.push_screen(RunScreen(trial))
