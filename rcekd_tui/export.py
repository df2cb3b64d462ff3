"""One tidy CSV over several runs: (run, method, seed, split, metric, value). Engine-free.

Every run's results file is read strictly (resultsfile.py): a run whose file cannot be read is
skipped, malformed rows are left out, and each is one line in `notes`. Nothing is written
when no run could be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from rcekd_core.atomic import atomic_write
from rcekd_core.errors import ConfigError

from .resultsfile import Unreadable, read_results_file

COLUMNS = ["run", "method", "seed", "split", "status", "metric", "value"]
ID_COLUMNS = ["model", "method", "seed", "split", "status"]


@dataclass
class Tidy:
    frame: pd.DataFrame
    read: list[Path] = field(default_factory=list)  # runs whose results were read
    notes: list[str] = field(default_factory=list)  # one line per skipped run or run with skipped rows
    unreadable: list[str] = field(default_factory=list)  # why each skipped run could not be read


def tidy_results(run_dirs: Iterable[Path]) -> Tidy:
    """Melt each run's results into long form; only metric columns (NAME@K) become rows."""
    frames, tidy = [], Tidy(pd.DataFrame(columns=COLUMNS))
    for run in map(Path, run_dirs):
        try:
            results = read_results_file(run)
        except Unreadable as e:
            tidy.unreadable.append(str(e))
            tidy.notes.append(f"skipped run '{run}': {e}")
            continue
        tidy.read.append(run)
        if results.bad:
            tidy.notes.append(f"skipped {results.bad_text()} of '{results.path}'")
        df = results.frame()
        if df.empty:
            continue
        if "status" not in df:  # written before rows had a status: every fit then finished
            df["status"] = "finished"
        df["status"] = df["status"].fillna("finished")
        long = df.melt(id_vars=[c for c in ID_COLUMNS if c in df], value_vars=results.metrics,
                       var_name="metric", value_name="value")
        long.insert(0, "run", run.name)
        frames.append(long)
    if frames:
        tidy.frame = pd.concat(frames, ignore_index=True)[COLUMNS].dropna(subset=["value"]).reset_index(drop=True)
    return tidy


def export_tidy(run_dirs: Iterable[Path], out: Path) -> Tidy:
    """Write the tidy CSV (creating its folder); raises ConfigError, writing nothing, when no run
    could be read or `out` cannot be written."""
    run_dirs = list(run_dirs)
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"'{out}' is a folder; pass a CSV file path for the export, e.g. '{out / 'tidy.csv'}'")
    tidy = tidy_results(run_dirs)
    if not tidy.read:
        raise ConfigError(f"no run could be read ({'; '.join(tidy.unreadable)}); nothing written")
    try:
        atomic_write(out, tidy.frame.to_csv(index=False))
    except OSError as e:
        raise ConfigError(f"cannot write '{out}': {e.strerror or e}; pass another --out path")
    return tidy
