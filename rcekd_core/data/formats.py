"""Parsers of raw interaction files into one frame: user (str), item (str), timestamp (float64).

Every parser fails with a one-line DataError naming the file, the problem and the fix, so
the CLI can show it as is. Parsers keep every row (ratings are ignored: implicit feedback);
deduplication, filtering and ordering belong to preprocess.py. One exception: Yelp reviews
are positives only from 4 stars (the paper's definition), so read_yelp_reviews drops the others.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import math
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

COLUMNS = ["user", "item", "timestamp"]
_POSITION_NAMES = {"user": 0, "item": 1, "timestamp": 2}
# --set data.sep=\t arrives as a backslash and a t; accept it and a few spelled-out names.
_SEP_ALIASES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "space": " "}


def _short(value: object, limit: int = 40) -> str:
    """repr() of a value cut to one short line, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path or place the file there")
    if not path.is_file():
        raise DataError(f"{path}: is not a regular file; pass the path of the data file itself")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty; re-download it or pass a file with interactions")


def _read_table(
    source: Path | io.IOBase, path: Path, sep: str, header: bool, hint: str | None = None, **options
) -> pd.DataFrame:
    """pd.read_csv with every field as text, turning pandas errors into DataError.

    hint: the fix named for a malformed line (default: check the separator with --set
    data.sep); options: further read_csv arguments (names, quoting, ...)."""
    try:
        return pd.read_csv(
            source,
            sep=sep,
            header=0 if header else None,
            dtype=str,
            na_filter=False,
            engine="python" if len(sep) > 1 else "c",
            **options,
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file has no rows; pass a file with interactions") from None
    except pd.errors.ParserError as e:
        found = re.search(r"Expected \d+ fields in line \d+, saw \d+", str(e))
        detail = found.group(0).lower() if found else "cannot split lines into fields"
        fix = hint or (
            f"fix or remove that line, or check the separator ({_short(sep)}; change it with "
            "--set data.sep=...)"
        )
        raise DataError(f"{path}: malformed line ({detail}); {fix}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file; convert it to UTF-8 text") from None
    except (OSError, zlib.error, EOFError) as e:
        raise DataError(f"{path}: cannot be read ({e.__class__.__name__}); re-create the file") from None


def _finish(path: Path, user: pd.Series, item: pd.Series, time: pd.Series) -> pd.DataFrame:
    """Validate the three columns and build the standard frame."""
    if len(user) == 0:
        raise DataError(f"{path}: file has no data rows; pass a file with interactions")
    for name, col in (("user", user), ("item", item), ("timestamp", time)):
        blank = col.isna().to_numpy() | (col.astype(str).str.strip() == "").to_numpy()
        if blank.any():
            row = int(np.argmax(blank)) + 1
            raise DataError(
                f"{path}: malformed line (data row {row} has no {name}); "
                "fix or remove that line, or check the separator"
            )
    ts = pd.to_numeric(time, errors="coerce").astype("float64")
    bad = ts.isna().to_numpy() | ~np.isfinite(ts.to_numpy())
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{path}: non-numeric timestamp {_short(time.iloc[row])} in data row {row + 1} "
            f"(user {_short(user.iloc[row])}); timestamps must be numbers such as Unix seconds "
            "— fix that row or point data.time_col at the right column"
        )
    return pd.DataFrame(
        {
            "user": user.astype(str).str.strip().to_numpy(dtype=object),
            "item": item.astype(str).str.strip().to_numpy(dtype=object),
            "timestamp": ts.to_numpy(dtype="float64"),
        }
    )


def _positional(path: Path, df: pd.DataFrame, needed: int, layout: str) -> pd.DataFrame:
    if df.shape[1] < needed:
        raise DataError(
            f"{path}: expected {needed} fields per line ({layout}) but found {df.shape[1]}; "
            "is this the right file and separator?"
        )
    return df


def read_udata(path: str | Path) -> pd.DataFrame:
    """ML-100k u.data: user, item, rating, timestamp separated by tabs, no header."""
    path = Path(path)
    check_file(path)
    df = _positional(path, _read_table(path, path, "\t", False), 4, "user, item, rating, timestamp")
    return _finish(path, df[0], df[1], df[3])


