"""Exporting selected runs as one tidy CSV, off the UI thread (runs list and compare screen)."""

from __future__ import annotations

import time
from pathlib import Path

from textual.screen import Screen


def export_path(runs_root: Path) -> Path:
    return Path(runs_root) / f"export-{time.strftime('%Y%m%d-%H%M%S')}.csv"


def start_export(screen: Screen, paths: list[Path], runs_root: Path, done: str) -> None:
    """Write the tidy CSV of `paths` off the UI thread (pandas, every results file); notify when done.

    `done` is the notification, formatted with rows, runs (those read) and out; runs that could
    not be read and skipped rows are one more line each.
    """
    out = export_path(runs_root)

    def job() -> None:
        from rcekd_core.errors import RcekdError

        from ..export import export_tidy  # pandas: only when exporting

        try:
            tidy = export_tidy(paths, out)
        except (RcekdError, OSError) as e:
            screen.app.call_from_thread(screen.notify, f"export failed: {e}", severity="error", markup=False)
            return
        text = done.format(rows=len(tidy.frame), runs=len(tidy.read), out=out)
        severity = "warning" if tidy.notes else "information"
        screen.app.call_from_thread(screen.notify, "\n".join([text, *tidy.notes]), severity=severity, markup=False)

    screen.run_worker(job, thread=True, group="export")
