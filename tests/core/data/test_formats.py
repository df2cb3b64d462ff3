"""Raw-format parsers: exact parsed content of small fixtures, and one-line errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from rcekd_core.data import formats
from rcekd_core.errors import DataError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"]).astype({"timestamp": "float64"})


def assert_frame(df: pd.DataFrame, rows: list[tuple[str, str, float]]) -> None:
    assert list(df.columns) == ["user", "item", "timestamp"]
    assert df["timestamp"].dtype == "float64"
    assert [tuple(r) for r in df.itertuples(index=False)] == [tuple(r) for r in frame(rows).itertuples(index=False)]
    assert all(isinstance(v, str) for v in df["user"]) and all(isinstance(v, str) for v in df["item"])


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_udata(tmp_path):
    p = write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n")
    assert_frame(formats.read_udata(p), [("196", "242", 881250949), ("186", "302", 891717742), ("22", "377", 878887116)])


def test_inter_typed_header(tmp_path):
    p = write(
        tmp_path / "x.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t5\t4\t10\n2\t5\t1\t9.5\n",
    )
    assert_frame(formats.read_inter(p), [("1", "5", 10.0), ("2", "5", 9.5)])


def test_inter_missing_column(tmp_path):
    p = write(tmp_path / "x.inter", "user_id:token\titem_id:token\trating:float\n1\t5\t4\n")
    with pytest.raises(DataError) as e:
        formats.read_inter(p)
    msg = one_line_error(e)
    assert "timestamp" in msg and "rating:float" in msg and str(p) in msg


def test_ratings_dat(tmp_path):
    p = write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n6040::1::4::956703932\n")
    assert_frame(
        formats.read_ratings_dat(p),
        [("1", "1193", 978300760), ("1", "661", 978302109), ("6040", "1", 956703932)],
    )


def test_amazon_python_literals_and_json(tmp_path):
    p = tmp_path / "reviews_Beauty_5.json.gz"
    lines = [
        "{'reviewerID': 'A1YJEY40YUW4SE', 'asin': '7806397051', 'helpful': [3, 4], "
        "'reviewText': \"It's 'great'\", 'overall': 1.0, 'unixReviewTime': 1391040000}",
        '{"reviewerID": "A60XNB876KYML", "asin": "7806397051", "overall": 3.0, "unixReviewTime": 1397779200}',
        "",
        "{'reviewerID': 'A1YJEY40YUW4SE', 'asin': 'B00004TMFE', 'overall': 5.0, 'unixReviewTime': 1378425600}",
    ]
    with gzip.open(p, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    assert_frame(
        formats.read_amazon_json_gz(p),
        [
            ("A1YJEY40YUW4SE", "7806397051", 1391040000),
            ("A60XNB876KYML", "7806397051", 1397779200),
            ("A1YJEY40YUW4SE", "B00004TMFE", 1378425600),
        ],
    )


@pytest.mark.parametrize(
    "line, needle",
    [
        ("__import__('os').system('echo pwned')", "malformed line 2"),  # literal_eval, never eval
        ("{'reviewerID': 'A', 'unixReviewTime': 1}", "'asin'"),
        ("{'reviewerID': 'A', 'asin': 'B', 'unixReviewTime': 1", "malformed line 2"),
    ],
)
def test_amazon_bad_lines(tmp_path, line, needle):
    p = tmp_path / "r.json.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("{'reviewerID': 'A', 'asin': 'B', 'unixReviewTime': 1}\n" + line + "\n")
    with pytest.raises(DataError) as e:
        formats.read_amazon_json_gz(p)
    assert needle in one_line_error(e)


def test_amazon_not_gzip(tmp_path):
    p = write(tmp_path / "r.json.gz", "{'reviewerID': 'A'}\n")
    with pytest.raises(DataError) as e:
        formats.read_amazon_json_gz(p)
    assert "delete the file" in one_line_error(e)


def test_ratings_csv(tmp_path):
    p = write(tmp_path / "ratings_Beauty.csv", "A39HTATAQ9V7YF,0205616461,5.0,1369699200\nA3JM6GV9MNOF9X,0558925278,3.0,1355443200\n")
    assert_frame(
        formats.read_ratings_csv(p),
        [("A39HTATAQ9V7YF", "0205616461", 1369699200), ("A3JM6GV9MNOF9X", "0558925278", 1355443200)],
    )


def test_user_file_custom_columns_and_sep(tmp_path):
    p = write(tmp_path / "log.csv", "when;who;what;score\n5;u1;i9;1\n3;u2;i8;0\n")
    df = formats.read_user_file(p, sep=";", user_col="who", item_col="what", time_col="when")
    assert_frame(df, [("u1", "i9", 5.0), ("u2", "i8", 3.0)])


def test_user_file_default_seps(tmp_path):
    tsv = write(tmp_path / "log.tsv", "user\titem\ttimestamp\na\tb\t1\n")
    csv = write(tmp_path / "log.csv", "user,item,timestamp\na,b,1\n")
    assert_frame(formats.read_user_file(tsv), [("a", "b", 1.0)])
    assert_frame(formats.read_user_file(csv), [("a", "b", 1.0)])
    assert formats.default_sep(Path("x.txt")) == "\t" and formats.default_sep(Path("x.inter")) == "\t"
    assert formats.default_sep(Path("x.tsv.gz")) == "\t" and formats.default_sep(Path("x.dat")) == ","


def test_user_file_typed_header_names(tmp_path):
    p = write(tmp_path / "a.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n")
    df = formats.read_user_file(p, user_col="user_id", item_col="item_id", time_col="timestamp")
    assert_frame(df, [("1", "2", 3.0)])


def test_user_file_headerless_positions(tmp_path):
    p = write(tmp_path / "log.csv", "9,u1,i1,100\n8,u2,i2,200\n")
    df = formats.read_user_file(p, header=False, user_col="1", item_col="2", time_col="3")
    assert_frame(df, [("u1", "i1", 100.0), ("u2", "i2", 200.0)])
    default_names = formats.read_user_file(write(tmp_path / "b.csv", "u,i,7\n"), header=False)
    assert_frame(default_names, [("u", "i", 7.0)])


def test_user_file_headerless_bad_position(tmp_path):
    p = write(tmp_path / "log.csv", "u1,i1,100\n")
    with pytest.raises(DataError) as e:
        formats.read_user_file(p, header=False, time_col="5")
    assert "data.time_col" in one_line_error(e)
    with pytest.raises(DataError) as e:
        formats.read_user_file(p, header=False, user_col="who")
    assert "--set data.user_col=" in one_line_error(e)


def test_missing_file(tmp_path):
    p = tmp_path / "nope.csv"
    for reader in (formats.read_udata, formats.read_inter, formats.read_ratings_dat,
                   formats.read_amazon_json_gz, formats.read_ratings_csv, formats.read_user_file):
        with pytest.raises(DataError) as e:
            reader(p)
        msg = one_line_error(e)
        assert str(p) in msg and "not found" in msg


def test_empty_file_and_header_only(tmp_path):
    for reader in (formats.read_udata, formats.read_ratings_dat, formats.read_ratings_csv,
                   formats.read_user_file, formats.read_amazon_json_gz):
        p = write(tmp_path / "empty.csv", "")
        with pytest.raises(DataError) as e:
            reader(p)
        assert "empty" in one_line_error(e)
    p = write(tmp_path / "head.csv", "user,item,timestamp\n")
    with pytest.raises(DataError) as e:
        formats.read_user_file(p)
    assert "no data rows" in one_line_error(e)


def test_wrong_columns_lists_found_and_setting(tmp_path):
    p = write(tmp_path / "log.csv", "uid,iid,ts\n1,2,3\n")
    with pytest.raises(DataError) as e:
        formats.read_user_file(p)
    msg = one_line_error(e)
    assert "'user'" in msg and "uid, iid, ts" in msg and "--set data.user_col=" in msg
    with pytest.raises(DataError) as e:
        formats.read_user_file(p, user_col="uid", item_col="iid")
    assert "--set data.time_col=" in one_line_error(e)


def test_non_numeric_timestamp_names_row(tmp_path):
    p = write(tmp_path / "log.csv", "user,item,timestamp\na,b,1\na,c,2\nb,c,yesterday\nb,d,x\n")
    with pytest.raises(DataError) as e:
        formats.read_user_file(p)
    msg = one_line_error(e)
    assert "non-numeric timestamp 'yesterday'" in msg and "row 3" in msg and str(p) in msg
    u = write(tmp_path / "u.data", "1\t2\t3\t100\n1\t3\t3\tNaN\n")
    with pytest.raises(DataError) as e:
        formats.read_udata(u)
    assert "row 2" in one_line_error(e)


def test_malformed_lines(tmp_path):
    extra = write(tmp_path / "u.data", "1\t2\t3\t100\n1\t3\t3\t101\t9\n")
    with pytest.raises(DataError) as e:
        formats.read_udata(extra)
    assert "malformed line" in one_line_error(e) and "line 2" in str(e.value)
    short = write(tmp_path / "r.csv", "u,i,5,100\nu,j\n")
    with pytest.raises(DataError) as e:
        formats.read_ratings_csv(short)
    assert "malformed line" in one_line_error(e)
    wrong_sep = write(tmp_path / "ratings.dat", "1,2,3,4\n")
    with pytest.raises(DataError) as e:
        formats.read_ratings_dat(wrong_sep)
    assert "expected 4 fields" in one_line_error(e)


def test_user_file_sep_aliases(tmp_path):
    p = write(tmp_path / "log.csv", "user\titem\ttimestamp\na\tb\t1\n")
    for sep in ("\\t", "tab", "\t"):
        assert_frame(formats.read_user_file(p, sep=sep), [("a", "b", 1.0)])
