"""A run's results file read strictly, for export and combine: what cannot be trusted is named.

A file that is not UTF-8 text (binary, another encoding), has no header or lacks the key
columns is Unreadable, with a one-line reason. A row whose field count differs from the
header's, whose model, method or split is empty, whose seed is not an integer or whose
metric cell (NAME@K) is not a number is malformed: kept out of `rows`, its line number in
`bad`. Export skips those rows and says so; combine refuses the run.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from rcekd_core.runs.store import RESULT_KEYS, RESULTS, RunDir


class Unreadable(Exception):
    """The whole file cannot be used; str(e) is the one-line reason."""


@dataclass
class ResultsFile:
    path: Path
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)  # the well-formed rows, as text
    bad: list[int] = field(default_factory=list)  # line numbers of malformed rows

    @property
    def metrics(self) -> list[str]:
        return [c for c in self.columns if "@" in c]

    def bad_text(self) -> str:
        """'1 malformed row (line 3)', '4 malformed rows (lines 3, 5, 9, …)'."""
        n = len(self.bad)
        lines = ", ".join(map(str, self.bad[:3])) + (", …" if n > 3 else "")
        return f"{n} malformed row{'s' if n != 1 else ''} (line{'s' if n != 1 else ''} {lines})"

    def frame(self):
        """The well-formed rows as a DataFrame, typed as pandas reads the file; seeds stay integers."""
        import pandas as pd

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        df = pd.read_csv(io.StringIO(buf.getvalue()))
        df["seed"] = df["seed"].astype("Float64").astype("Int64")  # reference rows have none
        return df


def read_results_file(run_dir: Path) -> ResultsFile:
    """results.csv of a run directory; raises Unreadable (missing, binary, not UTF-8, no key columns)."""
    path = RunDir(run_dir).results
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise Unreadable(f"'{run_dir}' has no {RESULTS}")
    except OSError as e:
        raise Unreadable(f"cannot read '{path}': {e.strerror or e}")
    if b"\x00" in data:
        raise Unreadable(f"'{path}' is binary, not a CSV file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Unreadable(f"'{path}' is not UTF-8 text (undecodable byte at offset {e.start})")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        columns = next(reader, None)
        if not columns:
            raise Unreadable(f"'{path}' is empty")
        missing = [k for k in RESULT_KEYS if k not in columns]
        if missing:
            raise Unreadable(f"'{run_dir}' is not a run written by rcekd distill "
                             f"({RESULTS} lacks {', '.join(missing)})")
        if len(set(columns)) != len(columns):
            raise Unreadable(f"'{path}' repeats a column name in its header")
        out = ResultsFile(path, columns)
        for row in reader:
            if not row:  # a blank line
                continue
            if _malformed(row, columns):
                out.bad.append(reader.line_num)
            else:
                out.rows.append(row)
    except csv.Error as e:
        raise Unreadable(f"'{path}' is not a valid CSV file (line {reader.line_num}: {e})")
    return out


def _malformed(row: list[str], columns: list[str]) -> bool:
    if len(row) != len(columns):
        return True
    cells = dict(zip(columns, row))
    if any(not cells[k].strip() for k in ("model", "method", "split")):
        return True
    if cells["seed"].strip() and not _is_int(cells["seed"]):
        return True
    return any(cells[c].strip() and not _is_number(cells[c]) for c in columns if "@" in c)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_int(text: str) -> bool:
    try:
        x = float(text)
    except ValueError:
        return False
    return x.is_integer() and abs(x) < 2**53
