"""One tidy CSV over several runs: (run, method, seed, split, status, metric, value). Engine-free.

Every run's results file is read strictly (resultsfile.py): a run whose file cannot be read is
skipped, malformed rows are left out, and each is one line in `notes`. Nothing is written
when no run could be read.

`seed` is an integer in every row, so `pd.read_csv` reads the column as int64: the popularity
reference, which no seed changes, has NO_SEED (-1); the teacher has its teacher seed.

A run still running is refused (its results file holds only the fits finished so far); with
`partial` its rows are exported and a `partial` column (True for that run's rows) says so.
The same run named twice is exported once; two runs of the same folder name are told apart
by their paths in the `run` column.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rcekd_core.atomic import atomic_write
from rcekd_core.errors import ConfigError
from rcekd_core.runs.status import run_status

from .resultsfile import Unreadable, read_results_file

COLUMNS = ["run", "method", "seed", "split", "status", "metric", "value"]
ID_COLUMNS = ["model", "method", "seed", "split", "status"]
NO_SEED = -1  # the seed of a row that has none (popularity): pandas keeps the column integer
UNDER_WAY = ("running", "starting")


class StillRunning(ConfigError):
    """A run to export has not finished; str(e) says what to do from the command line."""

    def __init__(self, run: Path):
        self.run = run
        super().__init__(f"run '{run}' is still running; export it when it has finished, or pass --partial "
                         "(its finished fits, marked in a partial column)")


@dataclass
class Tidy:
    frame: pd.DataFrame
    read: list[Path] = field(default_factory=list)  # runs whose results were read
    notes: list[str] = field(default_factory=list)  # one line per skipped run or run with skipped rows
    unreadable: list[str] = field(default_factory=list)  # why each skipped run could not be read


def running_runs(run_dirs: Iterable[Path]) -> list[Path]:
    """The runs whose process is still writing them (or is starting to)."""
    return [Path(d) for d in run_dirs if Path(d).is_dir() and run_status(Path(d)) in UNDER_WAY]


def refuse_running(run_dirs: Iterable[Path]) -> None:
    """Raise StillRunning for the first run still under way."""
    running = running_runs(run_dirs)
    if running:
        raise StillRunning(running[0])


def distinct_runs(run_dirs: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """Each run directory once (by where it is, however it was spelt), and a note per repeat."""
    seen: dict[Path, Path] = {}
    notes = []
    for run in map(Path, run_dirs):
        key = run.resolve()
        if key in seen:
            again = "named twice" if run == seen[key] else f"is '{seen[key]}' again"
            notes.append(f"'{run}' {again}: exported once")
        else:
            seen[key] = run
    return list(seen.values()), notes


def run_labels(runs: list[Path]) -> dict[Path, str]:
    """The `run` column: the folder name, or the path as given where two runs share a name."""
    names = [r.name for r in runs]
    return {r: r.name if names.count(r.name) == 1 else str(r) for r in runs}


def tidy_results(run_dirs: Iterable[Path], partial: Iterable[Path] | None = None) -> Tidy:
    """Melt each run's results into long form; only metric columns (NAME@K) become rows. With
    `partial` (the runs still running, maybe none), a `partial` column marks those runs' rows."""
    runs, repeats = distinct_runs(run_dirs)
    labels = run_labels(runs)
    marked = None if partial is None else {Path(p).resolve() for p in partial}
    columns = COLUMNS + ([] if marked is None else ["partial"])
    frames, tidy = [], Tidy(pd.DataFrame(columns=columns), notes=repeats)
    for run in runs:
        long = _read_long(run, tidy)
        if long is None:
            continue
        long.insert(0, "run", labels[run])
        if marked is not None:
            long["partial"] = run.resolve() in marked
        frames.append(long)
    if frames:
        tidy.frame = pd.concat(frames, ignore_index=True)[columns].dropna(subset=["value"]).reset_index(drop=True)
    return tidy


def _read_long(run: Path, tidy: Tidy) -> pd.DataFrame | None:
    """One run's metric cells in long form (None when it has none); what was skipped goes to tidy."""
    try:
        results = read_results_file(run)
    except Unreadable as e:
        tidy.unreadable.append(str(e))
        tidy.notes.append(f"skipped run '{run}': {e}")
        return None
    tidy.read.append(run)
    if results.bad:
        tidy.notes.append(f"skipped {results.bad_text()} of '{results.path}'")
    df = results.frame()
    if df.empty:
        return None
    if "status" not in df:  # written before rows had a status: every fit then finished
        df["status"] = "finished"
    df["status"] = df["status"].fillna("finished")
    df["seed"] = df["seed"].fillna(NO_SEED).astype("int64")
    return df.melt(id_vars=[c for c in ID_COLUMNS if c in df], value_vars=results.metrics,
                   var_name="metric", value_name="value")


def export_tidy(run_dirs: Iterable[Path], out: Path, partial: bool = False) -> Tidy:
    """Write the tidy CSV (creating its folder); raises ConfigError, writing nothing, when a run
    is still running (unless `partial`), no run could be read or `out` cannot be written."""
    run_dirs = list(run_dirs)
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"'{out}' is a folder; pass a CSV file path for the export, e.g. '{out / 'tidy.csv'}'")
    if not partial:
        refuse_running(run_dirs)
    # with `partial` the column is there even when every run has finished: one schema per flag
    tidy = tidy_results(run_dirs, running_runs(run_dirs) if partial else None)
    if not tidy.read:
        raise ConfigError(f"no run could be read ({'; '.join(tidy.unreadable)}); nothing written")
    try:
        atomic_write(out, tidy.frame.to_csv(index=False))
    except OSError as e:
        raise ConfigError(f"cannot write '{out}': {e.strerror or e}; pass another --out path")
    return tidy
