"""Sources, downloads and the loader (cache, expected statistics, real ML-100k)."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rcekd_core.config import DataConfig
from rcekd_core.data import download, loader, sources
from rcekd_core.errors import ConfigError, DataError

UDATA = "".join(f"{u}\t{i}\t3\t{100 + 10 * u + i}\n" for u in range(1, 5) for i in range(1, 4))




def test_home(monkeypatch, tmp_path):
    monkeypatch.setenv("RCEKD_HOME", str(tmp_path))
    assert sources.rcekd_home() == tmp_path
    monkeypatch.delenv("RCEKD_HOME")
    assert sources.rcekd_home() == Path.home() / ".cache" / "rcekd"


def test_registry():
    assert {"demo", "demo-large", "ml-100k", "ml-1m", "beauty", "file"} <= set(sources.source_names())
    assert sources.SOURCES["beauty"].default_kcore == 5
    assert sources.SOURCES["ml-1m"].expected == {"users": 6040, "items": 3706, "interactions": 1000209}
    with pytest.raises(ConfigError) as e:
        sources.get_source("ml-20m")
    assert "ml-100k" in str(e.value) and "beauty" in str(e.value)
    with pytest.raises(ConfigError):
        loader.load_interactions(DataConfig(source="nope"))


def test_file_source_needs_a_file(home):
    with pytest.raises(DataError) as e:
        loader.load_interactions(DataConfig(source="file"))
    assert "--data-file PATH" in str(e.value)


def test_user_file_load_and_processed_cache(home, tmp_path, monkeypatch):
    f = tmp_path / "log.tsv"
    f.write_text("who\twhat\twhen\nb\tx\t2\na\tx\t1\na\ty\t0\n")
    cfg = DataConfig(source="demo", file=str(f), user_col="who", item_col="what", time_col="when")
    data = loader.load_interactions(cfg)
    assert data.user.tolist() == [0, 0, 1] and data.item.tolist() == [2, 1, 1]
    assert loader.dataset_info(cfg) == {
        "users": 2, "items": 2, "interactions": 3, "mean_length": 1.5, "source": "file", "kcore": 0,
    }
    cached = list((home / "processed").glob("*.npz"))
    assert len(cached) == 1 and not list((home / "processed").glob("*.tmp"))

    def boom(*a, **k):
        raise AssertionError("preprocess must not run on a cache hit")

    monkeypatch.setattr(loader, "preprocess", boom)
    again = loader.load_interactions(cfg)
    for field in ("user", "item", "timestamp"):
        assert np.array_equal(getattr(again, field), getattr(data, field))
    assert (again.n_users, again.n_items) == (2, 2)

    f.write_text("who\twhat\twhen\nb\tx\t2\na\tx\t1\n")  # the file changed: the key changes
    with pytest.raises(AssertionError, match="cache hit"):
        loader.load_interactions(cfg)
    with pytest.raises(AssertionError, match="cache hit"):  # different kcore: different key
        loader.load_interactions(dataclasses.replace(cfg, kcore=2))


def test_cache_key_covers_settings(tmp_path):
    base = DataConfig(source="demo")
    src, k = loader.resolve(base)
    key = loader.cache_key(base, src, k)
    assert key == loader.cache_key(DataConfig(source="demo"), src, k)
    assert key != loader.cache_key(dataclasses.replace(base, n_users=10), src, k)
    assert key != loader.cache_key(base, src, 3)
    ml = sources.get_source("ml-100k")
    assert loader.cache_key(DataConfig(source="ml-100k", n_users=10), ml, 0) == loader.cache_key(
        DataConfig(source="ml-100k"), ml, 0
    )


def test_corrupt_cache_is_rebuilt(home, tmp_path):
    f = tmp_path / "log.csv"
    f.write_text("user,item,timestamp\na,x,1\n")
    cfg = DataConfig(source="file", file=str(f))
    loader.load_interactions(cfg)
    (cache,) = (home / "processed").glob("*.npz")
    cache.write_bytes(b"garbage")
    assert len(loader.load_interactions(cfg)) == 1


def test_effective_kcore_uses_source_default(home):
    assert loader.resolve(DataConfig(source="beauty"))[1] == 5
    assert loader.resolve(DataConfig(source="beauty", kcore=10))[1] == 10
    assert loader.resolve(DataConfig(source="ml-1m"))[1] == 0
    assert loader.resolve(DataConfig(source="ml-1m", file="x.csv"))[0].name == "file"


def test_ml100k_falls_back_to_cached_udata_and_checks_expected(home, monkeypatch):
    monkeypatch.setattr(sources, "recbole_ml100k", lambda: None)
    raw = home / "raw" / "ml-100k" / "u.data"
    raw.parent.mkdir(parents=True)
    raw.write_text(UDATA)
    with pytest.raises(DataError) as e:  # a 12-row u.data is not ML-100k
        loader.load_interactions(DataConfig(source="ml-100k"))
    msg = str(e.value)
    assert "expected 943 users" in msg and "got 4" in msg and str(raw.parent) in msg
    assert not (home / "processed").exists() or not list((home / "processed").glob("*.npz"))
    # A non-default k-core has no published numbers, so no check.
    assert len(loader.load_interactions(DataConfig(source="ml-100k", kcore=2))) == 12


def test_ml100k_download_and_extract(home, tmp_path, monkeypatch, without_expected):
    monkeypatch.setattr(sources, "recbole_ml100k", lambda: None)
    without_expected("ml-100k")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with zipfile.ZipFile(mirror / "ml-100k.zip", "w") as zf:
        zf.writestr("ml-100k/u.data", UDATA)
        zf.writestr("ml-100k/README", "readme")
    monkeypatch.setattr(sources, "GROUPLENS", mirror.as_uri())
    data = loader.load_interactions(DataConfig(source="ml-100k"))
    assert data.stats()["interactions"] == 12 and data.n_users == 4 and data.n_items == 3
    assert (home / "raw" / "ml-100k" / "u.data").read_text() == UDATA
    assert not list((home / "raw" / "ml-100k").glob("*.part"))


def test_ml1m_offline_error_names_paths(home, monkeypatch):
    monkeypatch.setattr(sources, "GROUPLENS", "http://127.0.0.1:9")
    monkeypatch.setattr(download, "TIMEOUT_S", 5)
    with pytest.raises(DataError) as e:
        loader.load_interactions(DataConfig(source="ml-1m"))
    msg = str(e.value)
    d = home / "raw" / "ml-1m"
    assert str(d / "ml-1m.zip") in msg and str(d / "ratings.dat") in msg and "\n" not in msg
    assert not list(d.glob("*.part"))


def test_ml1m_reads_placed_ratings_dat(home, monkeypatch, without_expected):
    without_expected("ml-1m")
    d = home / "raw" / "ml-1m"
    d.mkdir(parents=True)
    (d / "ratings.dat").write_text("1::10::5::3\n1::11::5::2\n2::10::1::1\n")
    data = loader.load_interactions(DataConfig(source="ml-1m"))
    assert data.user.tolist() == [0, 0, 1] and data.item.tolist() == [2, 1, 1]


def test_beauty_accepts_ratings_csv_with_5core(home, monkeypatch, without_expected):
    without_expected("beauty")
    d = home / "raw" / "beauty"
    d.mkdir(parents=True)
    rows = [f"U{u},I{i},5.0,{1000 + u * 10 + i}" for u in range(6) for i in range(5)]
    rows.append("LONER,I0,1.0,1")  # one interaction: removed by the 5-core
    (d / "ratings_Beauty.csv").write_text("\n".join(rows) + "\n")
    info = loader.dataset_info(DataConfig(source="beauty"))
    assert (info["users"], info["items"], info["interactions"], info["kcore"]) == (6, 5, 30, 5)


def test_beauty_offline_error(home, monkeypatch):
    monkeypatch.setattr(sources, "BEAUTY_URL", "http://127.0.0.1:9/reviews_Beauty_5.json.gz")
    monkeypatch.setattr(download, "TIMEOUT_S", 5)
    with pytest.raises(DataError) as e:
        loader.load_interactions(DataConfig(source="beauty"))
    assert "reviews_Beauty_5.json.gz" in str(e.value) and "ratings_Beauty.csv" in str(e.value)


def test_fetch_file_url_is_atomic(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(200_000))
    dest = tmp_path / "cache" / "dest.bin"
    assert download.fetch(src.as_uri(), dest, offline_hint="x") == dest
    assert dest.read_bytes() == src.read_bytes()
    assert not dest.with_suffix(".bin.part").exists()
    src.unlink()  # an existing dest is returned without touching the network
    assert download.fetch(src.as_uri(), dest, offline_hint="x") == dest


def test_fetch_unreachable_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "TIMEOUT_S", 5)
    dest = tmp_path / "cache" / "x.zip"
    with pytest.raises(DataError) as e:
        download.fetch("http://127.0.0.1:9/x", dest, offline_hint="or pass --data-file PATH")
    msg = str(e.value)
    assert str(dest) in msg and "--data-file PATH" in msg and "\n" not in msg
    assert not dest.exists() and not dest.with_suffix(".zip.part").exists()


def test_fetch_missing_file_url(tmp_path):
    dest = tmp_path / "d.bin"
    with pytest.raises(DataError) as e:
        download.fetch((tmp_path / "absent").as_uri(), dest, offline_hint="")
    assert str(dest) in str(e.value) and not dest.exists()


def test_extract_member(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("dir/u.data", "hello")
    out = download.extract_member(z, "dir/u.data", tmp_path / "out" / "u.data")
    assert out.read_text() == "hello" and not list(out.parent.glob("*.part"))
    with pytest.raises(DataError) as e:
        download.extract_member(z, "dir/ratings.dat", tmp_path / "out" / "r.dat")
    assert "ratings.dat" in str(e.value) and not (tmp_path / "out" / "r.dat").exists()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError) as e:
        download.extract_member(bad, "x", tmp_path / "out" / "x")
    assert "delete it" in str(e.value)


def recbole_installed() -> bool:
    try:
        importlib.metadata.distribution("recbole")
    except importlib.metadata.PackageNotFoundError:
        return False
    return sources.recbole_ml100k() is not None


@pytest.mark.skipif(not recbole_installed(), reason="recbole wheel (ML-100k copy) not installed")
def test_real_ml100k(home):
    cfg = DataConfig(source="ml-100k")
    data = loader.load_interactions(cfg)
    assert (data.n_users, data.n_items, len(data)) == (943, 1682, 100000)
    assert data.lengths().min() >= 20
    assert np.all(np.diff(data.user) >= 0)
    same_user = data.user[1:] == data.user[:-1]
    assert np.all(np.diff(data.timestamp)[same_user] >= 0)
    assert loader.dataset_info(cfg)["interactions"] == 100000  # second call: from the cache
    assert len(list((home / "processed").glob("*.npz"))) == 1
