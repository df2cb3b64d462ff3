"""One comparison from several runs of the same experiment (e.g. methods or seeds run in parallel).

Runs combine only when they distilled the same teacher into the same student on the same data
and split, and any method present in two runs was run with the same settings; otherwise the
merged table would compare unlike things. Reference rows (teacher, popularity) are kept once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from rcekd_core.errors import ConfigError
from rcekd_core.runs.store import CONFIG, RESULT_KEYS, RESULTS, RunDir

# sections of a run's config that define "the same experiment"
SHARED = ["data", "teacher", "teacher_train", "teacher_seed", "student", "student_train", "eval", "kd_positions"]
REFERENCES = {"teacher", "popularity"}
KEYS = RESULT_KEYS


def _read(run: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    rd = RunDir(run)
    try:
        results = pd.read_csv(rd.results)
        config = yaml.safe_load(rd.config.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"'{run}' has no {Path(e.filename).name}; pass finished run directories")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, yaml.YAMLError) as e:
        raise ConfigError(f"'{run}' has an unreadable {RESULTS} or {CONFIG} ({type(e).__name__}); "
                          "pass run directories written by rcekd distill")
    if not set(KEYS) <= set(results.columns) or not isinstance(config, dict):
        raise ConfigError(f"'{run}' is not a run written by rcekd distill ({RESULTS} lacks {', '.join(KEYS)})")
    results["seed"] = results["seed"].astype("Int64")  # reference rows have none: keep seeds integers
    return results, config


def _teacher_id(config: dict[str, Any]) -> str:
    return Path(str(config.get("runtime", {}).get("teacher_cache", ""))).name


def _same_teacher_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """The teachers' own metrics agree (a retrained teacher may differ even with the same config)."""
    metrics = [c for c in a.columns if "@" in c and c in b.columns]
    ta, tb = (x[x["model"] == "teacher"].set_index("split")[metrics].sort_index() for x in (a, b))
    if ta.empty or tb.empty:
        return True
    return ta.index.equals(tb.index) and bool(((ta - tb).abs() <= 1e-6).all().all())


def _first_difference(a: Any, b: Any, path: str) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}")
    return f"{path} {a!r} vs {b!r}"


def combine_runs(runs: list[Path]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(results of all runs, provenance: the runs and each method's settings); raises ConfigError."""
    if len(runs) < 2:
        raise ConfigError("combine needs at least two run directories")
    loaded = [(Path(r), *_read(Path(r))) for r in runs]
    first, first_results, base = loaded[0]
    for run, results, cfg in loaded[1:]:
        for key in SHARED:
            if cfg.get(key) != base.get(key):
                raise ConfigError(f"'{first}' and '{run}' differ in {_first_difference(base.get(key), cfg.get(key), key)}; "
                                  "combine runs of one experiment (only methods and seeds may differ)")
        if _teacher_id(cfg) != _teacher_id(base) or not _same_teacher_rows(first_results, results):
            raise ConfigError(f"'{first}' and '{run}' distilled different teachers (another cache entry or "
                              "other teacher metrics); combine runs of one teacher")
    methods: dict[str, dict[str, Any]] = {}  # method -> the first run that has it, and its settings
    frames = []
    seen: dict[tuple, Path] = {}
    for run, results, cfg in loaded:
        students = results[~results["model"].isin(REFERENCES)]
        for method in students["method"].unique():
            known = methods.setdefault(method, {"run": str(run), "settings": cfg.get(method)})
            if cfg.get(method) != known["settings"]:
                raise ConfigError(f"'{known['run']}' and '{run}' ran {method} with different settings "
                                  f"({_first_difference(known['settings'], cfg.get(method), method)}); "
                                  "combine one setting per method")
        for key in students[KEYS].itertuples(index=False):
            if tuple(key) in seen:
                raise ConfigError(f"{key.method} seed {key.seed} ({key.split}) is in both '{seen[tuple(key)]}' and "
                                  f"'{run}'; combine runs with distinct method × seed")
            seen[tuple(key)] = run
        frames.append(results if not frames else students)  # references: from the first run
    combined = pd.concat(frames, ignore_index=True)
    provenance = {"combined_from": [str(r) for r, _, _ in loaded], "teacher": _teacher_id(base),
                  "methods": methods}
    return combined, provenance
