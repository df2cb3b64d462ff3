"""The paper table: cells, bold, markers and caption from hand-written results, checked by hand."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest

from rcekd_core.errors import ConfigError
from rcekd_core.paper_table import build_table, render
from rcekd_core.report import paired_t_pvalue

# test metrics per seed; rcekd − kd on NDCG@10 is .03 .04 .02: t = .03 / (.01 / √3), p ≈ 0.035 (*);
# on Recall@10 rcekd ties kd (mean .32, differences 0, +.02, −.02: p = 1)
STUDENTS = {
    "scratch": {"NDCG@10": [0.10, 0.12, 0.11], "Recall@10": [0.20, 0.22, 0.21]},
    "kd": {"NDCG@10": [0.12, 0.13, 0.14], "Recall@10": [0.30, 0.32, 0.34]},
    "rcekd": {"NDCG@10": [0.15, 0.17, 0.16], "Recall@10": [0.30, 0.34, 0.32]},
}
CONFIG = {"data": {"source": "ml-100k", "protocol": "loo"}, "teacher": {"arch": "sasrec", "dim": 64},
          "student": {"arch": "sasrec", "dim": 8}, "methods": ["scratch", "kd", "rcekd", "cd"],
          "seeds": [0, 1, 2], "kd": {"lam": 0.01, "K": 50}, "rcekd": {"lam": 0.1}, "cd": {"lam": 1.0}}


def results(students=STUDENTS) -> pd.DataFrame:
    rows = [{"model": "teacher", "method": "teacher", "seed": 0, "split": "test", "NDCG@10": 0.30,
             "Recall@10": 0.50, "status": "finished"},
            {"model": "popularity", "method": "popularity", "seed": None, "split": "test", "NDCG@10": 0.05,
             "Recall@10": 0.10, "status": "finished"}]
    for method in reversed(list(students)):  # not in the config's order: the table follows the config
        for seed, (n, r) in enumerate(zip(students[method]["NDCG@10"], students[method]["Recall@10"])):
            for split, shift in (("test", 0.0), ("valid", 0.5)):  # valid: never in the table
                rows.append({"model": "student", "method": method, "seed": seed, "split": split,
                             "NDCG@10": n + shift, "Recall@10": r + shift, "status": "finished"})
    rows.append({"model": "student", "method": "cd", "seed": 0, "split": "test", "NDCG@10": 0.9,
                 "Recall@10": 0.9, "status": "stopped"})  # stopped: trained less, left out
    return pd.DataFrame(rows)


CAPTION = ("Test results at the best validation epoch on ml-100k, leave-one-out split; teacher SASRec d=64, "
           "student SASRec d=8; mean ± std over 3 seeds. Bold: the best student on each metric.")

MARKDOWN = """\
| method | λ | NDCG@10 | Recall@10 |
|---|---:|---:|---:|
| teacher |  | 0.3000 | 0.5000 |
| popularity |  | 0.0500 | 0.1000 |
| scratch |  | 0.1100 ± 0.0100 | 0.2100 ± 0.0100 |
| kd | 0.01 | 0.1300 ± 0.0100 | **0.3200 ± 0.0200** |
| rcekd | 0.1 | **0.1600 ± 0.0100**\\* | **0.3200 ± 0.0200** |

Table: Test results at the best validation epoch on ml-100k, leave-one-out split; teacher SASRec d=64, \
student SASRec d=8; mean ± std over 3 seeds. Bold: the best student on each metric. \\* / \\*\\*: rcekd \
better than the best other student on that metric (paired t-test over seeds, p < 0.05 / p < 0.01).
"""

LATEX = r"""\begin{table}[t]
  \centering
  \caption{Test results at the best validation epoch on ml-100k, leave-one-out split; teacher SASRec d=64, student SASRec d=8; mean $\pm$ std over 3 seeds. Bold: the best student on each metric. $^{*}$ / $^{**}$: rcekd better than the best other student on that metric (paired t-test over seeds, p $<$ 0.05 / p $<$ 0.01).}
  \label{tab:results}
  \begin{tabular}{lrrr}
    \toprule
    Method & $\lambda$ & NDCG@10 & Recall@10 \\
    \midrule
    teacher &  & 0.3000 & 0.5000 \\
    popularity &  & 0.0500 & 0.1000 \\
    \midrule
    scratch &  & 0.1100 $\pm$ 0.0100 & 0.2100 $\pm$ 0.0100 \\
    kd & 0.01 & 0.1300 $\pm$ 0.0100 & \textbf{0.3200 $\pm$ 0.0200} \\
    rcekd & 0.1 & \textbf{0.1600 $\pm$ 0.0100}$^{*}$ & \textbf{0.3200 $\pm$ 0.0200} \\
    \bottomrule
  \end{tabular}