def read_ratings_csv(path: str | Path) -> pd.DataFrame:
    """Amazon ratings_*.csv: user,item,rating,timestamp, no header."""
    path = Path(path)
    check_file(path)
    df = _positional(path, _read_table(path, path, ",", False), 4, "user,item,rating,timestamp")
    return _finish(path, df[0], df[1], df[3])


def read_ratings_dat(path: str | Path) -> pd.DataFrame:
    """ML-1M ratings.dat: UserID::MovieID::Rating::Timestamp.

    '::' is turned into tabs in memory so the fast C parser can be used (the python engine
    needed for a two-character separator is ~10x slower on ML-1M's million lines).
    """
    path = Path(path)
    check_file(path)
    try:
        data = path.read_bytes().replace(b"::", b"\t")
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.__class__.__name__}); check permissions") from None
    df = _read_table(io.BytesIO(data), path, "\t", False)
    df = _positional(path, df, 4, "UserID::MovieID::Rating::Timestamp")
    return _finish(path, df[0], df[1], df[3])


def _strip_type(name: str) -> str:
    """RecBole headers carry types ('user_id:token'); match on the bare name."""
    return name.split(":", 1)[0].strip()


def read_inter(path: str | Path) -> pd.DataFrame:
    """RecBole atomic .inter file: tab-separated with a typed header (user_id:token ...)."""
    path = Path(path)
    check_file(path)
    df = _read_table(path, path, "\t", True)
    bare = {_strip_type(c): c for c in df.columns}
    missing = [c for c in ("user_id", "item_id", "timestamp") if c not in bare]
    if missing:
        raise DataError(
            f"{path}: header lacks {', '.join(missing)} (found: {', '.join(map(str, df.columns))}); "
            "a RecBole .inter file needs user_id, item_id and timestamp — for other layouts "
            "use --data-file with --set data.user_col=... data.item_col=... data.time_col=..."
        )
    return _finish(path, df[bare["user_id"]], df[bare["item_id"]], df[bare["timestamp"]])


def _parse_record(line: str) -> object:
    """One review: strict JSON first (fast), else a Python literal. Never eval."""
    try:
        return json.loads(line)
    except ValueError:
        return ast.literal_eval(line)


def read_amazon_json_gz(path: str | Path) -> pd.DataFrame:
    """Amazon 2014 reviews_*.json.gz: one dict per line (Python literal or JSON)."""
    path = Path(path)
    check_file(path)
    users: list[str] = []
    items: list[str] = []
    times: list[object] = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = _parse_record(line)
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    rec = None
                if not isinstance(rec, dict):
                    raise DataError(
                        f"{path}: malformed line {lineno} (not a dict literal or JSON object); "
                        "the download may be truncated — delete the file and fetch it again"
                    )
                try:
                    users.append(rec["reviewerID"])
                    items.append(rec["asin"])
                    times.append(rec["unixReviewTime"])
                except KeyError as e:
                    raise DataError(
                        f"{path}: line {lineno} lacks the field {e.args[0]!r} (needs reviewerID, "
                        "asin, unixReviewTime); is this an Amazon 2014 reviews file?"
                    ) from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise DataError(
            f"{path}: cannot be read as gzip text ({e.__class__.__name__}); "
            "the download may be truncated — delete the file and fetch it again"
        ) from None
    return _finish(
        path,
        pd.Series(users, dtype=object),
        pd.Series(items, dtype=object),
        pd.Series(times, dtype=object),
    )


def default_sep(path: Path) -> str:
    """Tab for .tsv/.inter/.txt (also gzipped), comma otherwise."""
    suffixes = [s for s in path.suffixes if s.lower() not in (".gz", ".bz2", ".zip", ".xz")]
    return "\t" if suffixes and suffixes[-1].lower() in (".tsv", ".inter", ".txt") else ","


def _named_column(path: Path, df: pd.DataFrame, name: str, setting: str) -> pd.Series:
    if name in df.columns:
        return df[name]
    bare = {_strip_type(str(c)): c for c in df.columns}
    if name in bare:
        return df[bare[name]]
    raise DataError(
        f"{path}: no column {name!r} (found: {', '.join(map(str, df.columns))}); "
        f"set the right one with --set data.{setting}=NAME (or data.header=false for no header)"
    )


