"""Live run screen: curves, status line and log of one run dir (also for finished runs)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from rcekd_core.runs.store import RunDir

from ..follow import RunState, follow
from ..messages import EventsBatch
from ..runinfo import read_results
from ..widgets.charts import LineChart
from ..widgets.results import ResultsTable

LOSSES = (("loss", "total loss"), ("base_loss", "base loss"), ("kd_loss", "KD loss"))


class RunScreen(Screen):
    BINDINGS = [
        Binding("s", "stop", "Stop run"),
        Binding("b", "background", "Background"),
        Binding("escape", "background", "Back", show=False),
        Binding("1", "tab('loss')", "Loss", show=False),
        Binding("2", "tab('valid')", "Valid", show=False),
        Binding("3", "tab('overlap')", "Overlap", show=False),
        Binding("4", "tab('results')", "Results", show=False),
    ]

    def __init__(self, run_dir: Path, process: subprocess.Popen | None = None, standalone: bool = False):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.process = process  # set when this TUI launched the run: lets us report an early crash
        self.standalone = standalone  # `rcekd watch`: leaving means quitting
        self.state = RunState()
        self._crash_reported = False

    def compose(self) -> ComposeResult:
        yield Static(f"[b]{self.run_dir.name}[/b] · {self.run_dir}", id="run-title")
        yield Static("waiting for events…", id="run-status")
        with TabbedContent(initial="loss", id="run-tabs"):
            with TabPane("1 Loss", id="loss"):
                with Horizontal(classes="charts"):
                    for key, title in LOSSES:
                        yield LineChart(title, id=f"chart-{key}")
            with TabPane("2 Validation", id="valid"):
                with Horizontal(classes="charts"):
                    yield LineChart("valid NDCG@10", id="chart-ndcg")
                    yield LineChart("valid Recall@10", id="chart-recall")
            with TabPane("3 Overlap", id="overlap"):
                yield LineChart("teacher–student top-10 overlap", id="chart-overlap")
            with TabPane("4 Results", id="results"):
                yield ResultsTable(id="results-table", cursor_type="row", zebra_stripes=True)
        yield RichLog(id="run-log", max_lines=500, wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#run-log", RichLog).border_title = "log"
        table = self.query_one(ResultsTable)
        table.border_title = "test split, mean over seeds (val = validation)"
        table.show_results([])
        self.follow_events()
        self.set_interval(1.0, self.tick)  # status line / ETA / crash check; cheap

    @work(thread=True, exclusive=True, group="follow")
    def follow_events(self) -> None:
        """Tail events.jsonl off the UI thread; one message per poll that found anything."""
        worker = get_current_worker()
        for batch in follow(self.run_dir / "events.jsonl", lambda: worker.is_cancelled):
            self.post_message(EventsBatch(self.run_dir, batch))

    def on_events_batch(self, message: EventsBatch) -> None:
        lines = self.state.apply(message.events)
        log = self.query_one("#run-log", RichLog)
        for line in lines:
            log.write(line)
        kinds = {e.get("type") for e in message.events}
        if kinds & {"epoch", "result"}:
            self.redraw()
        if "result" in kinds or "end" in kinds:
            self.show_results()
        self.tick()

    def redraw(self) -> None:
        st = self.state
        every = list(st.series.values())
        for key, _ in LOSSES:
            lines = [(st.label(s) if s.model == "student" else "teacher", s.epochs, getattr(s, key))
                     for s in every]
            self.query_one(f"#chart-{key}", LineChart).show(lines)
        shown = st.students() or every  # the teacher's curve until students start
        ref = st.teacher_ndcg
        self.query_one("#chart-ndcg", LineChart).show(
            [(st.label(s), s.epochs, s.ndcg) for s in shown],
            ("teacher", ref) if ref is not None and st.students() else None)
        t_recall = next((r.get("Recall@10") for r in st.results
                         if r.get("model") == "teacher" and r.get("split") == "valid"), None)
        self.query_one("#chart-recall", LineChart).show(
            [(st.label(s), s.epochs, s.recall) for s in shown],
            ("teacher", t_recall) if t_recall is not None and st.students() else None)
        self.query_one("#chart-overlap", LineChart).show(
            [(st.label(s), s.epochs, s.overlap) for s in st.students()])

    def show_results(self) -> None:
        rows = self.state.results
        if not rows:  # an older run dir may lack result events but have results.csv
            rows = read_results(self.run_dir).to_dict("records")
        self.query_one(ResultsTable).show_results(rows)
        if self.state.status != "running":
            self.query_one(TabbedContent).active = "results" if rows else "loss"

    def tick(self) -> None:
        st = self.state
        if self.process is not None and self.process.poll() is not None and st.status == "running":
            self.report_exit(self.process.returncode)
        text = st.status_line() if st.n_events else self.waiting_text()
        if self._crash_reported and st.status == "failed":
            text = f"failed: the process exited with code {self.process.returncode} (see log)"
        self.query_one("#run-status", Static).update(text)

    def waiting_text(self) -> str:
        return "waiting for events.jsonl (loading data; see stdout.log)…"

    def report_exit(self, code: int) -> None:
        """The process ended without an `end` event (e.g. bad data): show its last output lines."""
        if self._crash_reported:
            return
        self._crash_reported = True
        self.state.status = "failed" if code else self.state.status
        log = self.query_one("#run-log", RichLog)
        log.write(f"process exited with code {code}; last lines of stdout.log:")
        out = self.run_dir / "stdout.log"
        tail = out.read_text(errors="replace").splitlines()[-8:] if out.exists() else []
        for line in tail:
            log.write("  " + line)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_stop(self) -> None:
        if self.state.status != "running":
            self.notify(f"run is {self.state.status}; nothing to stop", severity="warning")
            return
        if self.state.n_events == 0:
            # the engine clears STOP when it starts, so a STOP now would be lost
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                self.notify("the run had not started yet: interrupted it")
            else:
                self.notify("the run has not started writing events yet; try again shortly",
                            severity="warning")
            return
        RunDir(self.run_dir).request_stop()
        self.notify("stop requested: the run finishes its current epoch, saves and exits")
        self.query_one("#run-log", RichLog).write("STOP file written")

    def action_background(self) -> None:
        """Leave the run going (it is its own process); back to the runs list, or quit in watch."""
        if self.standalone:
            self.app.exit()
        else:
            self.app.pop_screen()
