"""The Textual app: runs list as home, set-up, live run, compare; and `rcekd watch`."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from .screens.help import HelpScreen
from .screens.run import RunScreen
from .screens.runs import RunsScreen

DEFAULT_RUNS_ROOT = Path("runs")


class RcekdApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "rcekd"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(self, runs_root: Path | None = None, watch_dir: Path | None = None, prewarm: bool = True):
        super().__init__()
        self.runs_root = Path(runs_root or DEFAULT_RUNS_ROOT)
        self.watch_dir = Path(watch_dir) if watch_dir else None
        self.prewarm = prewarm  # False: never import the engine unasked (tests of the light start)
        self.last_run: Path | None = None  # the run screen shown last: the runs list's cursor goes there
        self._prewarmed = False

    def on_mount(self) -> None:
        if self.watch_dir is not None:
            self.push_screen(RunScreen(self.watch_dir, standalone=True))
        else:
            self.push_screen(RunsScreen(self.runs_root))

    def start_prewarm(self) -> None:
        """Import the engine in a thread once the runs list shows its rows: loading torch's
        libraries holds the interpreter for seconds, and no frame is painted meanwhile."""
        if self.prewarm and not self._prewarmed:
            self._prewarmed = True
            self.run_worker(_prewarm_engine, thread=True, group="prewarm")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_new_run(self) -> None:
        from .screens.setup import (
            SetupScreen,  # late: keeps `rcekd watch` start-up light
        )

        self.push_screen(SetupScreen(self.runs_root))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Keys and what each screen does", self.action_help)
        if self.watch_dir is None:
            yield SystemCommand("New run", "Open the set-up form", self.action_new_run)
        if isinstance(screen, RunScreen):
            yield SystemCommand("Stop run", "Stop the run after the current batch (best weights evaluated and written)", screen.action_stop)
        if isinstance(screen, RunsScreen):
            yield SystemCommand("Export selection", "Write the selected runs as one tidy CSV",
                                screen.action_export)
            yield SystemCommand("Compare selection", "Overlay curves and diff configs",
                                screen.action_compare)


def _prewarm_engine() -> None:
    """Import torch and the engine in a thread, after the first frame, so the set-up form opens quickly.

    Nothing else on the way to the first screen imports torch or pandas (tests/tui/test_app.py).
    """
    import rcekd_core.kd.registry  # noqa: F401


def run_tui(runs_root: Path) -> None:
    """`rcekd tui`: runs list, set-up and live screens over runs_root."""
    RcekdApp(runs_root=runs_root).run()


def run_watch(run_dir: Path) -> None:
    """`rcekd watch D`: the live screen alone, attached to a run started elsewhere."""
    RcekdApp(watch_dir=run_dir).run()
