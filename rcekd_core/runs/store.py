"""The run directory: every file name in it, and how each is written and read.

    config.yaml       the resolved configuration (plus `runtime`: device, cache, versions)
    events.jsonl      typed events, appended live (runs/events.py)
    metrics.csv       one row per trained epoch; columns follow what was measured
    results.csv       one row per model x method x seed x split
    summary.csv       mean ± std per method (test split)
    significance.csv  paired t-tests of rcekd against every other method
    checkpoints/      best weights of every fit so far, and `*.resume.pt`: the full state of
                      an unfinished fit after its last epoch (`rcekd distill --resume`)
    parts/<k>/        `rcekd distill --workers N`: worker k's own run of its share of the fits
                      (the parent copies its events into this run and adopts its checkpoints)
    lock              held (flock) by the process writing the run
    STOP              present: the run stops after the current epoch
    command.txt, stdout.log, pid   written when the TUI launches a detached run
    combined.yaml     provenance of a `runs combine` output
    notes.yaml        the researcher's tags and note on the run (the TUI's runs list)

Nothing outside runs/ names these files: CLI, TUI, export and combine go through RunDir.
Pandas is imported only by the readers that return frames (the TUI's first frame stays light).
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from pathlib import Path
from typing import IO, Any

import yaml

from ..atomic import atomic_write
from ..errors import ConfigError

CONFIG = "config.yaml"
EVENTS = "events.jsonl"
METRICS = "metrics.csv"
RESULTS = "results.csv"
SUMMARY = "summary.csv"
SIGNIFICANCE = "significance.csv"
CHECKPOINTS = "checkpoints"
STOP = "STOP"
COMMAND = "command.txt"
STDOUT = "stdout.log"
PID = "pid"
COMBINED = "combined.yaml"
NOTES = "notes.yaml"
LOCK = "lock"
PARTS = "parts"
LAUNCH_FILES = {COMMAND, STDOUT, PID, LOCK}  # what a launcher writes into a run dir before the run starts

RESULT_KEYS = ["model", "method", "seed", "split"]


class RunDir:
    """One run directory; paths as properties, and the readers and writers of its files."""

    def __init__(self, root: Path):
        self.root = Path(root)

    config = property(lambda self: self.root / CONFIG)
    events = property(lambda self: self.root / EVENTS)
    metrics = property(lambda self: self.root / METRICS)
    results = property(lambda self: self.root / RESULTS)
    summary = property(lambda self: self.root / SUMMARY)
    significance = property(lambda self: self.root / SIGNIFICANCE)
    checkpoints = property(lambda self: self.root / CHECKPOINTS)
    stop_file = property(lambda self: self.root / STOP)
    command = property(lambda self: self.root / COMMAND)
    stdout = property(lambda self: self.root / STDOUT)
    pid_file = property(lambda self: self.root / PID)
    combined = property(lambda self: self.root / COMBINED)

    @property
    def name(self) -> str:
        return self.root.name

    lock_file = property(lambda self: self.root / LOCK)
    trajectory = property(lambda self: self.checkpoints / "trajectory")  # the teacher's, while it trains
    parts = property(lambda self: self.root / PARTS)

    def part(self, k: int) -> "RunDir":
        """The run directory of worker k of a `--workers` run."""
        return RunDir(self.parts / str(k))

    def all_parts(self) -> list["RunDir"]:
        if not self.parts.is_dir():
            return []
        return sorted((RunDir(p) for p in self.parts.iterdir() if p.is_dir()), key=lambda r: r.name)

    def clear_parts(self) -> None:
        """An earlier attempt's parts, once adopted (a resumed run's workers start afresh)."""
        shutil.rmtree(self.parts, ignore_errors=True)

    def checkpoint(self, model: str, method: str = "", seed: Any = "") -> Path:
        """checkpoints/teacher.pt, or checkpoints/student-<method>-<seed>.pt."""
        return self.checkpoints / f"{_stem(model, method, seed)}.pt"

    def resume_file(self, model: str, method: str = "", seed: Any = "") -> Path:
        """The state an unfinished fit continues from (deleted once its results are written)."""
        return self.checkpoints / f"{_stem(model, method, seed)}.resume.pt"

    def adopt_checkpoints(self, part: "RunDir") -> None:
        """Move a part's student checkpoints (best weights, states to resume from) into this run's
        checkpoints/, and drop the rest of its checkpoints/ (its copy of the teacher)."""
        if not part.checkpoints.is_dir():
            return
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        for path in part.checkpoints.glob(f"{_stem('student', '*', '*')}.pt"):  # *.resume.pt included
            path.replace(self.checkpoints / path.name)
        shutil.rmtree(part.checkpoints, ignore_errors=True)

    def hand_over(self, part: "RunDir", model: str, method: str, seed: Any) -> None:
        """Move a fit's state to resume from into a part, which continues the fit."""
        source = self.resume_file(model, method, seed)
        if source.is_file():
            part.checkpoints.mkdir(parents=True, exist_ok=True)
            source.replace(part.resume_file(model, method, seed))

    def lock(self) -> IO:
        """Hold the run's lock for as long as the returned handle is open (released on any exit,
        SIGKILL included); raises ConfigError when another process holds it."""
        import fcntl

        self.create()
        fh = self.lock_file.open("a")
        for attempt in range(10):  # a status check holds it for an instant: try a little
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fh
            except OSError:
                time.sleep(0.02)
        fh.close()
        raise ConfigError(f"'{self.root}' is being written by another rcekd process; "
                          "wait for it to end (or stop it) first")

    def is_locked(self) -> bool:
        """Whether a process is writing this run right now."""
        import fcntl

        try:
            with self.lock_file.open("a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fh, fcntl.LOCK_UN)
        except FileNotFoundError:
            return False
        except OSError:
            return True
        return False

    # ---- what kind of directory this is -----------------------------------------------------

    def is_run(self) -> bool:
        """Written by a run (or by a launch that has not produced events yet)."""
        return self.events.is_file() or self.stdout.is_file()

    def holds_results(self) -> bool:
        return self.results.is_file() or self.events.is_file()

    def check_new(self, flag: str = "--run-dir") -> None:
        """A new run needs an absent or empty folder (or one holding only what a launcher wrote
        before starting it): nothing of a user's or an earlier run's is ever overwritten."""
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"{flag} '{self.root}' is a file; pass a folder path")
        if self.holds_results():
            raise ConfigError(f"'{self.root}' already holds a run; pass a new {flag} or delete that folder "
                              "(`rcekd distill --resume` continues an unfinished one)")
        if self.root.is_dir():
            others = sorted(p.name for p in self.root.iterdir() if p.name not in LAUNCH_FILES)
            if others:
                raise ConfigError(f"{flag} '{self.root}' is not empty (it holds {', '.join(others[:3])}"
                                  f"{', …' if len(others) > 3 else ''}); pass a new or empty folder")

    def require(self, what: str = "events") -> None:
        """Fail with one line when the file a command reads is missing."""
        path = {"events": self.events, "results": self.results}[what]
        if not path.is_file():
            hint = "a run directory written by rcekd distill" if what == "events" else "finished run directories"
            raise ConfigError(f"'{self.root}' has no {path.name}; pass {hint}")

    def create(self) -> "RunDir":
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    # ---- config -----------------------------------------------------------------------------

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write(self.config, yaml.safe_dump(config, sort_keys=False))

    @property
    def notes(self) -> Path:
        return self.root / NOTES

    def read_notes(self) -> tuple[list[str], str]:
        """(tags, note) the researcher gave the run; empty when none or unreadable."""
        try:
            raw = yaml.safe_load(self.notes.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return [], ""
        if not isinstance(raw, dict):
            return [], ""
        tags = raw.get("tags")
        tags = [str(t) for t in tags if str(t).strip()] if isinstance(tags, list) else []
        note = raw.get("note")
        return tags, note if isinstance(note, str) else ""

    def write_notes(self, tags: list[str], note: str) -> None:
        atomic_write(self.notes, yaml.safe_dump({"tags": list(tags), "note": note}, sort_keys=False,
                                                allow_unicode=True))

    def read_config(self) -> dict[str, Any]:
        """The run's config.yaml; {} when missing or unreadable (a run still starting)."""
        try:
            cfg = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return {}
        return cfg if isinstance(cfg, dict) else {}

    # ---- results, summary, significance ------------------------------------------------------

    def write_results(self, rows: list[dict[str, Any]]) -> None:
        """results.csv from every row so far (columns: union of the rows' keys, first seen first)."""
        atomic_write(self.results, csv_text(rows))

    def write_results_frame(self, frame) -> None:
        atomic_write(self.results, frame.to_csv(index=False))

    def read_result_rows(self) -> list[dict[str, str]]:
        """results.csv as plain rows of strings (no pandas); [] when missing or unreadable."""
        return _read_rows(self.results)

    def read_significance_rows(self) -> list[dict[str, str]]:
        """significance.csv as plain rows of strings; [] when missing or unreadable."""
        return _read_rows(self.significance)

    def read_result_values(self) -> list[dict[str, Any]]:
        """results.csv with numbers as numbers and empty cells as None: rows as the engine made
        them, so writing them back reproduces the file (a resumed run keeps them as they are)."""
        return [{k: _value(v) for k, v in row.items()} for row in _read_rows(self.results)]

    def read_results(self):
        """results.csv as a DataFrame (empty when missing or unreadable)."""
        import pandas as pd

        try:
            return pd.read_csv(self.results)
        except (OSError, UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError):
            return pd.DataFrame()

    def read_metric_rows(self) -> list[dict[str, str]]:
        """metrics.csv as plain rows of strings (no pandas); [] when missing or unreadable."""
        return _read_rows(self.metrics)

    def read_metrics(self):
        """metrics.csv as a DataFrame (empty when missing or unreadable)."""
        import pandas as pd

        try:
            return pd.read_csv(self.metrics)
        except (OSError, UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError):
            return pd.DataFrame()

    def write_summary(self, summary, significance) -> None:
        """summary.csv always; significance.csv only when there is a comparison to test."""
        atomic_write(self.summary, summary.to_csv(index=False))
        if significance is not None and not significance.empty:
            atomic_write(self.significance, significance.to_csv(index=False))

    def write_combined(self, provenance: dict[str, Any]) -> None:
        atomic_write(self.combined, yaml.safe_dump(provenance, sort_keys=False))

    # ---- launching and stopping --------------------------------------------------------------

    def write_command(self, argv: list[str]) -> None:
        atomic_write(self.command, " ".join(argv) + "\n")

    def open_stdout(self) -> IO[bytes]:
        """stdout.log for a detached run's output (appended: a relaunch keeps the first part)."""
        self.create()
        return self.stdout.open("ab")

    def write_pid(self, pid: int) -> None:
        atomic_write(self.pid_file, f"{pid}\n")

    def read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def request_stop(self) -> None:
        self.stop_file.touch()

    def stop_requested(self) -> bool:
        return self.stop_file.exists()

    def clear_stop(self) -> None:
        self.stop_file.unlink(missing_ok=True)

    def last_modified(self) -> float:
        stamps = [p.stat().st_mtime for p in (self.events, self.stdout) if p.is_file()]
        return max(stamps, default=self.root.stat().st_mtime)


class MetricsCsv:
    """metrics.csv, one row per epoch, appended live; its columns are the union of the rows' keys.

    A key no earlier row had (another overlap@k, HetComp's stage, DE's τ) rewrites the file
    atomically with the wider header, so no measured value is dropped and readers never see
    a header that disagrees with its rows.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.columns: list[str] = []
        if self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as fh:
                self.columns = next(csv.reader(fh), [])

    def append(self, row: dict[str, Any]) -> None:
        new = [k for k in row if k not in self.columns]
        if new:
            rows = _read_rows(self.path) + [row]
            self.columns += new
            atomic_write(self.path, csv_text(rows, self.columns))
            return
        with self.path.open("a", newline="", encoding="utf-8") as fh:
            csv.writer(fh, lineterminator="\n").writerow([_fmt(row.get(c)) for c in self.columns])


def drop_epochs_after(path: Path, label: dict[str, Any], epoch: int, keep: dict[str, Any] | None) -> None:
    """metrics.csv without the rows of one fit past `epoch` (a resumed fit redoes them); with
    `keep`, that fit's row for `epoch` is written back if a kill lost it."""
    rows = _read_rows(path)
    if not rows:
        return
    mine = lambda r: all(str(r.get(k)) == str(v) for k, v in label.items())  # noqa: E731
    out = [r for r in rows if not (mine(r) and _value(r.get("epoch")) > epoch)]
    if keep is not None and not any(mine(r) and _value(r.get("epoch")) == epoch for r in out):
        out.append(keep)
    if len(out) != len(rows) or keep is not None:
        columns = list(rows[0]) + [c for c in (keep or {}) if c not in rows[0]]
        atomic_write(path, csv_text(out, columns))


def csv_text(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if columns is None:
        columns = []
        for r in rows:
            columns += [c for c in r if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: _fmt(r.get(c)) for c in columns})
    return buf.getvalue()


def _read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _stem(model: str, method: str, seed: Any) -> str:
    return "teacher" if model == "teacher" else f"student-{method}-{seed}"


def _value(text: Any) -> Any:
    """A CSV cell back to what was written: int, float, None for empty, else the text."""
    if not isinstance(text, str):
        return text
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _fmt(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
