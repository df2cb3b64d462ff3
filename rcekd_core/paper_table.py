"""A paper's results table of one experiment, as markdown, LaTeX or CSV.

One row per method (teacher and popularity first, as references; then the students in the
run's method order), λ from each method's config section, and per metric the mean ± std over
seeds on the test split at the best validation epoch. The best student on each metric is in
bold; rcekd's cell carries * / ** when the paired t-test over seeds against the best other
student on that metric gives p < 0.05 / p < 0.01 and rcekd is the better one.

Pure: results rows and the run's config in, text out (the CLI reads the run and writes files).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ConfigError
from .report import comparable, headline_present, significance, summarize

FORMATS = ("md", "latex", "csv")
REFERENCES = ("teacher", "popularity")
TARGET = "rcekd"
DIGITS = 4  # printed decimals; "best" is decided on the printed value, so equal-looking cells are tied
LEVELS = ((0.01, "**"), (0.05, "*"))  # strictest first
MARKER_NOTE = (": rcekd better than the best other student on that metric "
               "(paired t-test over seeds, p < 0.05 / p < 0.01).")
ARCH_NAMES = {"sasrec": "SASRec", "gru4rec": "GRU4Rec", "hstu": "HSTU", "mf": "MF", "lightgcn": "LightGCN"}
PROTOCOL_NAMES = {"loo": "leave-one-out split", "ratio": "per-user chronological 80/10/10 split"}


@dataclass(frozen=True)
class Cell:
    mean: float
    std: float  # NaN with one seed: no spread to report
    best: bool = False
    marker: str = ""
    versus: str = ""  # rcekd's cells: the best other student it was tested against
    p_value: float = math.nan


@dataclass(frozen=True)
class Row:
    method: str
    lam: Any  # None: no λ (references, scratch)
    seeds: int
    cells: dict[str, Cell]


@dataclass(frozen=True)
class PaperTable:
    metrics: list[str]
    rows: list[Row]
    caption: str  # without the marker convention, which each format writes with its own marks
    marked: bool  # a significance test was possible: the caption states the marker convention


# ---- building ----------------------------------------------------------------------------

def build_table(results: pd.DataFrame, config: dict[str, Any], metrics: list[str] | None = None) -> PaperTable:
    """The table of the comparable test rows of `results`; raises ConfigError on nothing to show."""
    test = _test_rows(results, _report_diverged(config))
    metrics = _chosen_metrics(test, metrics)
    summary = summarize(test, "test", metrics).set_index("method")
    methods = _method_order(test, config)
    students = [m for m in methods if m not in REFERENCES]
    tests = _target_tests(test, summary, students, metrics)
    best = {m: _best_means(summary.loc[students, f"{m} mean"]) for m in metrics}
    rows = []
    for method in methods:
        cells = {m: _cell(summary.loc[method], m, method in best[m], tests.get(m) if method == TARGET else None)
                 for m in metrics}
        rows.append(Row(method, _lam(config, method), int(summary.loc[method, "seeds"]), cells))
    counts = sorted({int(summary.loc[m, "seeds"]) for m in students})
    marked = any(not math.isnan(t["p_value"]) for t in tests.values())
    return PaperTable(metrics, rows, _caption(config, counts, bool(tests) and not marked), marked)


def _report_diverged(config: dict[str, Any]) -> bool:
    """The run's own choice (eval.report_diverged), so the table agrees with its summary.csv."""
    section = config.get("eval")
    return bool(section.get("report_diverged", False)) if isinstance(section, dict) else False


def _test_rows(results: pd.DataFrame, include_diverged: bool) -> pd.DataFrame:
    if results.empty or "split" not in results.columns:
        raise ConfigError("the results hold no rows; pass finished run directories")
    test = comparable(results, include_diverged)
    test = test[test["split"] == "test"]
    if test.empty:
        raise ConfigError("no finished fit has test results; finish the run first "
                          "(`rcekd distill --resume DIR` continues a stopped one)")
    return test


