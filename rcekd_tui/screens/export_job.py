"""Exporting selected runs as one tidy CSV, off the UI thread (runs list and compare screen)."""

from __future__ import annotations

import time
from pathlib import Path

from textual.screen import Screen


def export_path(runs_root: Path) -> Path:
    """runs_root/export-<time>.csv, numbered when an export of the same second is there already
    (a second export never replaces the first). A file, so the runs list never reads it as a run."""
    stem = Path(runs_root) / f"export-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = stem.with_suffix(".csv"), 2
    while path.exists():
        path, n = stem.with_name(f"{stem.name}-{n}.csv"), n + 1
    return path


def start_export(screen: Screen, paths: list[Path], runs_root: Path, done: str) -> None:
    """Write the tidy CSV of `paths` off the UI thread (pandas, every results file); notify when done.

    `done` is the notification, formatted with rows, runs (those read) and out; runs that could
    not be read and skipped rows are one more line each. A run still running is refused: its
    results file holds only the fits finished so far.
    """
    out = export_path(runs_root)

    def job() -> None:
        from rcekd_core.errors import RcekdError

        from ..export import StillRunning, export_tidy  # pandas: only when exporting

        try:
            tidy = export_tidy(paths, out)
        except StillRunning as e:
            screen.app.call_from_thread(
                screen.notify, f"not exported: {e.run.name} is still running; export it when it has finished "
                "(`rcekd runs export --partial` exports the fits it has finished)", severity="warning", markup=False)
            return
        except (RcekdError, OSError) as e:
            screen.app.call_from_thread(screen.notify, f"export failed: {e}", severity="error", markup=False)
            return
        text = done.format(rows=len(tidy.frame), runs=len(tidy.read), out=out)
        severity = "warning" if tidy.notes else "information"
        screen.app.call_from_thread(screen.notify, "\n".join([text, *tidy.notes]), severity=severity, markup=False)

    screen.run_worker(job, thread=True, group="export")
