"""Live run screen: curves, status line and log of one run dir (also for finished runs)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from rcekd_core.runs.events import End, Epoch, EventTailer, Result
from rcekd_core.runs.status import (
    RESUMABLE,
    process_alive,
    run_status,
    why_not_resumable,
)
from rcekd_core.runs.store import EVENTS, STDOUT, STOP, RunDir

from .. import launch
from ..follow import RunState, follow
from ..messages import EventsBatch
from ..widgets.charts import ChartKeys, ChartOptions, Legend, LineChart, view_notes
from ..widgets.results import ResultsTable

LOSSES = (("loss", "total loss"), ("base_loss", "base loss"), ("kd_loss", "KD loss"))


class RunScreen(ChartKeys, Screen):
    BINDINGS = [
        Binding("s", "stop", "Stop run"),
        Binding("r", "resume", "Resume"),
        Binding("b", "background", "Background"),
        Binding("escape", "background", "Back", show=False),
        Binding("1", "tab('loss')", "Loss", show=False),
        Binding("2", "tab('valid')", "Valid", show=False),
        Binding("3", "tab('overlap')", "Overlap", show=False),
        Binding("4", "tab('results')", "Results", show=False),
        Binding("l", "log_y", "Log y"),
        Binding("m", "smooth", "Smooth"),
        Binding("x", "x_axis", "Epoch/time"),
        Binding("left_square_bracket", "cursor(-1)", "Cursor ←", show=False),
        Binding("right_square_bracket", "cursor(1)", "Cursor →", show=False),
        Binding("backslash", "cursor(0)", "Cursor off", show=False),
    ]

    def __init__(self, run_dir: Path, process: subprocess.Popen | None = None, standalone: bool = False,
                 resume_offset: int | None = None):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.run = RunDir(self.run_dir)
        self.process = process  # set when this TUI launched the run: lets us report an early crash
        self.standalone = standalone  # `rcekd watch`: leaving means quitting
        # a resume was launched when the events file had `resume_offset` bytes; none written since
        self.resuming = resume_offset is not None
        self._resume_offset = resume_offset or 0
        self.state = RunState()
        self.tailer = EventTailer(self.run.events)
        self._crash_reported = False
        self._exit_note = ""  # replaces the status line once the process ended without events
        self._ticks = 0
        self._gone_since: float | None = None  # when the run's process was first seen gone
        self._polled_at = 0.0  # when the follower last polled, and how far it had read then
        self._polled_to = 0
        self._applied_to = 0  # how far the applied batches reach
        self.view = ChartOptions()  # log y, smoothing, x axis, cursor: for every chart at once
        self._lams: dict[str, float] | None = None  # each method's λ, for the results tab

    def compose(self) -> ComposeResult:
        yield Static(f"[b]{escape(self.run_dir.name)}[/b] · {escape(str(self.run_dir))}", id="run-title")
        yield Static("waiting for the run to start…", id="run-status")
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
        yield Legend("", id="run-legend")
        yield RichLog(id="run-log", max_lines=500, wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.app.last_run = self.run_dir  # the runs list puts its cursor here when it comes back
        self.query_one("#run-log", RichLog).border_title = "log"
        table = self.query_one(ResultsTable)
        table.border_title = ("test split, mean±std over seeds; bold: best student; rcekd */**: paired t-test "
                              "p < 0.05/0.01 vs the best other (val = validation)")
        table.show_results([])
        self.follow_events()
        self.set_interval(1.0, self.tick)  # status line / ETA / crash check; cheap

    @work(thread=True, exclusive=True, group="follow")
    def follow_events(self) -> None:
        """Tail the run's events off the UI thread; one message per poll that found anything.

        Until the file exists the follower waits for it (a run still loading its data).
        """
        worker = get_current_worker()
        tailer = self.tailer

        def nap(seconds: float) -> None:  # after every poll: how far the follower has read
            self._polled_to, self._polled_at = tailer.offset, time.monotonic()
            wake = time.monotonic() + seconds
            while not worker.is_cancelled and time.monotonic() < wake:  # leaving the screen is instant
                time.sleep(0.05)

        for batch in follow(self.run.events, lambda: worker.is_cancelled, sleep=nap, tailer=tailer):
            self.post_message(EventsBatch(self.run_dir, batch, tailer.skipped, tailer.offset))

    def on_events_batch(self, message: EventsBatch) -> None:
        before = self.state.status
        lines = self.state.apply(message.events, message.skipped)
        self._applied_to = max(self._applied_to, message.offset)
        if self.resuming and message.offset > self._resume_offset:  # the resumed process writes
            self.resuming = False
        log = self.query_one("#run-log", RichLog)
        for line in lines:
            log.write(line)
        if any(isinstance(e, (Epoch, Result)) for e in message.events):
            self.redraw()
        if any(isinstance(e, (Result, End)) for e in message.events):
            self.show_results()
        if self.state.status != before:
            self.refresh_bindings()
        self.tick()

    def xs(self, s) -> list[float]:
        """A series' x values: its epochs, or minutes of training since its fit started."""
        if self.view.x_label == "epoch":
            return list(s.epochs)
        total, out = 0.0, []
        for sec in s.seconds:
            total += sec
            out.append(total / 60)
        return out

    def redraw(self) -> None:
        st, view = self.state, self.view
        every = list(st.series.values())
        name = {id(s): st.label(s) if s.model == "student" else "teacher" for s in every}
        for key, _ in LOSSES:
            lines = [(name[id(s)], self.xs(s), getattr(s, key)) for s in every]
            self.query_one(f"#chart-{key}", LineChart).show(lines, options=view)
        shown = st.students() or every  # the teacher's curve until students start
        ref = st.teacher_ndcg
        self.query_one("#chart-ndcg", LineChart).show(
            [(name[id(s)], self.xs(s), s.ndcg) for s in shown],
            ("teacher", ref) if ref is not None and st.students() else None, view)
        t_recall = next((r.get("Recall@10") for r in st.results
                         if r.get("model") == "teacher" and r.get("split") == "valid"), None)
        self.query_one("#chart-recall", LineChart).show(
            [(name[id(s)], self.xs(s), s.recall) for s in shown],
            ("teacher", t_recall) if t_recall is not None and st.students() else None, view)
        self.query_one("#chart-overlap", LineChart).show(
            [(name[id(s)], self.xs(s), s.overlap) for s in st.students()], options=view)
        self.query_one(Legend).show([name[id(s)] for s in every],
                                    "teacher" if ref is not None and st.students() else None, " · ".join(view_notes(view)))

    def action_x_axis(self) -> None:
        to_time = self.view.x_label == "epoch"
        self.set_view(x_label="minutes" if to_time else "epoch", whole_x=not to_time, cursor=None)

    def action_cursor(self, step: int) -> None:
        """`[` / `]` move a cursor over the epochs (its values in each chart's border), `\\` hides it."""
        if step == 0:
            self.set_view(cursor=None)
            return
        if self.view.x_label != "epoch":
            self.notify("the cursor reads epochs: press x for the epoch axis", severity="warning")
            return
        epochs = sorted({e for s in self.state.series.values() for e in s.epochs})
        if not epochs:
            return
        now = self.view.cursor
        if now is None:
            at = epochs[-1] if step < 0 else epochs[0]
        else:
            later = [e for e in epochs if (e > now if step > 0 else e < now)]
            at = (min(later) if step > 0 else max(later)) if later else now
        self.set_view(cursor=float(at))

    def show_results(self) -> None:
        rows = self.state.results
        if not rows:  # an older run dir may lack result events but have its results file
            rows = self.run.read_result_rows()
        if self._lams is None:  # the config does not change during a run: read it once
            config = self.run.read_config()
            self._lams = {m: sec["lam"] for m, sec in config.items() if isinstance(sec, dict)
                          and isinstance(sec.get("lam"), (int, float)) and m in config.get("methods", [])}
        self.query_one(ResultsTable).show_results(rows, self._lams, self.run.read_significance_rows())
        if self.state.status != "running":
            self.query_one(TabbedContent).active = "results" if rows else "loss"

    def tick(self) -> None:
        st = self.state
        self._ticks += 1
        self.check_alive()
        if self._exit_note:
            text = self._exit_note
        elif self.resuming:
            text = f"resuming… waiting for the run to continue (output: {STDOUT})"
        elif not st.n_events:
            text = self.waiting_text()
        elif st.status == "interrupted":
            text = st.status_line("interrupted — press r to resume")
        else:
            text = st.status_line()
        self.query_one("#run-status", Static).update(Text(text))  # names from the run's files: no markup

    def waiting_text(self) -> str:
        where = f"; its output: {STDOUT}" if self.run.stdout.is_file() else ""
        return f"waiting for the run to start… (no {EVENTS} yet{where})"

    # ---- is the run's process still there? ------------------------------------------------

    def process_gone(self) -> bool:
        """The process this screen launched ended; or, for a run started elsewhere, its pid file
        names a dead process (or, without one, it has been quiet for long: runs/status.py)."""
        if self.process is not None:
            return self.process.poll() is not None
        if not self.run.events.is_file():  # an empty folder may still be about to start
            return process_alive(self.run) is False
        return run_status(self.run) == "interrupted"

    def caught_up(self) -> bool:
        """Every line the follower read since the process went is on screen."""
        return (self._gone_since is not None and self._polled_at > self._gone_since
                and self._applied_to >= self._polled_to)

    def check_alive(self) -> None:
        """Running (or resuming) without an `end` event and the process gone: interrupted, or failed
        before its first event. Decided once every line the run wrote has been applied."""
        st = self.state
        if self._crash_reported or (st.status != "running" and not self.resuming):
            return
        if self.process is None and self._ticks % 2:  # a run started elsewhere: its files every 2 s
            return
        if not self.process_gone():
            self._gone_since = None
            return
        if self._gone_since is None:
            self._gone_since = time.monotonic()
        if not self.caught_up():
            return
        code = self.process.returncode if self.process is not None else None
        if self.resuming:
            self.resuming = False
            self.report_exit(code, f"the resume ended before the run continued ({self._code(code)})")
        elif st.n_events:
            for line in st.mark_interrupted():
                self.query_one("#run-log", RichLog).write(line)
            self.report_exit(code, f"the run's process ended without an end event ({self._code(code)})")
            self.refresh_bindings()
        else:
            st.status = "failed"
            self.report_exit(code, f"the process ended before the run's first event ({self._code(code)})")
            self._exit_note = f"failed: {self._code(code)} before the run's first event (see log)"

    @staticmethod
    def _code(code: int | None) -> str:
        if code is None:
            return "its process is gone"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def report_exit(self, code: int | None, what: str) -> None:
        """The process ended without an `end` event: say so and show its last output lines."""
        if self._crash_reported:
            return
        self._crash_reported = True
        log = self.query_one("#run-log", RichLog)
        out = self.run.stdout
        try:
            tail = out.read_text(encoding="utf-8", errors="replace").splitlines()[-8:] if out.is_file() else []
        except OSError:
            tail = []
        log.write(f"{what}; last lines of {STDOUT}:" if tail else what)
        for line in tail:
            log.write("  " + line)

    # ---- resume ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "resume":  # offered (in the footer too) only where there is something to resume
            return self.state.status in RESUMABLE and not self.resuming and self.state.n_events > 0
        if action == "stop":  # nothing to stop once the run has ended
            return self.state.status not in ("finished", "stopped", "failed", "interrupted") or self.resuming
        return True

    def action_resume(self) -> None:
        """`rcekd distill --resume D`, detached like a new run; this screen follows it."""
        if not self.check_action("resume", ()):
            return
        why = why_not_resumable(self.run)
        if why:
            self.notify(f"nothing to resume: {why}", severity="warning", markup=False)
            return
        offset = events_size(self.run)
        try:
            self.process = launch.start_resume(self.run_dir)
        except OSError as e:
            self.notify(f"could not resume: {e}", severity="error", markup=False)
            return
        self.resuming, self._resume_offset = True, offset
        self._crash_reported, self._exit_note, self._gone_since = False, "", None
        self.query_one("#run-log", RichLog).write(
            f"resume launched: rcekd distill --resume {self.run_dir} (output appended to {STDOUT})")
        self.notify("resuming: finished fits are kept, the interrupted fit continues")
        self.refresh_bindings()
        self.tick()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_stop(self) -> None:
        if self.resuming and self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # it has not cleared old stop requests yet
            self.notify("the resume had not continued yet: interrupted it")
            return
        if self.state.status != "running":
            self.notify(f"run is {self.state.status}; nothing to stop", severity="warning", markup=False)
            return
        if self.state.n_events == 0:
            # the engine clears a stop request when it starts, so one now would be lost
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                self.notify("the run had not started yet: interrupted it")
            else:
                self.notify("the run has not started writing events yet; try again shortly",
                            severity="warning")
            return
        self.run.request_stop()
        self.notify("stop requested: the run finishes its current epoch, saves and exits")
        self.query_one("#run-log", RichLog).write(f"{STOP} file written")

    def action_background(self) -> None:
        """Leave the run going (it is its own process); back to the runs list, or quit in watch."""
        if self.standalone:
            self.app.exit()
        else:
            self.app.pop_screen()


def events_size(run: RunDir) -> int:
    """The events file's size now (0 if none): what a resume launched now will write after."""
    try:
        return run.events.stat().st_size
    except OSError:
        return 0