def _positional_column(path: Path, df: pd.DataFrame, spec: str, setting: str) -> pd.Series:
    spec = str(spec).strip()
    pos = _POSITION_NAMES.get(spec)
    if pos is None:
        if not spec.isdigit():
            raise DataError(
                f"{path}: data.header is false, so data.{setting} must be a 0-based column "
                f"position such as 0, 1, 2; got {spec!r} — fix it with --set data.{setting}=N"
            )
        pos = int(spec)
    if pos >= df.shape[1]:
        raise DataError(
            f"{path}: data.{setting}={spec} but lines have only {df.shape[1]} fields "
            f"(positions 0..{df.shape[1] - 1}); fix it with --set data.{setting}=N or check data.sep"
        )
    return df[pos]


def read_user_file(
    path: str | Path,
    sep: str | None = None,
    user_col: str = "user",
    item_col: str = "item",
    time_col: str = "timestamp",
    header: bool = True,
) -> pd.DataFrame:
    """Any CSV/TSV the user names; columns by header name, or by position when header=False."""
    path = Path(path)
    check_file(path)
    sep = default_sep(path) if sep is None else _SEP_ALIASES.get(sep, sep)
    df = _read_table(path, path, sep, header)
    pick = _named_column if header else _positional_column
    user = pick(path, df, user_col, "user_col")
    item = pick(path, df, item_col, "item_col")
    time = pick(path, df, time_col, "time_col")
    return _finish(path, user, item, time)


# ---- the paper's data sets (CiteULike-t, Gowalla, Yelp 2018) ---------------------------------

_INTEGER = re.compile(r"[0-9]+")
GOWALLA_LAYOUT = "user, check-in time, latitude, longitude, location id"
GOWALLA_TIME = "%Y-%m-%dT%H:%M:%SZ"  # ISO 8601 in UTC, e.g. 2010-10-19T23:55:27Z
YELP_FIELDS = ("user_id", "business_id", "stars", "date")
YELP_DATES = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")  # recent editions, then older ones


