"""Runs screen: every run dir under the runs root; open, select, compare, export."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from rcekd_core.runs.status import why_not_resumable
from rcekd_core.runs.store import RunDir

from .. import launch
from ..messages import RunsListed
from ..runinfo import RunSummary, list_runs
from .export_job import start_export

STATUS_STYLE = {"sweep": "blue", "running": "green", "starting": "green", "finished": "cyan", "failed": "red",
                "stopped": "yellow", "interrupted": "magenta"}


class RunsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open", show=True),
        Binding("space", "toggle", "Select"),
        Binding("c", "compare", "Compare"),
        Binding("e", "export", "Export CSV"),
        Binding("n", "app.new_run", "New run"),
        Binding("r", "resume", "Resume"),
        Binding("f5", "rescan", "Refresh"),
    ]

    def __init__(self, runs_root: Path):
        super().__init__()
        self.runs_root = Path(runs_root)
        self.runs: list[RunSummary] = []
        self.selected: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static(f"[b]Runs[/b] in {escape(str(self.runs_root.resolve()))}", id="runs-title")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="runs-hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("✓", key="sel", width=1)
        table.add_columns("run", "status", "dataset", "methods", "best test NDCG@10")
        self.action_rescan()
        self.set_interval(5.0, self.action_rescan)  # slow: statuses change on the scale of epochs

    def on_screen_resume(self) -> None:
        self.action_rescan()

    @work(thread=True, exclusive=True, group="scan")
    def action_rescan(self) -> None:
        self.post_message(RunsListed(list_runs(self.runs_root)))

    def on_runs_listed(self, message: RunsListed) -> None:
        table = self.query_one(DataTable)
        current = self.current()
        self.runs = message.runs
        table.clear()
        for r in self.runs:
            style = STATUS_STYLE.get("sweep" if r.sweep else r.status, "bright_black")
            best = f"{r.best_ndcg:.4f} ({r.best_method})" if r.best_ndcg is not None else "-"
            # names come from the runs' own files: shown as text, never read as markup
            table.add_row("✓" if r.name in self.selected else "", escape(r.name), Text(r.status, style=style),
                          escape(r.dataset), escape(",".join(r.methods)), escape(best), key=r.name)
        if current is not None and current.name in {r.name for r in self.runs}:
            table.move_cursor(row=table.get_row_index(current.name))
        self.hint()

    def hint(self) -> None:
        if not self.runs:
            text = f"no runs yet under {escape(str(self.runs_root))} — press [b]n[/b] to start one"
        else:
            text = f"{len(self.runs)} runs, {len(self.selected)} selected · enter opens · ? help"
        self.query_one("#runs-hint", Static).update(text)

    def current(self) -> RunSummary | None:
        table = self.query_one(DataTable)
        if not self.runs or table.cursor_row is None or table.cursor_row >= len(self.runs):
            return None
        return self.runs[table.cursor_row]

    def chosen(self) -> list[Path]:
        """The selection, else the run under the cursor."""
        picked = [r.path for r in self.runs if r.name in self.selected]
        cur = self.current()
        return picked or ([cur.path] if cur else [])

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        from .run import RunScreen

        cur = self.current()
        if cur and cur.sweep:  # a sweep: its progress and sensitivity panels (t there: the trial in flight)
            from .sweep import SweepScreen

            self.app.push_screen(SweepScreen(cur.path))
        elif cur:
            self.app.push_screen(RunScreen(cur.path))

    def action_toggle(self) -> None:
        cur = self.current()
        if not cur:
            return
        self.selected ^= {cur.name}
        table = self.query_one(DataTable)
        table.update_cell(cur.name, "sel", "✓" if cur.name in self.selected else "")
        if table.cursor_row < len(self.runs) - 1:
            table.move_cursor(row=table.cursor_row + 1)
        self.hint()

    def action_compare(self) -> None:
        from .compare import CompareScreen

        paths = self.chosen()
        if len(paths) < 2:
            self.notify("select at least two runs with space to compare", severity="warning")
            return
        self.app.push_screen(CompareScreen(paths, self.runs_root))

    def action_export(self) -> None:
        paths = self.chosen()
        if not paths:
            self.notify("no run to export", severity="warning")
            return
        start_export(self, paths, self.runs_root, "wrote {rows} rows from {runs} run(s) to {out}")

    def action_resume(self) -> None:
        """`rcekd distill --resume` on the run under the cursor, if it is interrupted, stopped or failed."""
        from .run import RunScreen, events_size

        cur = self.current()
        if not cur:
            self.notify("no run to resume", severity="warning")
            return
        why = why_not_resumable(cur.path)  # now, not as of the last scan
        if why:
            self.notify(f"{cur.name}: nothing to resume ({why}); r resumes an interrupted, stopped or failed run",
                        severity="warning", markup=False)
            return
        offset = events_size(RunDir(cur.path))
        try:
            proc = launch.start_resume(cur.path)
        except OSError as e:
            self.notify(f"could not resume {cur.name}: {e}", severity="error", markup=False)
            return
        self.app.push_screen(RunScreen(cur.path, process=proc, resume_offset=offset))
