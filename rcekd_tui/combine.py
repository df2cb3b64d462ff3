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

from .resultsfile import Unreadable, read_results_file

# sections of a run's config that define "the same experiment"
SHARED = ["data", "teacher", "teacher_train", "teacher_seed", "student", "student_train", "eval", "kd_positions"]
REFERENCES = {"teacher", "popularity"}
KEYS = RESULT_KEYS


def read_checked_run(run: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A run's results (`read_checked_results`) and config, or ConfigError naming the file
    that cannot be trusted."""
    return read_checked_results(run), _config(run)


def read_checked_results(run: Path) -> pd.DataFrame:
    """A folder's results.csv, every row of it, or ConfigError naming what cannot be trusted.

    Combining needs every row: a results file with a malformed or repeated row is refused,
    not combined without it.
    """
    try:
        found = read_results_file(run)
    except Unreadable as e:
        raise ConfigError(f"{e}; pass run directories written by rcekd distill")
    if found.bad:
        raise ConfigError(f"'{found.path}' has {found.bad_text()}; combine needs every row of a run, "
                          "so fix that file or re-run that run")
    results = found.frame()
    repeated = results[results.duplicated(KEYS, keep=False)]
    if not repeated.empty:
        r = repeated.iloc[0]
        raise ConfigError(f"'{found.path}' holds {r['method']} seed {r['seed']} ({r['split']}) more than once; "
                          "combine needs one row per model × method × seed × split")
    return results


def _config(run: Path) -> dict[str, Any]:
    path = RunDir(run).config
    try:
        config = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise ConfigError(f"'{run}' has no {CONFIG}; pass finished run directories")
    except OSError as e:
        raise ConfigError(f"cannot read '{path}': {e.strerror or e}")
    except UnicodeDecodeError:
        raise ConfigError(f"'{path}' is not UTF-8 text; pass run directories written by rcekd distill")
    except yaml.YAMLError as e:
        raise ConfigError(f"'{path}' is not valid YAML ({type(e).__name__}); "
                          "pass run directories written by rcekd distill")
    if not isinstance(config, dict):
        raise ConfigError(f"'{path}' is not a run's configuration (not a mapping); "
                          "pass run directories written by rcekd distill")
    return config


def _teacher_id(config: dict[str, Any]) -> str:
    runtime = config.get("runtime")
    return Path(str(runtime.get("teacher_cache", "") if isinstance(runtime, dict) else "")).name


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
    loaded = [(Path(r), *read_checked_run(Path(r))) for r in runs]
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
                  "methods": methods, "config": joined_config([cfg for _, _, cfg in loaded], methods)}
    return combined, provenance


def joined_config(configs: list[dict[str, Any]], methods: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The config of the combined experiment: the first run's, with the runs' method lists joined
    in order and each method's settings from the run that has it (what a table of it reads)."""
    config = dict(configs[0])
    config["methods"] = list(dict.fromkeys(m for c in configs if isinstance(c.get("methods"), list)
                                           for m in c["methods"]))
    config |= {m: known["settings"] for m, known in methods.items()}
    return config


def read_combined(folder: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A `runs combine` output's results and the joined config its combined.yaml keeps."""
    results = read_checked_results(folder)
    try:
        provenance = yaml.safe_load(RunDir(folder).combined.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read '{RunDir(folder).combined}' ({type(e).__name__}); combine the runs again")
    config = provenance.get("config") if isinstance(provenance, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(f"'{RunDir(folder).combined}' keeps no config (an older rcekd wrote it); pass the runs "
                          "it lists (combined_from) instead, or combine them again")
    return results, config


def check_out(out: Path) -> None:
    """A folder a combination may be written to: not a file, not one that holds results already."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file; pass a folder for the combined {RESULTS} and summary")
    if RunDir(out).holds_results():
        raise ConfigError(f"'{out}' already holds results; pass a new --out folder")


def write_folder(out: Path, combined: pd.DataFrame, provenance: dict[str, Any]) -> None:
    """The combined results, their provenance, summary and significance, into `out`."""
    from rcekd_core.report import tables

    target = RunDir(out)
    summary = tables(combined)
    try:
        target.create()
        target.write_results_frame(combined)
        target.write_combined(provenance)
        target.write_summary(*summary)
    except OSError as e:
        raise ConfigError(f"cannot write to '{out}': {e.strerror or e}; pass another --out folder")
