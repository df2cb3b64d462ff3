"""Runs screen: every run dir under the runs root; open, select, compare, export."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from rcekd_core.runs.status import why_not_resumable
from rcekd_core.runs.store import RunDir

from .. import launch
from ..messages import RunsListed
from ..runinfo import RunSummary, list_runs
from .export_job import start_export

STATUS_STYLE = {"sweep": "blue", "running": "green", "starting": "green", "finished": "cyan", "failed": "red",
                "stopped": "yellow", "interrupted": "magenta", "diverged": "red"}

# (column key, header): the experiment table; the sort keys below read the same fields
COLUMNS = (("run", "run"), ("status", "status"), ("best", "best test NDCG@10"), ("started", "started"),
           ("duration", "time"), ("preset", "preset"), ("methods", "methods"), ("seeds", "seeds"),
           ("settings", "settings"), ("tags", "tags"))
SORTS = {
    "run": lambda r: r.name, "status": lambda r: r.status, "best": lambda r: -1.0 if r.best_ndcg is None else r.best_ndcg,
    "started": lambda r: r.started or 0.0, "duration": lambda r: r.seconds or 0.0, "preset": lambda r: r.preset,
    "methods": lambda r: ",".join(r.methods), "seeds": lambda r: len(r.seeds), "settings": lambda r: r.settings,
    "tags": lambda r: " ".join(r.tags),
}


def when(t: float | None) -> str:
    import time

    return "-" if t is None else time.strftime("%m-%d %H:%M", time.localtime(t))


def took(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class RunsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open", show=True),
        Binding("space", "toggle", "Select"),
        Binding("c", "compare", "Compare"),
        Binding("e", "export", "Export CSV"),
        Binding("n", "app.new_run", "New run"),
        Binding("r", "resume", "Resume"),
        Binding("o", "sort", "Sort"),
        Binding("slash", "filter", "Filter"),
        Binding("a", "annotate", "Tags/note"),
        Binding("f5", "rescan", "Refresh"),
    ]

    def __init__(self, runs_root: Path):
        super().__init__()
        self.runs_root = Path(runs_root)
        self.all_runs: list[RunSummary] = []  # every run found; `runs` is what the filter shows
        self.runs: list[RunSummary] = []
        self.selected: set[str] = set()
        self.sort_by, self.reverse = "started", True  # newest first
        self.filter_text = ""
        self._listed = False  # the first scan has been shown

    def compose(self) -> ComposeResult:
        yield Static(f"[b]Runs[/b] in {escape(str(self.runs_root.resolve()))}", id="runs-title")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="filter: run, status, preset, methods, tags, note (escape clears)", id="runs-filter")
        yield Static("", id="runs-hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("✓", key="sel", width=1)
        for key, header in COLUMNS:
            table.add_column(header, key=key)
        self.action_rescan()
        self.set_interval(5.0, self.action_rescan)  # slow: statuses change on the scale of epochs

    def on_screen_resume(self) -> None:
        self.action_rescan()

    @work(thread=True, exclusive=True, group="scan")
    def action_rescan(self) -> None:
        self.post_message(RunsListed(list_runs(self.runs_root)))

    def on_runs_listed(self, message: RunsListed) -> None:
        first = not self._listed
        self._listed = True
        self.all_runs = message.runs
        self.show()
        if first:
            # the table's first rows are painted at its headers' widths (cut names and statuses);
            # filled again once they are in, the columns take their contents' widths
            self.call_after_refresh(self.show)
            self.call_after_refresh(self.app.start_prewarm)  # after these rows are painted

    def show(self) -> None:
        """The table from all_runs: filtered, sorted; the cursor stays on its run, or moves to
        the run the app last showed (a run just opened, launched or resumed)."""
        table = self.query_one(DataTable)
        current = self.current()
        keep = current.name if current else None
        last = getattr(self.app, "last_run", None)
        if last is not None and Path(last).parent.resolve() == self.runs_root.resolve():
            keep, self.app.last_run = Path(last).name, None
        needle = self.filter_text.lower()
        runs = [r for r in self.all_runs if needle in r.text()] if needle else list(self.all_runs)
        self.runs = sorted(runs, key=SORTS[self.sort_by], reverse=self.reverse)
        table.clear()
        for r in self.runs:
            style = STATUS_STYLE.get("sweep" if r.sweep else r.status, "bright_black")
            best = f"{r.best_ndcg:.4f} ({r.best_method})" if r.best_ndcg is not None else "-"
            # names come from the runs' own files: shown as text, never read as markup
            table.add_row("✓" if r.name in self.selected else "", escape(r.name), Text(r.status, style=style),
                          escape(best), when(r.started), took(r.seconds), escape(r.preset),
                          escape(",".join(r.methods)), ",".join(map(str, r.seeds)), escape(r.settings),
                          escape(" ".join(r.tags)), key=r.name)
        names = [r.name for r in self.runs]
        if keep in names:
            table.move_cursor(row=names.index(keep))
        self.hint()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key in SORTS:
            self.sort_on(key)

    def sort_on(self, key: str) -> None:
        """A column once: sorted by it (largest first for numbers and times); again: reversed."""
        if key == self.sort_by:
            self.reverse = not self.reverse
        else:
            self.sort_by, self.reverse = key, key in ("best", "started", "duration", "seeds")
        self.show()

    def action_sort(self) -> None:
        """`o`: the next column to sort by."""
        keys = [k for k, _ in COLUMNS]
        nxt = keys[(keys.index(self.sort_by) + 1) % len(keys)]
        self.sort_on(nxt)
        header = dict(COLUMNS)[nxt]
        self.notify(f"sorted by {header}" + (" (descending)" if self.reverse else ""), timeout=2)

    def action_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.add_class("shown")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "runs-filter":
            self.filter_text = event.value.strip()
            self.show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "runs-filter":
            self.query_one(DataTable).focus()

    def on_key(self, event) -> None:
        box = self.query_one("#runs-filter", Input)
        if event.key == "escape" and box.has_class("shown"):
            box.value = ""
            box.remove_class("shown")
            self.query_one(DataTable).focus()
            event.stop()

    def action_annotate(self) -> None:
        from .annotate import AnnotateScreen

        cur = self.current()
        if cur is None or cur.sweep:
            self.notify("tags and notes are for runs: move to a run first", severity="warning")
            return

        def saved(ok: bool | None) -> None:
            if ok:
                self.action_rescan()

        self.app.push_screen(AnnotateScreen(cur.path), saved)

    def hint(self) -> None:
        if not self.all_runs:
            text = f"no runs yet under {escape(str(self.runs_root))} — press [b]n[/b] to start one"
        elif self.filter_text:
            text = (f"{len(self.runs)} of {len(self.all_runs)} runs match '{escape(self.filter_text)}', "
                    f"{len(self.selected)} selected · escape in the filter clears it")
        else:
            text = f"{len(self.runs)} runs, {len(self.selected)} selected · enter opens · o sorts · / filters · ? help"
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