def _chosen_metrics(test: pd.DataFrame, asked: list[str] | None) -> list[str]:
    available = [c for c in test.columns if "@" in str(c) and test[c].notna().any()]
    if asked is None:
        present = headline_present(test)
        if not present:
            raise ConfigError(f"the results have no headline metric; pass --metrics with some of "
                              f"{', '.join(available) or 'their metrics'}")
        return present
    if not asked:
        raise ConfigError(f"--metrics names no metric; choose from {', '.join(available)}")
    unknown = [m for m in asked if m not in available]
    if unknown:
        raise ConfigError(f"unknown metric {', '.join(unknown)}; choose from {', '.join(available)}")
    return list(dict.fromkeys(asked))


def _method_order(test: pd.DataFrame, config: dict[str, Any]) -> list[str]:
    """References first, then the students in the config's method order (unlisted ones last)."""
    present = list(dict.fromkeys(test["method"]))
    students = list(dict.fromkeys(test.loc[test["model"] == "student", "method"]))
    listed = config.get("methods") if isinstance(config.get("methods"), list) else []
    ordered = [m for m in listed if m in students] + [m for m in students if m not in listed]
    return [m for m in REFERENCES if m in present] + ordered


def _best_means(means: pd.Series) -> set[str]:
    """The methods whose printed mean is the highest (all of them on a tie)."""
    printed = means.astype(float).round(DIGITS)
    if printed.isna().all():
        return set()
    return set(printed.index[printed == printed.max()])


def _target_tests(test: pd.DataFrame, summary: pd.DataFrame, students: list[str],
                  metrics: list[str]) -> dict[str, dict[str, Any]]:
    """Per metric: rcekd against the best other student (by mean): that method and the p-value."""
    others = [m for m in students if m != TARGET]
    if TARGET not in students or not others:
        return {}
    sig = significance(test, TARGET, "test", metrics)
    out = {}
    for metric in metrics:
        means = summary.loc[others, f"{metric} mean"].astype(float)
        if means.isna().all():
            continue
        versus = str(means.idxmax())
        row = sig[(sig["versus"] == versus) & (sig["metric"] == metric)].iloc[0]
        out[metric] = {"versus": versus, "p_value": float(row["p_value"]), "gain": float(row["gain"])}
    return out


def _marker(p_value: float, gain: float) -> str:
    if math.isnan(p_value) or not gain > 0:
        return ""
    return next((mark for level, mark in LEVELS if p_value < level), "")


def _cell(stats: pd.Series, metric: str, best: bool, test: dict[str, Any] | None) -> Cell:
    mean, std = float(stats[f"{metric} mean"]), float(stats[f"{metric} std"])
    if test is None:
        return Cell(mean, std, best)
    return Cell(mean, std, best, _marker(test["p_value"], test["gain"]), test["versus"], test["p_value"])


def _lam(config: dict[str, Any], method: str) -> Any:
    section = config.get(method) if method not in REFERENCES else None
    return section.get("lam") if isinstance(section, dict) else None


def _caption(config: dict[str, Any], seed_counts: list[int], untested: bool) -> str:
    parts = [f"Test results at the best validation epoch{_dataset(config)}"]
    backbones = _backbones(config)
    if backbones:
        parts.append(backbones)
    parts.append(_seeds(seed_counts))
    text = "; ".join(parts) + ". Bold: the best student on each metric."
    if untested:
        text += " No significance test: the paired t-test needs at least two common seeds."
    return text


def _dataset(config: dict[str, Any]) -> str:
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    source = data.get("source")
    if source == "file" and data.get("file"):
        source = Path(str(data["file"])).name
    protocol = data.get("protocol")
    where = f" on {source}" if source else ""
    return where + (f", {PROTOCOL_NAMES.get(protocol, f'{protocol} split')}" if protocol else "")


def _backbones(config: dict[str, Any]) -> str:
    def name(role: str) -> str:
        model = config.get(role)
        if not isinstance(model, dict) or "arch" not in model:
            return ""
        arch = ARCH_NAMES.get(str(model["arch"]), str(model["arch"]))
        return f"{role} {arch}" + (f" d={model['dim']}" if "dim" in model else "")

    return ", ".join(n for n in (name("teacher"), name("student")) if n)