def _unix_seconds(times: pd.Series) -> pd.Series:
    """Naive datetimes (read as UTC) -> float Unix seconds."""
    return (times - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _unreadable(path: Path, e: BaseException) -> DataError:
    if isinstance(e, UnicodeDecodeError):
        return DataError(f"{path}: not a UTF-8 text file; is this the right file? re-download it")
    return DataError(
        f"{path}: cannot be read ({e.__class__.__name__}); the file may be truncated — re-download it"
    )


def read_citeulike_users(path: str | Path) -> pd.DataFrame:
    """CiteULike-t users.dat: line u (u = 0, 1, ...) is user u's library, "count item item ...":
    whitespace-separated integers, the first being the number of items that follow.

    There are no timestamps: an item's timestamp is its position in the line, so the
    chronological order is the order of the file (as the authors split it). A blank line is a
    user without items (it still takes its user number, as in the authors' reading)."""
    path = Path(path)
    check_file(path)
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    try:
        with _open_text(path) as fh:
            for index, line in enumerate(fh):
                tokens = line.split()
                if not tokens:
                    continue
                bad = next((t for t in tokens if not _INTEGER.fullmatch(t)), None)
                if bad is not None:
                    raise DataError(
                        f"{path}: malformed line {index + 1} ({_short(bad)} is not an item number; "
                        "lines are 'count item item ...' in integers); fix or remove that line"
                    )
                count, library = int(tokens[0]), tokens[1:]
                if count != len(library):
                    raise DataError(
                        f"{path}: malformed line {index + 1} (it says {count} items but lists "
                        f"{len(library)}); the file may be truncated — re-download users.dat"
                    )
                user = str(index)
                for position, item in enumerate(library):
                    users.append(user)
                    items.append(str(int(item)))
                    times.append(position)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise _unreadable(path, e) from None
    return _finish(
        path,
        pd.Series(users, dtype=object),
        pd.Series(items, dtype=object),
        pd.Series(times, dtype="float64"),
    )


def read_gowalla_checkins(path: str | Path) -> pd.DataFrame:
    """SNAP loc-gowalla_totalCheckins.txt (or .txt.gz): tab-separated user, check-in time
    (ISO 8601 UTC, 2010-10-19T23:55:27Z), latitude, longitude, location id; no header.
    The location is the item; every check-in is a row (repeats are merged in preprocess.py)."""
    path = Path(path)
    check_file(path)
    fix = f"fix or remove that line; lines are 5 tab-separated fields ({GOWALLA_LAYOUT})"
    df = _read_table(
        path, path, "\t", False, hint=fix,
        names=range(5), quoting=csv.QUOTE_NONE, skip_blank_lines=False,
    )
    df = df[[0, 1, 4]]
    filled = (df != "").to_numpy()
    blank = ~filled.any(axis=1)  # an empty line: skipped
    short = ~blank & ~filled.all(axis=1)
    if short.any():
        line = int(np.argmax(short)) + 1
        raise DataError(f"{path}: malformed line {line} (a field is missing); {fix}")
    df = df[~blank]
    times = pd.to_datetime(df[1], format=GOWALLA_TIME, errors="coerce")
    bad = times.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{path}: malformed line {int(df.index[row]) + 1} (check-in time {_short(df[1].iloc[row])} "
            "is not like 2010-10-19T23:55:27Z); fix or remove that line"
        )
    return _finish(path, df[0], df[4], _unix_seconds(times))


def read_yelp_reviews(path: str | Path, min_stars: float = 4.0) -> pd.DataFrame:
    """Yelp Open Dataset yelp_academic_dataset_review.json: one JSON object per line with
    user_id, business_id, stars and date ("YYYY-MM-DD HH:MM:SS"; older editions "YYYY-MM-DD",
    local time, read as UTC). Keeps the reviews with stars >= min_stars (the paper: 4)."""
    path = Path(path)
    check_file(path)
    users: list[str] = []
    items: list[str] = []
    dates: list[str] = []
    lines: list[int] = []
    needs = ", ".join(YELP_FIELDS)
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except (ValueError, RecursionError):
                    rec = None
                if not isinstance(rec, dict):
                    raise DataError(
                        f"{path}: malformed line {lineno} (not a JSON object); the file may be "
                        "truncated — extract yelp_academic_dataset_review.json again"
                    )
                missing = next((f for f in YELP_FIELDS if f not in rec), None)
                if missing is not None:
                    raise DataError(
                        f"{path}: line {lineno} lacks the field {missing!r} (needs {needs}); "
                        "is this yelp_academic_dataset_review.json?"
                    )
                stars, user, item, date = (rec[f] for f in ("stars", "user_id", "business_id", "date"))
                if isinstance(stars, bool) or not isinstance(stars, (int, float)) or not math.isfinite(stars):
                    raise DataError(
                        f"{path}: malformed line {lineno} (stars {_short(stars)} is not a number); "
                        "fix or remove that line"
                    )
                if stars < min_stars:
                    continue
                for name, value in (("user_id", user), ("business_id", item), ("date", date)):
                    if not isinstance(value, str) or not value.strip():
                        raise DataError(
                            f"{path}: malformed line {lineno} ({name} {_short(value)} is not a "
                            "non-empty string); fix or remove that line"
                        )
                users.append(user)
                items.append(item)
                dates.append(date)
                lines.append(lineno)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise _unreadable(path, e) from None
    if not users:
        raise DataError(
            f"{path}: no review has stars >= {min_stars:g}; is this yelp_academic_dataset_review.json?"
        )
    text = pd.Series(dates, dtype=object)
    times = pd.to_datetime(text, format=YELP_DATES[0], errors="coerce")
    for fmt in YELP_DATES[1:]:
        left = times.isna()
        if left.any():
            times[left] = pd.to_datetime(text[left], format=fmt, errors="coerce")
    bad = times.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{path}: malformed line {lines[row]} (date {_short(dates[row])} is not like "
            "2018-07-07 22:09:11); fix or remove that line"
        )
    return _finish(
        path,
        pd.Series(users, dtype=object),
        pd.Series(items, dtype=object),
        _unix_seconds(times),
    )