\end{table}
"""

P_NDCG = paired_t_pvalue([0.15, 0.17, 0.16], [0.12, 0.13, 0.14])


def test_rows_cells_bold_and_marker():
    table = build_table(results(), CONFIG)
    assert [r.method for r in table.rows] == ["teacher", "popularity", "scratch", "kd", "rcekd"]
    assert [r.lam for r in table.rows] == [None, None, None, 0.01, 0.1]
    rcekd, kd = table.rows[4].cells, table.rows[3].cells
    assert rcekd["NDCG@10"].mean == pytest.approx(0.16) and rcekd["NDCG@10"].std == pytest.approx(0.01)
    assert rcekd["NDCG@10"].versus == "kd" and rcekd["NDCG@10"].p_value == pytest.approx(P_NDCG)
    assert 0.01 < P_NDCG < 0.05 and rcekd["NDCG@10"].marker == "*"
    assert rcekd["Recall@10"].best and kd["Recall@10"].best  # a tie: both bold
    assert rcekd["Recall@10"].marker == "" and rcekd["Recall@10"].p_value == pytest.approx(1.0)
    assert math.isnan(table.rows[0].cells["NDCG@10"].std)  # the teacher: one seed, no std
    assert table.caption == CAPTION and table.marked


def test_markdown_and_latex_exactly():
    table = build_table(results(), CONFIG)
    assert render(table, "md") == MARKDOWN
    assert render(table, "latex") == LATEX


def test_csv_has_plain_numbers_and_p_values():
    out = pd.read_csv(io.StringIO(render(build_table(results(), CONFIG), "csv"))).set_index("method")
    assert list(out.columns) == ["lambda", "seeds", "NDCG@10 mean", "NDCG@10 std", "NDCG@10 versus",
                                 "NDCG@10 p_value", "Recall@10 mean", "Recall@10 std", "Recall@10 versus",
                                 "Recall@10 p_value"]
    assert out.loc["kd", "NDCG@10 mean"] == pytest.approx(0.13) and out.loc["kd", "Recall@10 std"] == pytest.approx(0.02)
    assert out.loc["rcekd", "NDCG@10 p_value"] == pytest.approx(P_NDCG, rel=1e-5)
    assert out.loc["rcekd", "NDCG@10 versus"] == "kd" and pd.isna(out.loc["kd", "NDCG@10 p_value"])
    assert pd.isna(out.loc["teacher", "NDCG@10 std"]) and out.loc["rcekd", "seeds"] == 3
    assert "**" not in render(build_table(results(), CONFIG), "csv")


def test_two_stars_below_p_001():
    close = {**STUDENTS, "rcekd": {"NDCG@10": [0.15, 0.161, 0.169], "Recall@10": [0.30, 0.34, 0.32]}}
    p = paired_t_pvalue([0.15, 0.161, 0.169], [0.12, 0.13, 0.14])  # differences .03 .031 .029
    assert p < 0.01
    assert build_table(results(close), CONFIG).rows[4].cells["NDCG@10"].marker == "**"


def test_no_marker_when_rcekd_is_significantly_worse():
    worse = {**STUDENTS, "rcekd": {"NDCG@10": [0.09, 0.09, 0.11], "Recall@10": [0.30, 0.34, 0.32]}}
    cell = build_table(results(worse), CONFIG).rows[4].cells["NDCG@10"]
    assert cell.versus == "kd" and cell.p_value < 0.05 and cell.marker == "" and not cell.best


def test_one_seed_has_no_std_and_no_test():
    one = {m: {k: v[:1] for k, v in metrics.items()} for m, metrics in STUDENTS.items()}
    table = build_table(results(one), CONFIG)
    md = render(table, "md")
    assert "±" not in md.split("Table:")[0] and "0.0000" not in md
    assert "| rcekd | 0.1 | **0.1500** | **0.3000** |" in md  # kd's Recall@10 0.30 ties it: bold too
    assert "| kd | 0.01 | 0.1200 | **0.3000** |" in md
    assert "one seed per method (no std)" in table.caption and not table.marked
    assert "No significance test" in table.caption and "\\*" not in md


def test_metrics_subset_and_special_characters_in_latex():
    df = results()
    df.loc[df["method"] == "kd", "method"] = "kd_v2&co"
    config = {**CONFIG, "methods": ["scratch", "kd_v2&co", "rcekd"], "kd_v2&co": {"lam": 1e-5},
              "data": {"source": "file", "file": "/data/my_data%.csv", "protocol": "ratio"}}
    tex = render(build_table(df, config, ["Recall@10"]), "latex")
    assert r"    kd\_v2\&co & 1e-05 & \textbf{0.3200 $\pm$ 0.0200} \\" in tex
    assert r"on my\_data\%.csv, per-user chronological 80/10/10 split;" in tex
    assert "NDCG@10" not in tex and r"\begin{tabular}{lrr}" in tex


@pytest.mark.parametrize("df, metrics, needle", [
    (pd.DataFrame(), None, "no rows"),
    (results().assign(status="stopped"), None, "no finished fit"),
    (results(), ["NDCG@5"], "unknown metric NDCG@5; choose from NDCG@10, Recall@10"),
])
def test_bad_input_is_one_config_error(df, metrics, needle):
    with pytest.raises(ConfigError, match=needle) as e:
        build_table(df, CONFIG, metrics)
    assert "\n" not in str(e.value)


def test_unknown_format():
    with pytest.raises(ConfigError, match="unknown format 'html'; choose from md, latex, csv"):
        render(build_table(results(), CONFIG), "html")


def test_diverged_fits_follow_the_runs_report_diverged():
    df = results()
    df.loc[df["method"] == "cd", "status"] = "diverged"  # at its best epoch before diverging
    assert "cd" not in [r.method for r in build_table(df, CONFIG).rows]
    shown = build_table(df, {**CONFIG, "eval": {"report_diverged": True}})
    assert [r.method for r in shown.rows][-1] == "cd" and shown.rows[-1].lam == 1.0
