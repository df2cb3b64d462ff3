"""`rcekd watch D` on a sweep folder: a live table of trials done per method and the best
validation score so far, refreshed from the trials' run directories until every trial is done."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .sweepinfo import SweepProgress, sweep_progress

REFRESH_S = 2.0


def progress_table(p: SweepProgress) -> Table:
    table = Table(title=f"sweep {p.path.name} ({p.preset}): {p.done}/{p.budget} trials done, "
                        f"{p.running} running", title_justify="left")
    for column in ("method", "done / budget", "running", f"best valid {p.metric}"):
        table.add_column(column, justify="left" if column == "method" else "right")
    leader = p.best_method()
    for m in p.methods:
        best = p.best.get(m)
        cell = "-" if best is None else f"{best:.4f}" + (" ★" if leader and leader[0] == m else "")
        table.add_row(m, f"{p.done_by.get(m, 0)} / {p.budgets.get(m, 0)}", str(p.running_by.get(m, 0)), cell)
    return table


def watch_sweep(path: Path, console: Console | None = None, refresh_s: float = REFRESH_S) -> None:
    console = console or Console()
    progress = sweep_progress(path)
    if progress is None:
        return
    with Live(progress_table(progress), console=console, auto_refresh=False) as live:
        while progress.done < progress.budget:
            time.sleep(refresh_s)
            progress = sweep_progress(path) or progress
            live.update(progress_table(progress), refresh=True)
    if not console.is_terminal:  # Live's last frame ends without a newline when piped
        console.line()
    console.print("every trial is done: `rcekd sweep best` shows the choice, `rcekd sweep confirm` runs it")
