"""The paper's data sets (CiteULike-t, Gowalla, Yelp 2018) from fixture files in their raw formats.

Each fixture is written here, in the exact layout of the real file, under a temporary
$RCEKD_HOME/raw/<name>/: CiteULike's count-prefixed users.dat lines, SNAP's tab-separated
Gowalla check-ins with ISO 8601 times (newest first, as SNAP lists them), Yelp's JSON lines
with every review field, low-star reviews and both date layouts.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rcekd_core.config import DataConfig
from rcekd_core.data import formats, loader, sources
from rcekd_core.errors import DataError
from rcekd_tui.cli import app

runner = CliRunner()

RAW_FILES = {
    "citeulike": "users.dat",
    "gowalla": "loc-gowalla_totalCheckins.txt",
    "yelp": "yelp_academic_dataset_review.json",
}




def place(home: Path, name: str, text: str, filename: str | None = None) -> Path:
    path = home / "raw" / name / (filename or RAW_FILES[name])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def one_line(excinfo: pytest.ExceptionInfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def unix(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def by_user(data) -> list[list[int]]:
    return [data.item[data.user == u].tolist() for u in range(data.n_users)]


def assert_chronological(data) -> None:
    assert np.all(np.diff(data.user) >= 0)
    same = data.user[1:] == data.user[:-1]
    assert np.all(np.diff(data.timestamp)[same] >= 0)


# ---- CiteULike-t ----------------------------------------------------------------------------

# Line u is user u. "5-core users" (the authors' README: kcore4user 5, kcore4item 0): users with
# >= 5 items stay, items are not filtered (7 and 10 are in one library only and stay).
CITEULIKE = (
    "5 0 1 2 3 4\n"  # user 0: kept
    "4 0 1 2 9\n"  # user 1: 4 items, dropped (and item 9 with it)
    "6 7 3 0 10 5 1\n"  # user 2: kept, in this order (no timestamps: the file's order)
    "\n"  # user 3 has no items
    "5 4 3 2 1 0\n"  # user 4: kept, reversed
)


def test_citeulike_users_only_5core_in_file_order(home, monkeypatch, without_expected):
    without_expected("citeulike")
    place(home, "citeulike", CITEULIKE)
    data = loader.load_interactions(DataConfig(source="citeulike"))
    assert (data.n_users, data.n_items, len(data)) == (3, 8, 16)
    # items re-indexed in numeric id order 0 1 2 3 4 5 7 10 -> 1..8
    assert by_user(data) == [[1, 2, 3, 4, 5], [7, 4, 1, 8, 6, 2], [5, 4, 3, 2, 1]]
    assert data.timestamp[data.user == 1].tolist() == [0, 1, 2, 3, 4, 5]  # position in the line
    assert_chronological(data)
    info = loader.dataset_info(DataConfig(source="citeulike"))
    assert (info["kcore"], info["kcore_on"]) == (5, "users only")


def test_citeulike_reader_exact_rows(tmp_path):
    p = tmp_path / "users.dat"
    p.write_text("2 17 0042\n0\n1 3\n")
    df = formats.read_citeulike_users(p)
    assert [tuple(r) for r in df.itertuples(index=False)] == [("0", "17", 0.0), ("0", "42", 1.0), ("2", "3", 0.0)]


@pytest.mark.parametrize(
    "text, line",
    [
        ("5 0 1 2 3 4\n3 1 2\n", 2),  # says 3 items, lists 2
        ("5 0 1 2 3 4\n\n2 a 1\n", 3),  # not an integer
        ("2 1 2\n2 1 2.5\n", 2),
    ],
)
def test_citeulike_malformed_line(home, text, line):
    path = place(home, "citeulike", text)
    with pytest.raises(DataError) as e:
        loader.load_interactions(DataConfig(source="citeulike"))
    msg = one_line(e)
    assert str(path) in msg and f"malformed line {line} " in msg


# ---- Gowalla ----------------------------------------------------------------------------------

def gowalla_rows() -> list[tuple[int, str, int]]:
    """(user, time, location): users 0..10 visit locations 100..110 -> the 10-core."""
    rows = []
    for u in range(11):
        for j in range(11):
            rows.append((u, f"2010-{1 + j % 9:02d}-{1 + u:02d}T{j:02d}:{u:02d}:27Z", 100 + j))
    rows.append((0, "2010-10-19T23:55:27Z", 105))  # a repeat, later: merged at this latest visit
    # user 50: 10 check-ins at 9 distinct places -> repeats merged first, so fewer than 10: dropped
    rows += [(50, f"2010-03-0{1 + j}T10:00:00Z", 100 + j) for j in range(9)]
    rows.append((50, "2010-03-20T10:00:00Z", 100))
    # location 999: 9 visitors (users 0..7 and 60) -> dropped; then user 60 (9 left) is dropped too
    rows += [(u, "2010-11-01T08:00:00Z", 999) for u in range(8)]
    rows += [(60, f"2010-05-0{1 + j}T10:00:00Z", 100 + j) for j in range(9)]
    rows.append((60, "2010-05-20T10:00:00Z", 999))
    return rows


def gowalla_text(rows) -> str:
    # SNAP lists each user's check-ins newest first; latitude/longitude as in the real file
    rows = sorted(rows, key=lambda r: (r[0], r[1]), reverse=True)
    return "".join(f"{u}\t{t}\t30.2359091167\t-97.7951395833\t{loc}\n" for u, t, loc in rows)


def test_gowalla_10core_merged_repeats_chronological(home, monkeypatch, without_expected):
    without_expected("gowalla")
    rows = gowalla_rows()
    place(home, "gowalla", gowalla_text(rows))
    data = loader.load_interactions(DataConfig(source="gowalla"))
    assert (data.n_users, data.n_items, len(data)) == (11, 11, 121)
    assert_chronological(data)
    first = sorted((t, loc) for u, t, loc in rows[:121] if u == 3)
    assert by_user(data)[3] == [loc - 99 for _, loc in first]
    # repeats are merged at the latest check-in, as the authors' data (RecBole's gowalla-merged
    # keeps the first line of each pair, and SNAP lists each user's check-ins newest first)
    user0 = data.user == 0
    assert data.timestamp[user0][data.item[user0] == 6].tolist() == [unix("2010-10-19T23:55:27Z")]
    assert by_user(data)[0][-1] == 6
    assert loader.dataset_info(DataConfig(source="gowalla"))["kcore"] == 10


def test_gowalla_gzip_and_blank_lines(home, monkeypatch, without_expected):
    without_expected("gowalla")
    path = home / "raw" / "gowalla" / "loc-gowalla_totalCheckins.txt.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wt") as fh:
        fh.write(gowalla_text(gowalla_rows()) + "\n")
    assert len(loader.load_interactions(DataConfig(source="gowalla"))) == 121
    df = formats.read_gowalla_checkins(place(home, "x", "0\t2010-10-19T23:55:27Z\t30.2\t-97.7\t22847\n\n", "c.txt"))
    assert [tuple(r) for r in df.itertuples(index=False)] == [("0", "22847", unix("2010-10-19T23:55:27Z"))]


@pytest.mark.parametrize(
    "bad, needle",
    [
        ("7\t2010-10-19T23:55:27Z\t30.2\t-97.7\n", "malformed line 3 "),  # no location id
        ("7\t2010-10-19 23:55:27\t30.2\t-97.7\t22847\n", "malformed line 3 "),  # not ISO 8601
        ("7\t2010-10-19T23:55:27Z\t30.2\t-97.7\t22847\t1\n", "line 3, saw 6"),  # a sixth field
        ("7 2010-10-19T23:55:27Z 30.2 -97.7 22847\n", "malformed line 3 "),  # spaces, not tabs
    ],
)
def test_gowalla_malformed_line(home, bad, needle):
    good = "0\t2010-10-19T23:55:27Z\t30.2\t-97.7\t22847\n"
    path = place(home, "gowalla", good + "\n" + bad + good)  # line 2 is blank: still counted
    with pytest.raises(DataError) as e:
        loader.load_interactions(DataConfig(source="gowalla"))
    msg = one_line(e)
    assert str(path) in msg and needle in msg
    assert "5 tab-separated fields" in msg or "not like 2010-10-19T23:55:27Z" in msg


# ---- Yelp 2018 --------------------------------------------------------------------------------

def yelp_id(kind: str, n: int) -> str:
    return f"{kind}{n:02d}-_x{'Q' * 17}"[:22]  # 22 characters like the real ids, with - and _


def review(n: int, user: str, business: str, stars, date: str, **extra) -> str:
    rec = {
        "review_id": f"r{n:021d}", "user_id": user, "business_id": business, "stars": stars,
        "useful": n % 3, "funny": 0, "cool": 1,
        "text": 'Great "tacos"\nand caf\u00e9 \u2014 5/5', "date": date, **extra,
    }
    return json.dumps(rec, ensure_ascii=n % 2 == 0)


def yelp_text() -> str:
    lines, n = [], 0
    for u in range(11):
        for b in range(11):
            stars = 4 + (u + b) % 2 if b != 3 else 4.0  # ints and floats, all >= 4
            date = f"2017-{1 + b:02d}-{1 + u:02d} {b:02d}:{u:02d}:00" if u != 2 else f"2012-{1 + b:02d}-05"
            lines.append(review(n, yelp_id("u", u), yelp_id("b", b), stars, date))
            n += 1
    # 10 reviews but 2 below 4 stars: 8 positives -> dropped by the 10-core
    for b in range(10):
        lines.append(review(n, yelp_id("u", 77), yelp_id("b", b), 3 if b < 2 else 5, "2018-01-01 00:00:00"))
        n += 1
    # a business everyone reviewed badly: no positive, gone
    lines += [review(n + u, yelp_id("u", u), yelp_id("b", 88), 2, "2018-02-02 12:00:00") for u in range(11)]
    return "\n".join(lines) + "\n"


def test_yelp_stars_filter_10core_chronological(home, monkeypatch, without_expected):
    without_expected("yelp")
    place(home, "yelp", yelp_text())
    data = loader.load_interactions(DataConfig(source="yelp"))
    assert (data.n_users, data.n_items, len(data)) == (11, 11, 121)
    assert_chronological(data)
    assert by_user(data)[0] == list(range(1, 12))  # businesses reviewed month after month
    assert data.timestamp[data.user == 2][0] == unix("2012-01-05T00:00:00Z")  # an older-edition date
    assert data.timestamp[data.user == 0][0] == unix("2017-01-01T00:00:00Z")


def test_yelp_reader_keeps_four_stars_and_up(tmp_path):
    p = tmp_path / "yelp_academic_dataset_review.json"
    p.write_text("\n".join([
        review(0, "A", "x", 4, "2018-07-07 22:09:11"),
        review(1, "A", "y", 3.0, "2018-07-08 22:09:11"),
        review(2, "B", "y", 5.0, "2016-05-28"),
    ]) + "\n")
    df = formats.read_yelp_reviews(p)
    assert [tuple(r) for r in df.itertuples(index=False)] == [
        ("A", "x", unix("2018-07-07T22:09:11Z")), ("B", "y", unix("2016-05-28T00:00:00Z")),
    ]


@pytest.mark.parametrize(
    "bad, needle",
    [
        ('{"review_id": "r", "user_id": "A", "business_id": "x", "stars": 5, "da', "malformed line 3 "),
        (review(9, "A", "x", 5, "2018-07-07 22:09:11").replace('"stars": 5, ', ""), "line 3 lacks the field 'stars'"),
        (review(9, "A", "x", 5, "07/07/2018"), "malformed line 3 "),
        (review(9, "A", "x", "five", "2018-07-07 22:09:11"), "malformed line 3 "),
        ("[1, 2]", "malformed line 3 "),
    ],
)
def test_yelp_malformed_line(home, bad, needle):
    good = review(0, "A", "x", 5, "2018-07-07 22:09:11")
    path = place(home, "yelp", good + "\n\n" + bad + "\n" + good + "\n")
    with pytest.raises(DataError) as e:
        loader.load_interactions(DataConfig(source="yelp"))
    msg = one_line(e)
    assert str(path) in msg and needle in msg


def test_yelp_no_positive_review(home):
    place(home, "yelp", review(0, "A", "x", 2, "2018-07-07 22:09:11") + "\n")
    with pytest.raises(DataError) as e:
        loader.load_interactions(DataConfig(source="yelp"))
    assert "stars >= 4" in one_line(e)


# ---- all three: registry, missing file, published statistics, the CLI -------------------------

FIXTURES = {"citeulike": CITEULIKE, "gowalla": gowalla_text(gowalla_rows()), "yelp": yelp_text()}
STATS = {"citeulike": (3, 8, 16), "gowalla": (11, 11, 121), "yelp": (11, 11, 121)}
PUBLISHED = {
    "citeulike": {"users": 5219, "items": 25181, "interactions": 125580},
    "gowalla": {"users": 29858, "items": 40988, "interactions": 1027464},
    "yelp": {"users": 41801, "items": 26512, "interactions": 1022604},
}


def test_registry():
    for name, expected in PUBLISHED.items():
        s = sources.get_source(name)
        assert s.expected == expected and RAW_FILES[name] in s.description
        assert f"raw/{name}/" in s.description
    assert sources.SOURCES["citeulike"].default_kcore == 5 and not sources.SOURCES["citeulike"].kcore_items
    assert sources.SOURCES["gowalla"].default_kcore == 10 and sources.SOURCES["gowalla"].kcore_items
    assert sources.SOURCES["yelp"].default_kcore == 10 and sources.SOURCES["yelp"].kcore_items


@pytest.mark.parametrize("name", list(RAW_FILES))
def test_missing_file_names_the_path(home, name):
    with pytest.raises(DataError) as e:
        loader.load_interactions(DataConfig(source=name))
    msg = one_line(e)
    assert f"place it at {home / 'raw' / name / RAW_FILES[name]}" in msg and "http" in msg


@pytest.mark.parametrize("name", list(RAW_FILES))
def test_published_statistics_are_checked(home, name):
    place(home, name, FIXTURES[name])
    with pytest.raises(DataError) as e:  # a fixture is not the real data set
        loader.load_interactions(DataConfig(source=name))
    msg = one_line(e)
    want = PUBLISHED[name]["users"]
    assert f"expected {want} users" in msg and f"got {STATS[name][0]}" in msg and str(home / "raw" / name) in msg
    # a non-default k-core has no published numbers, so no check
    assert len(loader.load_interactions(DataConfig(source=name, kcore=2))) > 0


def test_kcore_override_and_cache_key(home, monkeypatch, without_expected):
    without_expected("citeulike")
    place(home, "citeulike", CITEULIKE)
    assert loader.dataset_info(DataConfig(source="citeulike", kcore=6))["users"] == 1  # users only
    src = sources.get_source("citeulike")
    keys = {loader.cache_key(DataConfig(source="citeulike"), src, k) for k in (5, 6)}
    assert len(keys) == 2
    assert len(list((home / "processed").glob("*.npz"))) == 1


@pytest.mark.parametrize("name", list(RAW_FILES))
def test_cli_data_info_on_fixture(home, monkeypatch, name, without_expected):
    without_expected(name)
    place(home, name, FIXTURES[name])
    res = runner.invoke(app, ["data", "info", name])
    assert res.exit_code == 0, res.output
    users, items, interactions = STATS[name]
    out = {line.split(":")[0].strip(): line.split(":", 1)[1].strip() for line in res.output.splitlines()}
    assert (out["users"], out["items"], out["interactions"]) == (str(users), str(items), str(interactions))
    assert out["source"] == name and out["mean_length"] == f"{interactions / users:.2f}"


@pytest.mark.parametrize("name", list(RAW_FILES))
def test_cli_data_info_missing_file(home, name):
    res = runner.invoke(app, ["data", "info", name])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and str(home / "raw" / name / RAW_FILES[name]) in lines[0]


@pytest.mark.parametrize("name", list(RAW_FILES))
def test_presets_show(name):
    res = runner.invoke(app, ["presets", "show", name])
    assert res.exit_code == 0, res.output
    assert f"source: {name}" in res.output and "protocol: ratio" in res.output and "arch: mf" in res.output


REAL = {name: sources.rcekd_home() / "raw" / name / f for name, f in RAW_FILES.items()}


@pytest.mark.parametrize("name", list(RAW_FILES))
def test_real_file_published_statistics(name):
    """Runs only where the real file has been placed in the cache ($RCEKD_HOME/raw/<name>/)."""
    if not REAL[name].is_file() and not (name == "gowalla" and REAL[name].with_suffix(".txt.gz").is_file()):
        pytest.skip(f"the real {RAW_FILES[name]} is not in {REAL[name].parent}")
    data = loader.load_interactions(DataConfig(source=name))  # checks the published numbers
    assert (data.n_users, data.n_items, len(data)) == tuple(PUBLISHED[name].values())
    assert_chronological(data)