def _seeds(counts: list[int]) -> str:
    if not counts or counts == [1]:
        return "one seed per method (no std)"
    if len(counts) == 1:
        return f"mean ± std over {counts[0]} seeds"
    return f"mean ± std over {counts[0]} to {counts[-1]} seeds per method"


# ---- rendering ---------------------------------------------------------------------------

def render(table: PaperTable, fmt: str) -> str:
    renderers = {"md": to_markdown, "latex": to_latex, "csv": to_csv}
    if fmt not in renderers:
        raise ConfigError(f"unknown format '{fmt}'; choose from {', '.join(FORMATS)}")
    return renderers[fmt](table)


def _number(cell: Cell, pm: str) -> str:
    if math.isnan(cell.mean):
        return ""
    text = f"{cell.mean:.{DIGITS}f}"
    return text if math.isnan(cell.std) else f"{text}{pm}{cell.std:.{DIGITS}f}"


def _lam_text(lam: Any) -> str:
    if lam is None:
        return ""
    return f"{lam:g}" if isinstance(lam, (int, float)) else str(lam)


def caption_text(table: PaperTable, escape: Callable[[str], str], mark: Callable[[str], str]) -> str:
    text = escape(table.caption)
    if table.marked:
        text += " " + mark("*") + " / " + mark("**") + escape(MARKER_NOTE)
    return text


def md_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\|*_" else c for c in text)


def to_markdown(table: PaperTable) -> str:
    """A GitHub table; the caption below it as pandoc's `Table:` line."""
    def cell(c: Cell) -> str:
        text = _number(c, " ± ")
        text = f"**{text}**" if c.best and text else text
        return text + md_escape(c.marker)

    lines = ["| method | λ | " + " | ".join(md_escape(m) for m in table.metrics) + " |",
             "|---|---:|" + "---:|" * len(table.metrics)]
    for row in table.rows:
        cells = [md_escape(row.method), _lam_text(row.lam)] + [cell(row.cells[m]) for m in table.metrics]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Table: " + caption_text(table, md_escape, md_escape)]
    return "\n".join(lines) + "\n"


LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"$<$", ">": r"$>$", "|": r"\textbar{}", "±": r"$\pm$", "λ": r"$\lambda$"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(c, c) for c in text)


def _latex_mark(mark: str) -> str:
    return f"$^{{{mark}}}$" if mark else ""


def to_latex(table: PaperTable) -> str:
    """A booktabs tabular in a table environment, the references ruled off from the students."""
    def cell(c: Cell) -> str:
        text = _number(c, r" $\pm$ ")
        text = rf"\textbf{{{text}}}" if c.best and text else text
        return text + _latex_mark(c.marker)

    def line(cells: list[str]) -> str:
        return "    " + " & ".join(cells) + r" \\"

    header = ["Method", r"$\lambda$"] + [latex_escape(m) for m in table.metrics]
    lines = [r"\begin{table}[t]", r"  \centering",
             r"  \caption{" + caption_text(table, latex_escape, _latex_mark) + "}",
             r"  \label{tab:results}",
             r"  \begin{tabular}{lr" + "r" * len(table.metrics) + "}",
             r"    \toprule", line(header), r"    \midrule"]
    for i, row in enumerate(table.rows):
        if i and row.method not in REFERENCES and table.rows[i - 1].method in REFERENCES:
            lines.append(r"    \midrule")  # references above, students below
        lines.append(line([latex_escape(row.method), latex_escape(_lam_text(row.lam))]
                          + [cell(row.cells[m]) for m in table.metrics]))
    lines += [r"    \bottomrule", r"  \end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: PaperTable) -> str:
    """Plain numbers, no bold: mean and std per metric, and rcekd's test (versus, p-value)."""
    records = []
    for row in table.rows:
        record: dict[str, Any] = {"method": row.method, "lambda": row.lam, "seeds": row.seeds}
        for m in table.metrics:
            c = row.cells[m]
            record |= {f"{m} mean": c.mean, f"{m} std": c.std, f"{m} versus": c.versus, f"{m} p_value": c.p_value}
        records.append(record)
    buf = io.StringIO()
    pd.DataFrame(records).to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
    return buf.getvalue()
