"""load_interactions: source -> raw frame -> preprocess -> checks, cached as .npz.

The processed arrays are cached under $RCEKD_HOME/processed/<key>.npz; the key covers
everything that changes the result (source, user file identity, k-core, generator settings,
PREPROCESS_VERSION), so a stale cache is never reused. Bump PREPROCESS_VERSION whenever
preprocess.py changes its output.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..atomic import atomic_file
from ..errors import DataError
from ..settings import DataConfig
from .interactions import Interactions
from .preprocess import preprocess
from .sources import Source, get_source, raw_dir, rcekd_home

PREPROCESS_VERSION = 1
DEMO_PARAMS = ("n_users", "n_items", "n_clusters", "mean_len", "noise")
FILE_PARAMS = ("sep", "user_col", "item_col", "time_col", "header")

Progress = Callable[[str], None]


def resolve(cfg: DataConfig) -> tuple[Source, int]:
    """The source to read (a named file wins) and the effective k-core."""
    source = get_source("file" if cfg.file else cfg.source)
    return source, cfg.kcore if cfg.kcore > 0 else source.default_kcore


def item_kcore(source: Source, kcore: int) -> int:
    """The items' k-core threshold: the users' one, or 0 for a source that filters users only."""
    return kcore if source.kcore_items else 0


def cache_key(cfg: DataConfig, source: Source, kcore: int) -> str:
    parts: dict = {"source": source.name, "kcore": kcore, "version": PREPROCESS_VERSION}
    if not source.kcore_items:  # only there, so the keys of the other sources stay as they were
        parts["item_kcore"] = item_kcore(source, kcore)
    if source.repeats != "earliest":
        parts["repeats"] = source.repeats
    if source.name == "file" and cfg.file:
        path = Path(cfg.file).expanduser().resolve()
        st = path.stat() if path.is_file() else None
        parts["file"] = [str(path), st.st_size if st else None, st.st_mtime_ns if st else None]
        parts.update({k: getattr(cfg, k) for k in FILE_PARAMS})
    if source.name.startswith("demo"):
        parts.update({k: getattr(cfg, k) for k in DEMO_PARAMS})
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _read_cache(path: Path) -> Interactions | None:
    """Cached arrays, or None when absent or unreadable (then they are simply rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            return Interactions(
                user=z["user"], item=z["item"], timestamp=z["timestamp"],
                n_users=int(z["n_users"]), n_items=int(z["n_items"]),
            )
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def _write_cache(path: Path, data: Interactions) -> None:
    """Atomic write; a read-only cache only costs the speed-up, never the run."""
    try:
        with atomic_file(path, "wb") as fh:
            np.savez(
                fh, user=data.user, item=data.item, timestamp=data.timestamp,
                n_users=data.n_users, n_items=data.n_items,
            )
    except OSError:
        pass


def _check_expected(source: Source, data: Interactions, home: Path) -> None:
    stats = data.stats()
    for key, want in (source.expected or {}).items():
        got = round(stats[key], 2) if isinstance(want, float) else stats[key]
        if got != want:
            raise DataError(
                f"{source.name}: expected {want} {key} after preprocessing but got {got}; the raw "
                f"file may be corrupt or a different version — delete it from "
                f"{raw_dir(home, source.name)} and load again"
            )


def load_interactions(cfg: DataConfig, progress: Progress | None = None) -> Interactions:
    """Load the configured data set, from the processed cache when possible.

    progress, if given, receives short status lines ("loading ml-1m", ...).
    """
    say = progress or (lambda message: None)
    source, kcore = resolve(cfg)
    home = rcekd_home()
    cached_path = home / "processed" / f"{cache_key(cfg, source, kcore)}.npz"
    data = _read_cache(cached_path)
    if data is not None:
        say(f"loaded {source.name} from cache")
        return data
    say(f"reading {source.name}")
    raw = source.load_raw(cfg, home)
    side = "" if source.kcore_items else " on users"
    say(f"preprocessing {source.name} ({len(raw)} rows, {kcore}-core{side})")
    data = preprocess(raw, kcore, item_kcore(source, kcore), source.repeats)
    if kcore == source.default_kcore:  # published numbers hold for the default filtering only
        _check_expected(source, data, home)
    _write_cache(cached_path, data)
    return data


def dataset_info(cfg: DataConfig) -> dict:
    """Headline statistics of the configured data set (loads it, via the cache)."""
    source, kcore = resolve(cfg)
    stats = load_interactions(cfg).stats()
    info = {**stats, "source": source.name, "kcore": kcore}
    if not source.kcore_items:
        info["kcore_on"] = "users only"
    return info


__all__ = ["PREPROCESS_VERSION", "cache_key", "dataset_info", "item_kcore", "load_interactions", "resolve"]