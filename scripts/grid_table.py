"""A λ-grid table from finished runs: each method at its authors' λ and at the λ chosen on validation.

    python scripts/grid_table.py RUN... [--metric NDCG@10]

The runs are one preset's, each method at one λ per run (`--set <method>.lam=...`). A method's
authors' λ is its value in the preset (the run's `name`); its tuned λ is the one whose seed-0 fit
has the best validation metric over all the runs (test is read, never used to choose). Prints
a Markdown table and the validation score of every λ tried.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from rcekd_core.config import load_config
from rcekd_core.runs.store import RunDir


def fits(run: Path) -> tuple[str, list[dict]]:
    """(preset name, one entry per finished seed-0 fit: method, lam, valid row, test row)."""
    d = RunDir(run)
    config = d.read_config()
    if "name" not in config:  # a run still starting
        return "", []
    rows: dict[str, dict] = {}
    for row in d.read_result_values():
        reference = row["model"] in ("teacher", "popularity")  # no seed, no λ: shown as they are
        if not reference and (str(row["seed"]) != "0" or row.get("status", "finished") != "finished"):
            continue
        section = config.get(row["method"])
        entry = rows.setdefault(row["method"], {"method": row["method"], "run": run,
                                                "lam": section.get("lam") if isinstance(section, dict) else None})
        entry[row["split"]] = row
    return config["name"], [e for e in rows.values() if "valid" in e and "test" in e]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--metric", default="NDCG@10")
    a = p.parse_args(argv)
    m = a.metric
    names, entries = set(), []
    for run in a.runs:
        name, found = fits(run)
        if not found:
            print(f"{run}: no finished fit yet, left out", file=sys.stderr)
            continue
        names.add(name)
        entries += found
    if len(names) != 1:
        print(f"the runs come from several presets ({', '.join(sorted(names))}); give one preset's runs",
              file=sys.stderr)
        return 2
    preset = load_config(names.pop())
    valid = lambda e: e["valid"][m] if math.isfinite(e["valid"][m]) else -1.0
    lam = lambda e: "" if e["lam"] is None else f"{e['lam']:g}"
    print(f"| method | test {m}, authors' λ | authors' λ | test {m}, tuned λ | tuned λ "
          f"| valid {m}, tuned | test Recall@10, tuned | best epoch, tuned |")
    print("|---|---|---|---|---|---|---|---|")
    methods = list(dict.fromkeys(e["method"] for e in sorted(entries, key=lambda e: e["method"] not in
                                                              ("teacher", "popularity", "scratch"))))
    lines = []
    for method in methods:
        tried = sorted((e for e in entries if e["method"] == method), key=lambda e: -(e["lam"] or 0))
        best = max(tried, key=valid)
        authors_lam = preset.method(method).lam if method in preset.method_settings else None
        authors = [e for e in tried if authors_lam is None or (e["lam"] is not None and math.isclose(e["lam"], authors_lam))]
        a_cell = f"{authors[0]['test'][m]:.4f}" if authors else "not run"
        a_lam = "" if authors_lam is None else f"{authors_lam:g}"
        print(f"| {method} | {a_cell} | {a_lam} | {best['test'][m]:.4f} | {lam(best)} "
              f"| {best['valid'][m]:.4f} | {best['test']['Recall@10']:.4f} | {best['test']['best_epoch'] or ''} |")
        if len(tried) > 1 and authors_lam is not None:
            lines.append(f"- {method}: " + ", ".join(f"λ {lam(e)}: {valid(e):.4f}" for e in tried))
    if lines:
        print(f"\nValidation {m} of each λ tried:\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
