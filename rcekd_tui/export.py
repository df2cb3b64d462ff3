"""One tidy CSV over several runs: (run, method, seed, split, metric, value). Engine-free."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

COLUMNS = ["run", "method", "seed", "split", "metric", "value"]
ID_COLUMNS = ["model", "method", "seed", "split"]


def tidy_results(run_dirs: Iterable[Path]) -> pd.DataFrame:
    """Melt each run's results.csv into long form; only metric columns (NAME@K) become rows."""
    frames = []
    for d in run_dirs:
        d = Path(d)
        try:
            df = pd.read_csv(d / "results.csv")
        except (FileNotFoundError, pd.errors.EmptyDataError):
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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    return df
