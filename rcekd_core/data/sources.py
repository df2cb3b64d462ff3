"""Named data sources: where each raw file comes from and what it must look like after loading.

Raw files live in `$RCEKD_HOME/raw/<name>/` (default ~/.cache/rcekd). Each loader prefers a file
already on disk and downloads only as a last resort, so offline machines work once the file
has been placed there by hand (the error message says where).
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import ConfigError, DataError
from ..settings import DataConfig
from . import formats
from .download import extract_member, fetch

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
BEAUTY_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_Beauty_5.json.gz"
RECBOLE_ML100K = "recbole/dataset_example/ml-100k/ml-100k.inter"
# The paper's general-recommendation data sets: no download (Yelp needs its terms accepted);
# the error names the page to get the file from and the path to place it at.
CITEULIKE_URL = "https://github.com/changun/CollMetric/tree/master/citeulike-t"
GOWALLA_URL = "https://snap.stanford.edu/data/loc-gowalla.html"
YELP_URL = "https://www.yelp.com/dataset"
YELP_MIN_STARS = 4.0  # a review is a positive from 4 stars (the authors' star4pos: 4)


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    expected: dict | None  # users/items/interactions (mean_length) after default preprocessing
    default_kcore: int
    load_raw: Callable[[DataConfig, Path], pd.DataFrame]
    kcore_items: bool = True  # False: the k-core filters users only (CiteULike's "5-core users")
    repeats: str = "earliest"  # which interaction a repeated (user, item) pair keeps: or "latest"


def rcekd_home() -> Path:
    """Cache root: $RCEKD_HOME, else ~/.cache/rcekd."""
    env = os.environ.get("RCEKD_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rcekd"


def raw_dir(home: Path, name: str) -> Path:
    return home / "raw" / name


def recbole_ml100k() -> Path | None:
    """ML-100k shipped inside the RecBole wheel, located without importing recbole."""
    try:
        path = Path(importlib.metadata.distribution("recbole").locate_file(RECBOLE_ML100K))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def _movielens(home: Path, name: str, member: str) -> Path:
    """Cached extracted file of a GroupLens zip, downloading and extracting if needed."""
    d = raw_dir(home, name)
    target = d / Path(member).name
    if not target.is_file():
        archive = fetch(
            f"{GROUPLENS}/{name}.zip",
            d / f"{name}.zip",
            offline_hint=f"(or place the extracted {target.name} at {target})",
        )
        extract_member(archive, member, target)
    return target


def _ml100k(cfg: DataConfig, home: Path) -> pd.DataFrame:
    wheel = recbole_ml100k()
    if wheel is not None:
        return formats.read_inter(wheel)
    return formats.read_udata(_movielens(home, "ml-100k", "ml-100k/u.data"))


def _ml1m(cfg: DataConfig, home: Path) -> pd.DataFrame:
    return formats.read_ratings_dat(_movielens(home, "ml-1m", "ml-1m/ratings.dat"))


def _beauty(cfg: DataConfig, home: Path) -> pd.DataFrame:
    d = raw_dir(home, "beauty")
    reviews, ratings = d / "reviews_Beauty_5.json.gz", d / "ratings_Beauty.csv"
    if not reviews.is_file() and ratings.is_file():
        return formats.read_ratings_csv(ratings)
    fetch(BEAUTY_URL, reviews, offline_hint=f"(or place ratings_Beauty.csv at {ratings})")
    return formats.read_amazon_json_gz(reviews)


def _placed(home: Path, name: str, files: tuple[str, ...], page: str) -> Path:
    """The first of `files` present in raw/<name>/, else a one-line error naming where to put it."""
    d = raw_dir(home, name)
    for f in files:
        if (d / f).is_file():
            return d / f
    alt = "".join(f" (or {f})" for f in files[1:])
    raise DataError(
        f"{name}: raw file not found; download {files[0]} from {page} and place it at "
        f"{d / files[0]}{alt}"
    )


def _citeulike(cfg: DataConfig, home: Path) -> pd.DataFrame:
    return formats.read_citeulike_users(_placed(home, "citeulike", ("users.dat",), CITEULIKE_URL))


def _gowalla(cfg: DataConfig, home: Path) -> pd.DataFrame:
    files = ("loc-gowalla_totalCheckins.txt", "loc-gowalla_totalCheckins.txt.gz")
    return formats.read_gowalla_checkins(_placed(home, "gowalla", files, GOWALLA_URL))


def _yelp(cfg: DataConfig, home: Path) -> pd.DataFrame:
    path = _placed(home, "yelp", ("yelp_academic_dataset_review.json",), YELP_URL)
    return formats.read_yelp_reviews(path, YELP_MIN_STARS)


def _user_file(cfg: DataConfig, home: Path) -> pd.DataFrame:
    if not cfg.file:
        raise DataError("data source 'file' needs a file; pass --data-file PATH")
    return formats.read_user_file(
        Path(cfg.file).expanduser(), cfg.sep, cfg.user_col, cfg.item_col, cfg.time_col, cfg.header
    )


def _synthetic(cfg: DataConfig, home: Path) -> pd.DataFrame:
    from . import synthetic  # late: written separately; only needed for demo sources

    return synthetic.generate(cfg)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("demo", "synthetic clustered sequences (no download)", None, 0, _synthetic),
        Source("demo-large", "larger synthetic data set (no download)", None, 0, _synthetic),
        Source(
            "ml-100k",
            "MovieLens 100K (RecBole wheel copy, else GroupLens download)",
            {"users": 943, "items": 1682, "interactions": 100000},
            0,
            _ml100k,
        ),
        Source(
            "ml-1m",
            "MovieLens 1M (GroupLens download)",
            {"users": 6040, "items": 3706, "interactions": 1000209},
            0,
            _ml1m,
        ),
        Source(
            "beauty",
            "Amazon Beauty 2014, 5-core (SNAP download or ratings_Beauty.csv)",
            {"users": 22363, "items": 12101, "interactions": 198502, "mean_length": 8.88},
            5,
            _beauty,
        ),
        # The paper's data sets, as the authors' data/<name>/README records them
        # (github.com/woriazzc/RCEKD); users and items re-indexed in sorted id order.
        Source(
            "citeulike",
            "CiteULike-t: users.dat in $RCEKD_HOME/raw/citeulike/; users with >= 5 items "
            "(items unfiltered); no timestamps: file order",
            {"users": 5219, "items": 25181, "interactions": 125580},
            5,
            _citeulike,
            kcore_items=False,
        ),
        Source(
            "gowalla",
            "Gowalla check-ins (SNAP loc-gowalla_totalCheckins.txt[.gz] in "
            "$RCEKD_HOME/raw/gowalla/); repeats merged at the latest visit, 10-core",
            {"users": 29858, "items": 40988, "interactions": 1027464},
            10,
            _gowalla,
            # the authors' data merged repeats at the first line of each (user, location) in
            # SNAP's newest-first file (RecBole's gowalla-merged), i.e. at the latest check-in
            repeats="latest",
        ),
        Source(
            "yelp",
            "Yelp 2018 reviews (yelp_academic_dataset_review.json in $RCEKD_HOME/raw/yelp/); "
            "stars >= 4, 10-core",
            {"users": 41801, "items": 26512, "interactions": 1022604},
            10,
            _yelp,
        ),
        Source("file", "a CSV/TSV file you name with --data-file", None, 0, _user_file),
    )
}


def source_names() -> list[str]:
    return list(SOURCES)


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise ConfigError(
            f"unknown data.source '{name}'; choose one of: {', '.join(SOURCES)} "
            "(or pass --data-file PATH)"
        )
    return SOURCES[name]
