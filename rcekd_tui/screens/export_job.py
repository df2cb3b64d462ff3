"""Exporting selected runs as one tidy CSV, off the UI thread (runs list and compare screen)."""

from __future__ import annotations

import time
from pathlib import Path

from textual.screen import Screen


def export_path(runs_root: Path) -> Path:
    return Path(runs_root) / f"export-{time.strftime('%Y%m%d-%H%M%S')}.csv"


def start_export(screen: Screen, paths: list[Path], runs_root: Path, done: str) -> None:
    """Write the tidy CSV of `paths` off the UI thread (pandas, every results file); notify when done.

    `done` is the notification, formatted with rows, runs and out.
    """
    out = export_path(runs_root)

    def job() -> None:
        from ..export import export_tidy  # pandas: only when exporting

        try:
            df = export_tidy(paths, out)
        except OSError as e:
            screen.app.call_from_thread(screen.notify, f"export failed: {e}", severity="error")
            return
        screen.app.call_from_thread(screen.notify, done.format(rows=len(df), runs=len(paths), out=out))

    screen.run_worker(job, thread=True, group="export")
