"""One tidy CSV over several runs: (run, method, seed, split, metric, value). Engine-free."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from rcekd_core.atomic import atomic_write
from rcekd_core.runs.store import RunDir

COLUMNS = ["run", "method", "seed", "split", "metric", "value"]
ID_COLUMNS = ["model", "method", "seed", "split"]


def tidy_results(run_dirs: Iterable[Path]) -> pd.DataFrame:
    """Melt each run's results into long form; only metric columns (NAME@K) become rows."""
    frames = []
    for d in map(RunDir, run_dirs):
        df = d.read_results()  # empty when missing or unreadable: that run adds nothing
        if df.empty:
            continue
        if "seed" in df:  # reference rows (popularity) have no seed: keep seeds integers
            df["seed"] = df["seed"].astype("Int64")
        metrics = [c for c in df.columns if "@" in c]
        long = df.melt(id_vars=[c for c in ID_COLUMNS if c in df], value_vars=metrics,
                       var_name="metric", value_name="value")
        long.insert(0, "run", d.name)
        frames.append(long)
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    return out[COLUMNS].dropna(subset=["value"])


def export_tidy(run_dirs: Iterable[Path], out: Path) -> pd.DataFrame:
    """Write the tidy CSV (creating its folder) and return the frame written."""
    df = tidy_results(run_dirs)
    atomic_write(Path(out), df.to_csv(index=False))
    return df
